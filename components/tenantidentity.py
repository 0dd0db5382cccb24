"""TenantIdentity: the one IAM role all tenant workloads of a region assume, through EKS Pod Identity.

Per-tenant roles do not scale: 1,000 tenants x 2 regions is 2,000 roles per stack against an
account quota of 1,000 (5,000 at most) that three stacks may share. Instead, one role per region
and attribute-based access: EKS Pod Identity tags every session with the pod's
`kubernetes-namespace` and `eks-cluster-arn`, and the role's policy names resources through
`${aws:PrincipalTag/kubernetes-namespace}`: a pod in `t-acme` reaches `tenants/t-acme/*` in the
pool bucket or in the silo bucket `<silo prefix>t-acme`, and KMS keys tagged `meridian:namespace=t-acme`,
and nothing of any other tenant, however many tenants there are. Every statement also requires the
session to come from this region's cluster and a tenant namespace (`t-*`).

Each tenant's Pod Identity association additionally carries a session policy naming only its own
literal prefix, bucket and key (components.tenant), so the effective permissions are the
intersection of both: a mistake in one document alone does not open another tenant's data.

The reference service serves every tenant from the platform namespace, so it cannot be one tenant's
pod. It gets its own Pod Identity role, the broker, which may do two things: read the database
user's secret (its region's copy, decrypted only through Secrets Manager), and assume this tenant
role with the session tags a tenant pod would carry (`kubernetes-namespace` = a tenant namespace `t-*`,
`eks-cluster-arn` = this cluster) and no others. The service does so per request's tenant, with
the tenant's literal session policy (service/objects.py), and so reaches each tenant's data only
through that tenant's own session: the same role, the same ABAC statements, the same intersection.
The tenant role trusts the broker for exactly that (`sts:AssumeRole` + `sts:TagSession` with those
tag conditions); the broker is associated with the service's service account only, outside every
tenant namespace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.naming import NAMESPACE_PREFIX as TENANT_NAMESPACE_PREFIX
from components.policydocs import pod_identity_trust, pod_identity_trust_policy

TENANT_ROLE_PATH = "/meridian/tenants/"  # lets the budget action target tenant roles, and only them
TAG_NAMESPACE = "meridian:namespace"  # on tenant KMS keys: the namespace whose sessions may use them
NAMESPACE_KEY = "aws:PrincipalTag/kubernetes-namespace"  # set by EKS Pod Identity on every session
NAMESPACE_TAG = "${" + NAMESPACE_KEY + "}"  # the policy variable
SESSION_TAG_KEYS = ["kubernetes-namespace", "eks-cluster-arn"]  # what the broker may (and must) set


def broker_tag_conditions(cluster_arn: str) -> dict:
    """A tenant session's tags and nothing else: a tenant namespace, this cluster."""
    return {
        "StringLike": {"aws:RequestTag/kubernetes-namespace": f"{TENANT_NAMESPACE_PREFIX}*"},
        "StringEquals": {"aws:RequestTag/eks-cluster-arn": cluster_arn},
        "ForAllValues:StringEquals": {"aws:TagKeys": SESSION_TAG_KEYS},
    }


def trust_policy(account_id: str, cluster_arn: str, broker_arn: str) -> str:
    """Tenant pods through EKS Pod Identity, and the service's broker role with a tenant's session tags."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                pod_identity_trust(account_id, cluster_arn),
                {
                    "Sid": "ServiceBroker",
                    "Effect": "Allow",
                    "Principal": {"AWS": broker_arn},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": broker_tag_conditions(cluster_arn),
                },
            ],
        }
    )


def secret_read_policy(secret_arn: str, key_arn: str, region: str) -> str:
    """Read one secret's value, and decrypt with its key only on Secrets Manager's behalf in this region."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadDatabaseCredential",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": secret_arn,
                },
                {
                    "Sid": "DecryptItThroughSecretsManager",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key_arn,
                    "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                },
            ],
        }
    )


