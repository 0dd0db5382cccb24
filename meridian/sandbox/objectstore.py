"""The sandbox's S3/KMS/STS/IAM/Secrets Manager stand-in: a moto server on 127.0.0.1, set up from the
plan's values, then switched to enforcing IAM for every later request.

`python -m meridian.sandbox.objectstore --listen 127.0.0.1:PORT --spec spec.json --out out.json`
starts moto in this process, creates what the spec names (per region: KMS keys tagged with their
tenant's namespace, the buckets with versioning and default SSE-KMS, one role per
tenant whose policy is the tenant's session policy, the database user's secret in each region with
a fresh password, and the broker: an IAM user that may assume exactly those roles and read exactly
those secrets), writes the ARNs and the broker's access key to `out.json`, and only then
turns moto's IAM enforcement on (`INITIAL_NO_AUTH_ACTION_COUNT`: the requests made so far were the
setup's). From then on every request must be signed by a known key and is allowed only by the
caller's identity policies.

What moto 5.2 enforces, and what it does not (docs/tenancy-and-cost.md):
- enforced: a request signed by an unknown key is refused; identity policies of IAM users and of
  assumed-role sessions (the role's inline policies) are evaluated on Action and Resource with
  wildcards, an explicit Deny wins; AssumeRole checks the role's trust policy principal.
- misapplied: a bucket policy's Deny statements are applied with their conditions ignored (all but
  StringEquals), so the plan's bucket policies (deny unless ...) would refuse every write: the
  stand-in does not set them; they are checked on the plan.
- resource-scoped only for S3: other services' calls (Secrets Manager's GetSecretValue) are
  authorized against Resource "*", so the broker's secret read cannot be scoped to the one ARN here.
- not enforced: session policies and session tags
  (accepted, ignored), policy variables such as `${aws:PrincipalTag/...}`, conditions other than
  StringEquals on request values, KMS key use (S3 records the key id it is given without asking KMS).
So the stand-in gives each tenant its own role whose policy is the literal session policy (the half
of the AWS intersection moto can evaluate); the ABAC role and the bucket policies are proven by
the policy pack (policies/tenancy.py) and hold only on AWS.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

ACCOUNT = "123456789012"  # moto's default account
BROKER_USER = "meridian-api-broker"
OPERATOR_USER = "meridian-sandbox-operator"


def _client(endpoint: str, service: str, region: str, creds: tuple[str, str] = ("setup", "setup")):
    import boto3

    return boto3.client(
        service, region_name=region, endpoint_url=endpoint, aws_access_key_id=creds[0], aws_secret_access_key=creds[1]
    )


def _role_name_and_path(arn: str) -> tuple[str, str]:
    """`arn:aws:iam::<acct>:role/<path...>/<name>` -> (name, `/<path...>/`)."""
    resource = arn.split(":", 5)[5].removeprefix("role")
    path, _, name = resource.rpartition("/")
    return name, (path + "/") if path else "/"


def broker_env(made: dict) -> dict[str, str]:
    """The env that stands in for a service pod's Pod Identity: the broker's key from `set_up`'s result."""
    broker = made["broker"]
    return {"AWS_ACCESS_KEY_ID": broker["access_key_id"], "AWS_SECRET_ACCESS_KEY": broker["secret_access_key"]}


def spec_from_settings(settings, *, role_per_tenant: bool = False) -> dict:
    """The stand-in's spec from the services' rendered settings (one `ServiceSettings` per region):
    exactly the buckets, keys, roles and session policies the plan gives the service. No bucket
    policies: moto applies their Deny statements without conditions; they are proven on the plan.

    `role_per_tenant`: moto evaluates neither session policies nor `${aws:PrincipalTag/...}`, so the
    plan's one ABAC role per region would let any tenant session reach every tenant there. With it,
    each tenant gets its own role and key in the stand-in, whose policy is the tenant's literal
    session policy; the service's settings are then pointed at them (podrun.Substitutions.tenant_data)."""
    from service.objects import session_policy

    spec: dict = {"regions": {}, "db_secrets": {}}
    for one in settings:
        if one.db_secret is not None:
            user = urlsplit(one.write_dsn).username
            spec["db_secrets"][one.db_secret.region] = {"plan_arn": one.db_secret.arn, "username": user}
        if one.objects is None:
            raise ValueError(f"{one.region}: the service's settings configure no object storage")
        region = spec["regions"].setdefault(one.objects.region, {"buckets": {}, "tenants": {}})
        for t in one.tenants:
            d = t.data
            if d is None:
                raise ValueError(f"{one.region}: tenant {t.id} has no data settings")
            region["buckets"][d.bucket] = {}
            region["tenants"][t.id] = {
                "bucket": d.bucket,
                "prefix": d.prefix,
                "namespace": d.namespace,
                "kms_key_arn": None if role_per_tenant else d.kms_key_arn,
                "role_arn": None if role_per_tenant else d.role_arn,
                "session_policy": session_policy(
                    f"arn:aws:s3:::{d.bucket}", d.prefix, "KEY_ARN" if role_per_tenant else d.kms_key_arn
                ),
            }
    return spec


