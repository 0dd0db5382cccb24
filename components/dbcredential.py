"""DatabaseCredential: the application user's password in AWS Secrets Manager, rotated.

The secret lives in the primary region under the database's own customer key and is replicated to
the dr region (under that region's key), so each region's pods read their local copy and the
secret never leaves the residency zone. Its value is the JSON the AWS rotation function for
PostgreSQL reads and writes (`engine`, `host`, `port`, `dbname`, `username`, `password`); the first
version is a random password, and after that the rotation owns it (Pulumi ignores later changes to
the value, or an `up` would set back a password the database no longer has).

Rotation: AWS's single-user function for PostgreSQL (the Serverless Application Repository's
`SecretsManagerRDSPostgreSQLRotationSingleUser`, deployed as a CloudFormation stack) runs in the
primary region's data subnets with its own security group, which the database admits; it reaches
Secrets Manager through the VPC's interface endpoint. It logs in as the user itself and changes its
own password every `rotation_days`, first `rotation_days` after the migration created it
(components.rotation). The service and the migration read the secret when they open a
connection (service.dbsecret): a rotation needs no restart.

Why not the alternatives: RDS-managed master passwords (`manage_master_user_password`) are not
supported for clusters in an Aurora global database, and IAM database authentication signs a token
per host, which a multi-host write DSN cannot pass to each host.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

# AWS's rotation function for single-user PostgreSQL secrets (the publisher's account is AWS's own).
ROTATION_APPLICATION = "arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser"
ROTATION_APPLICATION_VERSION = "1.1.618"
# Characters RDS accepts in a password ('/', '@', '"' and space are refused); the rotation function
# is told to exclude the same ones, plus the quote and backslash libpq URLs would need escaped.
PASSWORD_SPECIALS = "!#$%^&*()-_=+[]{}<>:?"
ROTATION_EXCLUDED = "/@\"' \\`"


def rds_password(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """32 random characters RDS accepts, secret in state (the SDK marks `result` secret; say it too)."""
    password = random.RandomPassword(
        name, length=32, special=True, override_special=PASSWORD_SPECIALS, opts=pulumi.ResourceOptions(parent=parent)
    )
    return pulumi.Output.secret(password.result)


@dataclass(frozen=True, kw_only=True)
class CredentialReplica:
    region: str
    provider: aws.Provider
    kms_key_arn: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class DatabaseCredentialArgs:
    username: str
    host: pulumi.Input[str]
    """The writer endpoint the rotation function logs in to."""
    port: int
    dbname: str
    primary: CredentialReplica
    dr: CredentialReplica
    rotation_subnet_ids: Sequence[pulumi.Input[str]]
    rotation_security_group_id: pulumi.Input[str]
    rotation_function_name: str
    rotation_days: int = 30

    def __post_init__(self) -> None:
        if self.primary.region == self.dr.region:
            raise ValueError("the secret's replica must live in another region than the primary")
        if not 1 <= self.rotation_days <= 1000:
            raise ValueError(f"rotation_days must be 1..1000 (Secrets Manager's range), got {self.rotation_days}")
        if len(self.rotation_function_name) > 64:
            raise ValueError(
                f"rotation_function_name must be at most 64 characters (Lambda), got {self.rotation_function_name!r}"
            )


def replica_arn(primary_arn: str, primary_region: str, replica_region: str) -> str:
    """A replica secret has the primary's ARN with its own region (Secrets Manager keeps name and suffix)."""
    marker = f":secretsmanager:{primary_region}:"
    if marker not in primary_arn:
        raise ValueError(f"{primary_arn} is not a Secrets Manager ARN in {primary_region}")
    return primary_arn.replace(marker, f":secretsmanager:{replica_region}:", 1)


def secret_value(*, username: str, password: str, host: str, port: int, dbname: str) -> str:
    """What the rotation function for PostgreSQL reads (and the service takes `password` from).
    `ssl: true`: the function connects with TLS only (`verify-full`), never falling back to plain
    text, which `rds.force_ssl` would refuse anyway."""
    return json.dumps(
        {
            "engine": "postgres",
            "host": host,
            "port": port,
            "dbname": dbname,
            "username": username,
            "password": password,
            "ssl": True,
        },
        sort_keys=True,
    )


@dataclass(frozen=True, kw_only=True)
class RotationTarget:
    """What a rotation schedule needs of the credential: the secret, AWS's function, the period."""

    secret_id: pulumi.Output[str]
    lambda_arn: pulumi.Output[str]
    days: int
    provider: aws.Provider
    initial_version: pulumi.Resource
    earlier_urn: pulumi.Alias
    """Where the schedule lived before it had a component of its own (a stack that got that far keeps it)."""


class DatabaseCredential(pulumi.ComponentResource):
    secret_arns: dict[str, pulumi.Output[str]]  # "primary" / "dr": each region's copy
    kms_key_arns: dict[str, pulumi.Input[str]]  # "primary" / "dr": what decrypts each copy
    rotation: RotationTarget

    def __init__(self, name: str, args: DatabaseCredentialArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:database:DatabaseCredential", name, None, opts)
        primary = pulumi.ResourceOptions(parent=self, provider=args.primary.provider)
        first_password = rds_password(f"{name}-initial-password", self)  # rotation replaces it in secret and database
        secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            description=f"database user {args.username}: its password, rotated every {args.rotation_days} days",
            kms_key_id=args.primary.kms_key_arn,
            replicas=[{"region": args.dr.region, "kms_key_id": args.dr.kms_key_arn}],
            recovery_window_in_days=7,
            opts=primary,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{name}-initial",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(
                pulumi.Output.all(args.host, first_password).apply(
                    lambda v: secret_value(username=args.username, password=v[1], host=v[0], port=args.port, dbname=args.dbname)
                )
            ),
            opts=pulumi.ResourceOptions(parent=secret, provider=args.primary.provider, ignore_changes=["secretString"]),
        )
        rotator = aws.serverlessrepository.CloudFormationStack(
            f"{name}-rotator",
            application_id=ROTATION_APPLICATION,
            semantic_version=ROTATION_APPLICATION_VERSION,
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
            parameters={
                "functionName": args.rotation_function_name,
                "endpoint": f"https://secretsmanager.{args.primary.region}.amazonaws.com",
                "vpcSubnetIds": pulumi.Output.all(*args.rotation_subnet_ids).apply(",".join),
                "vpcSecurityGroupIds": args.rotation_security_group_id,
                "kmsKeyArn": args.primary.kms_key_arn,
                "excludeCharacters": ROTATION_EXCLUDED,
            },
            opts=primary,
        )
        # Rotation itself is scheduled once the user exists (components.rotation, after the migration).
        self.rotation = RotationTarget(
            secret_id=secret.id,
            lambda_arn=rotator.outputs.apply(lambda o: o["RotationLambdaARN"]),
            days=args.rotation_days,
            provider=args.primary.provider,
            initial_version=version,
            earlier_urn=pulumi.Alias(name=f"{name}-rotation", parent=secret),
        )
        self.secret_arns = {
            "primary": secret.arn,
            "dr": secret.arn.apply(lambda a: replica_arn(a, args.primary.region, args.dr.region)),
        }
        self.kms_key_arns = {"primary": args.primary.kms_key_arn, "dr": args.dr.kms_key_arn}
        self.register_outputs({"secret_arns": self.secret_arns})