def broker_policy(tenant_role_arn: str, cluster_arn: str) -> str:
    """The broker may assume the tenant role with a tenant's session tags; nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AssumeTenantSessions",
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Resource": tenant_role_arn,
                    "Condition": broker_tag_conditions(cluster_arn),
                }
            ],
        }
    )


def abac_policy(
    *, account_id: str, region: str, cluster_arn: str, pool_bucket_arn: str, silo_bucket_prefix: str, prefix_root: str
) -> str:
    """Tenant data by session tag: the pool prefix, the silo bucket and the KMS keys of the caller's namespace."""
    session = {
        "StringEquals": {"aws:PrincipalTag/eks-cluster-arn": cluster_arn, "s3:ResourceAccount": account_id},
        "StringLike": {NAMESPACE_KEY: f"{TENANT_NAMESPACE_PREFIX}*"},
    }
    kms_session = {
        "StringEquals": {"aws:PrincipalTag/eks-cluster-arn": cluster_arn, f"aws:ResourceTag/{TAG_NAMESPACE}": NAMESPACE_TAG},
        "StringLike": {NAMESPACE_KEY: f"{TENANT_NAMESPACE_PREFIX}*"},
    }
    own_prefix = f"{prefix_root}{NAMESPACE_TAG}/"
    silo_bucket = f"arn:aws:s3:::{silo_bucket_prefix}{NAMESPACE_TAG}"
    objects = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PoolObjects",
                    "Effect": "Allow",
                    "Action": objects,
                    "Resource": f"{pool_bucket_arn}/{own_prefix}*",
                    "Condition": session,
                },
                {
                    "Sid": "PoolListing",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": pool_bucket_arn,
                    "Condition": {**session, "StringLike": {**session["StringLike"], "s3:prefix": [f"{own_prefix}*"]}},
                },
                # A silo bucket keeps the same layout: the tenant's data under its own prefix.
                {
                    "Sid": "SiloObjects",
                    "Effect": "Allow",
                    "Action": objects,
                    "Resource": f"{silo_bucket}/{own_prefix}*",
                    "Condition": session,
                },
                {
                    "Sid": "SiloListing",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": silo_bucket,
                    "Condition": {**session, "StringLike": {**session["StringLike"], "s3:prefix": [f"{own_prefix}*"]}},
                },
                {
                    "Sid": "OwnKeys",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                    "Resource": f"arn:aws:kms:{region}:{account_id}:key/*",
                    "Condition": kms_session,
                },
            ],
        }
    )


@dataclass(frozen=True, kw_only=True)
class TenantIdentityArgs:
    region: str
    cluster_arn: pulumi.Input[str]
    pool_bucket_arn: pulumi.Input[str]
    silo_bucket_prefix: pulumi.Input[str]
    """Silo buckets are named `<prefix><namespace>` (components.naming.silo_bucket_name)."""
    cluster_name: pulumi.Input[str]
    service_namespace: pulumi.Input[str]
    """The reference service's namespace and service account: the broker's only holder."""
    service_account: str
    db_secret_arn: pulumi.Input[str]
    """The region's copy of the application user's secret: the broker (the service) reads it, nothing more."""
    db_secret_key_arn: pulumi.Input[str]
    prefix_root: str = "tenants/"


class TenantIdentity(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    broker_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TenantIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:tenant:TenantIdentity", name, None, opts)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        broker = aws.iam.Role(
            f"{name}-broker",
            description=f"the reference service in {args.region}: assumes the tenant role with one tenant's session tags",
            assume_role_policy=pulumi.Output.all(account_id, args.cluster_arn).apply(
                lambda v: pod_identity_trust_policy(v[0], v[1])
            ),
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"tenant workloads in {args.region} (EKS Pod Identity, access by session tags)",
            assume_role_policy=pulumi.Output.all(account_id, args.cluster_arn, broker.arn).apply(
                lambda v: trust_policy(v[0], v[1], v[2])
            ),
            path=TENANT_ROLE_PATH,
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-data-access",
            role=role.id,
            policy=pulumi.Output.all(account_id, args.cluster_arn, args.pool_bucket_arn, args.silo_bucket_prefix).apply(
                lambda v: abac_policy(
                    account_id=v[0],
                    region=args.region,
                    cluster_arn=v[1],
                    pool_bucket_arn=v[2],
                    silo_bucket_prefix=v[3],
                    prefix_root=args.prefix_root,
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        aws.iam.RolePolicy(
            f"{name}-broker-assume",
            role=broker.id,
            policy=pulumi.Output.all(role.arn, args.cluster_arn).apply(lambda v: broker_policy(v[0], v[1])),
            opts=pulumi.ResourceOptions(parent=broker),
        )
        aws.iam.RolePolicy(
            f"{name}-broker-db-credential",
            role=broker.id,
            policy=pulumi.Output.all(args.db_secret_arn, args.db_secret_key_arn).apply(
                lambda v: secret_read_policy(v[0], v[1], args.region)
            ),
            opts=pulumi.ResourceOptions(parent=broker),
        )
        aws.eks.PodIdentityAssociation(
            f"{name}-broker-identity",
            cluster_name=args.cluster_name,
            namespace=args.service_namespace,
            service_account=args.service_account,
            role_arn=broker.arn,
            opts=pulumi.ResourceOptions(parent=broker),
        )
        self.role_arn = role.arn
        self.role_name = role.name
        self.broker_role_arn = broker.arn
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name, "broker_role_arn": self.broker_role_arn})