def set_up(endpoint: str, spec: dict) -> dict:
    """Create what `spec` names; returns it completed with the ARNs made and the broker's key.

    spec: {"regions": {region: {"buckets": {name: {"default_key": tenant-id | None}},
                                "tenants": {id: {"bucket", "prefix", "namespace",
                                                 "kms_key_arn": str | None, "role_arn": str | None,
                                                 "session_policy": str (with KEY_ARN placeholder)}}}}}
    A tenant without `kms_key_arn` gets a new KMS key; without `role_arn`, a role named after it.
    """
    iam = _client(endpoint, "iam", "us-east-1")
    role_arns = []
    out = {"endpoint": endpoint, "regions": {}}
    for region, r in spec["regions"].items():
        kms, s3 = _client(endpoint, "kms", region), _client(endpoint, "s3", region)
        tenants = {}
        for tid, t in r["tenants"].items():
            key_arn = (
                t.get("kms_key_arn")
                or kms.create_key(
                    Description=f"tenant {tid} data in {region}",
                    Tags=[{"TagKey": "meridian:namespace", "TagValue": t["namespace"]}],
                )["KeyMetadata"]["Arn"]
            )
            role_arn = t.get("role_arn") or f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/{region}-{t['namespace']}"
            name, path = _role_name_and_path(role_arn)
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{BROKER_USER}"},
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                    }
                ],
            }
            try:
                made = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
            except iam.exceptions.EntityAlreadyExistsException:  # one ABAC role shared by every tenant of a region
                made = iam.get_role(RoleName=name)["Role"]["Arn"]
            assert made == role_arn, f"moto made {made}, the plan names {role_arn}"
            policy = t["session_policy"].replace("KEY_ARN", key_arn)
            iam.put_role_policy(RoleName=name, PolicyName=f"tenant-{tid}-{region}", PolicyDocument=policy)
            role_arns.append(role_arn)
            tenants[tid] = {**{k: v for k, v in t.items() if k != "session_policy"}, "kms_key_arn": key_arn, "role_arn": role_arn}
        for bucket, b in r["buckets"].items():
            kw = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=bucket, **kw)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            default_key = tenants[b["default_key"]]["kms_key_arn"] if b.get("default_key") else None
            if default_key is None:
                default_key = kms.create_key(Description=f"{bucket}: default encryption")["KeyMetadata"]["Arn"]
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": default_key}}]
                },
            )
        out["regions"][region] = {"tenants": tenants, "buckets": sorted(r["buckets"])}
    # The database user's secret: one password, a copy per region (a replica on AWS), as the
    # rotation function writes it; the migration sets the user's password from it.
    password = secrets.token_urlsafe(24)
    out["db_secrets"] = {}
    for region, d in spec.get("db_secrets", {}).items():
        name = d["plan_arn"].split(":secret:", 1)[1].rsplit("-", 1)[0]  # without the plan's 6-character suffix
        value = json.dumps({"engine": "postgres", "username": d["username"], "password": password})
        out["db_secrets"][region] = _client(endpoint, "secretsmanager", region).create_secret(Name=name, SecretString=value)[
            "ARN"
        ]
    statements = [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": sorted(set(role_arns))}]
    if out["db_secrets"]:
        # moto authorizes Secrets Manager calls against Resource "*" only (no resource of its own to
        # match): the plan's policy names the secret's ARN, which the policy pack proves instead
        statements.append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    iam.create_user(UserName=BROKER_USER)
    iam.put_user_policy(
        UserName=BROKER_USER,
        PolicyName="assume-tenant-sessions",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=BROKER_USER)["AccessKey"]
    out["broker"] = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    # what AWS's own services would do (the rotation function writing a new secret version): a
    # rehearsal's identity, never a pod's
    iam.create_user(UserName=OPERATOR_USER)
    iam.put_user_policy(
        UserName=OPERATOR_USER,
        PolicyName="operate",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
    out["operator"] = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    return out


def enforce_iam_from_now() -> None:
    """Every request after this one is authenticated and authorized (moto's opt-in enforcement)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    settings.INITIAL_NO_AUTH_ACTION_COUNT = ActionAuthenticatorMixin.request_count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m meridian.sandbox.objectstore")
    p.add_argument("--listen", required=True, help="HOST:PORT")
    p.add_argument("--spec", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
    server.start()
    done = set_up(f"http://{host}:{port}", json.loads(args.spec.read_text()))
    enforce_iam_from_now()
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(done, indent=1))
    os.chmod(tmp, 0o600)
    tmp.replace(args.out)  # the file appears whole: its presence means "ready"
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
