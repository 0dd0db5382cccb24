"""Encryption at rest (customer-managed KMS keys) and in transit (TLS enforced by the service)."""

from __future__ import annotations

from typing import Any

from ruleutil import (
    CRITICAL, HIGH, MEDIUM, Stack, UnknownValueError, as_list, dig, peek, resource_policy, stack_policy, statements, truthy,
)

RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_GLOBAL = "aws:rds/globalCluster:GlobalCluster"
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"

_KEY_SCHEMA = {
    "requireCustomerKey": {"type": "boolean", "default": True,
                           "description": "require a customer-managed KMS key (not the AWS-managed default key)"},
}


def _aws_managed(key: Any) -> bool:
    return isinstance(key, str) and ("alias/aws/" in key)


def _key_problem(name: str, key: Any, config: dict, field: str) -> list[str]:
    """A key must be set (unknown counts as set: it is another resource's output) and customer-managed."""
    if not config.get("requireCustomerKey", True):
        return []
    if key in (None, ""):
        return [f"{name} must name a customer-managed KMS key in `{field}`"]
    if _aws_managed(key):
        return [f"{name} must use a customer-managed KMS key in `{field}`, not the AWS-managed {key}"]
    return []


# --- RDS / Aurora ----------------------------------------------------------------------------


def check_rds_storage_encrypted(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    name = type_.rsplit(":", 1)[-1]
    if not truthy(dig(props, "storageEncrypted", default=False)):
        # Absent means the provider default: unencrypted (a read replica inherits, but says so too).
        return [f"RDS {name} must set `storageEncrypted: true` (the default is unencrypted)"]
    if type_ == RDS_GLOBAL:
        return []  # the member clusters carry the keys
    return _key_problem(f"RDS {name}", peek(props, "kmsKeyId"), config, "kmsKeyId")


rds_storage_encrypted = resource_policy(
    "rds-storage-encrypted",
    what="Checks that every Aurora global cluster, Aurora cluster and RDS instance has storage encryption on with a customer-managed KMS key",
    why="The database holds every tenant's records; encryption at rest with our own key keeps snapshots, replicas and disks unreadable without a key we control and can audit.",
    types=[RDS_CLUSTER, RDS_INSTANCE, RDS_GLOBAL],
    check=check_rds_storage_encrypted,
    severity=CRITICAL,
    config=_KEY_SCHEMA,
    remediation="Set `storage_encrypted=True` and `kms_key_id=<customer key>.arn` (components.keys.customer_key). "
                "Encryption cannot be turned on in place: restore from an encrypted snapshot copy.",
    tags=["encryption", "data"],
)


_TLS_PARAMS = {"postgres": ("rds.force_ssl", "1"), "mysql": ("require_secure_transport", "1"), "mariadb": ("require_secure_transport", "1")}


def check_rds_tls_required(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    family = str(dig(props, "family", default=""))
    engine = next((e for e in ("postgres", "mysql", "mariadb") if e in family), None)
    if engine is None:
        return []
    param, value = _TLS_PARAMS[engine]
    params = {str(dig(p, "name", default="")).lower(): str(dig(p, "value", default="")).strip().lower() for p in as_list(dig(props, "parameters"))}
    got = params.get(param)
    if got is None:
        return [f"RDS parameter group ({family}) must set `{param}` to {value}: clients may connect without TLS (default off)"]
    if got not in (value, "on", "true"):
        return [f"RDS parameter group ({family}) must set `{param}` to {value}, not {got}"]
    return []


rds_tls_required = resource_policy(
    "rds-parameter-group-tls-required",
    what="Checks that every RDS / Aurora parameter group for PostgreSQL sets `rds.force_ssl` to 1 (MySQL / MariaDB: `require_secure_transport`)",
    why="Database traffic crosses subnets and, for the dr member, regions: the server itself must refuse plaintext connections rather than trust every client to ask for TLS.",
    types=["aws:rds/parameterGroup:ParameterGroup", "aws:rds/clusterParameterGroup:ClusterParameterGroup"],
    check=check_rds_tls_required,
    severity=HIGH,
    remediation="Add `{\"name\": \"rds.force_ssl\", \"value\": \"1\"}` to the parameter group's `parameters` and "
                "use `sslmode=verify-full` in clients.",
    tags=["encryption", "transit"],
)


# --- simple 'has a key' resources ------------------------------------------------------------


def _key_check(label: str, field: str, *, flag: str | None = None):
    def check(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
        if flag is not None and not truthy(dig(props, flag, default=False)):
            return [f"{label} must set `{flag}: true` (the default is unencrypted)"]
        return _key_problem(label, peek(props, field), config, field)

    return check


def check_ebs_encrypted(type_: str, props: Any, config: dict, provider: Any) -> list[str]:
    if type_ == "aws:ebs/volume:Volume":
        return _key_check("EBS volume", "kmsKeyId", flag="encrypted")(type_, props, config, provider)
    disks: list[tuple[str, Any]] = []
    if type_ == "aws:ec2/launchTemplate:LaunchTemplate":
        disks = [(f"launch template block device {dig(m, 'deviceName', default=i)}", dig(m, "ebs")) for i, m in enumerate(as_list(dig(props, "blockDeviceMappings")))]
        disks = [(n, d) for n, d in disks if d is not None]
    elif type_ == "aws:ec2/instance:Instance":
        disks = [("instance root volume", dig(props, "rootBlockDevice", default={}))]
        disks += [(f"instance volume {dig(d, 'deviceName', default=i)}", d) for i, d in enumerate(as_list(dig(props, "ebsBlockDevices")))]
    out = []
    for label, disk in disks:
        if not truthy(dig(disk, "encrypted", default=False)):
            out.append(f"{label} must set `encrypted: true` (the default follows the account setting, often off)")
        else:
            out += _key_problem(label, peek(disk, "kmsKeyId"), config, "kmsKeyId")
    return out


ebs_encrypted = resource_policy(
    "ebs-volume-encrypted",
    what="Checks that EBS volumes, launch-template block devices and instance volumes are encrypted with a customer-managed KMS key",
    why="Node disks hold container images, logs and scratch data of every tenant scheduled on them; an unencrypted disk or snapshot leaks all of it.",
    types=["aws:ebs/volume:Volume", "aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"],
    check=check_ebs_encrypted,
    severity=HIGH,
    config=_KEY_SCHEMA,
    remediation="Set `encrypted=True` and `kms_key_id` on each volume / block device mapping (or enable EBS encryption by default with a customer key).",
    tags=["encryption", "data"],
)


def check_eks_secrets_encrypted(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    enc = dig(props, "encryptionConfig")
    resources = [str(r) for r in as_list(dig(enc, "resources"))]
    if "secrets" not in resources:
        return ["EKS cluster must envelope-encrypt Kubernetes secrets: set `encryptionConfig.resources: [\"secrets\"]`"]
    return _key_problem("EKS secrets encryption", peek(enc, "provider", "keyArn"), config, "encryptionConfig.provider.keyArn")


eks_secrets_encrypted = resource_policy(
    "eks-cluster-secrets-encrypted",
    what="Checks that every EKS cluster envelope-encrypts Kubernetes secrets with a customer-managed KMS key",
    why="Cluster secrets include database credentials and service-account tokens; etcd backups must not expose them in clear.",
    types=["aws:eks/cluster:Cluster"],
    check=check_eks_secrets_encrypted,
    severity=HIGH,
    config=_KEY_SCHEMA,
    remediation="Set `encryption_config={\"provider\": {\"key_arn\": key.arn}, \"resources\": [\"secrets\"]}` on the cluster.",
    tags=["encryption", "data"],
)

sns_encrypted = resource_policy(
    "sns-topic-encrypted",
    what="Checks that every SNS topic is encrypted with a customer-managed KMS key (`kmsMasterKeyId`)",
    why="Alert messages carry account, budget and health details; a customer key also lets us limit which services may publish.",
    types=["aws:sns/topic:Topic"],
    check=_key_check("SNS topic", "kmsMasterKeyId"),
    severity=MEDIUM,
    config=_KEY_SCHEMA,
    remediation="Set `kms_master_key_id` to a customer key whose policy admits the publishing service (e.g. budgets.amazonaws.com, cloudwatch.amazonaws.com).",
    tags=["encryption"],
)

backup_vault_encrypted = resource_policy(
    "backup-vault-encrypted",
    what="Checks that every AWS Backup vault encrypts recovery points with a customer-managed KMS key (`kmsKeyArn`)",
    why="Backups are a full copy of tenant data; the AWS-managed default key cannot be restricted or shared for cross-account recovery.",
    types=["aws:backup/vault:Vault"],
    check=_key_check("Backup vault", "kmsKeyArn"),
    severity=HIGH,
    config=_KEY_SCHEMA,
    remediation="Set `kms_key_arn` on the vault to a customer key (replace the vault: the key cannot change in place).",
    tags=["encryption", "data"],
)

log_group_encrypted = resource_policy(
    "cloudwatch-log-group-encrypted",
    what="Checks that every CloudWatch log group is encrypted with a customer-managed KMS key (`kmsKeyId`)",
    why="Flow logs and control-plane audit logs reveal network topology and API activity; our own key limits who can read them.",
    types=["aws:cloudwatch/logGroup:LogGroup"],
    check=_key_check("CloudWatch log group", "kmsKeyId"),
    severity=MEDIUM,
    config=_KEY_SCHEMA,
    remediation="Set `kms_key_id` to a customer key whose policy admits `logs.<region>.amazonaws.com`.",
    tags=["encryption"],
)


# --- S3 (stack rules: a bucket's settings live on separate resources) ------------------------


def buckets_with(stack: Stack, sub_type: str) -> dict[str, list[Any]]:
    """Bucket URN -> its sub-resources of `sub_type` (linked by the `bucket` property, by name, or by parent)."""
    buckets = stack.of(S3_BUCKET)
    by_name = {dig(b.props, "bucket"): b for b in buckets if isinstance(dig(b.props, "bucket"), str)}
    out: dict[str, list[Any]] = {b.urn: [] for b in buckets}
    for sub in stack.of(sub_type):
        targets = stack.linked(sub, "bucket", S3_BUCKET)
        if not targets and dig(sub.props, "bucket") in by_name:
            targets = [by_name[dig(sub.props, "bucket")]]
        if not targets and sub.parent is not None and sub.parent.resource_type == S3_BUCKET:
            targets = [sub.parent]
        for t in targets:
            out.setdefault(t.urn, []).append(sub)
    return out


def check_s3_encrypted(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    out = []
    configs = buckets_with(stack, S3_SSE)
    for bucket in stack.of(S3_BUCKET):
        rules = [(c, r) for c in configs.get(bucket.urn, []) for r in as_list(dig(c.props, "rules"))]
        inline = dig(bucket.props, "serverSideEncryptionConfiguration", "rule")
        if inline is not None:
            rules.append((bucket, inline))
        if not rules:
            out.append((bucket.urn, "S3 bucket must have default encryption with a KMS key (a BucketServerSideEncryptionConfiguration); "
                                    "the default SSE-S3 uses an AWS-owned key"))
            continue
        for owner, rule in rules:
            default = dig(rule, "applyServerSideEncryptionByDefault", default={})
            algorithm = dig(default, "sseAlgorithm")
            if algorithm not in ("aws:kms", "aws:kms:dsse"):
                out.append((owner.urn, f"S3 default encryption must use `aws:kms` with a customer key, not {algorithm}"))
            else:
                out += [(owner.urn, m) for m in _key_problem("S3 default encryption", peek(default, "kmsMasterKeyId"), config, "kmsMasterKeyId")]
    return out


s3_encrypted = stack_policy(
    "s3-bucket-encrypted",
    what="Checks that every S3 bucket has default encryption `aws:kms` with a customer-managed KMS key",
    why="Buckets hold tenant data (pool prefixes and silo buckets); each tenant's key only protects its data if the bucket default is KMS too.",
    check=check_s3_encrypted,
    severity=CRITICAL,
    config=_KEY_SCHEMA,
    remediation="Add a BucketServerSideEncryptionConfiguration with `sse_algorithm=\"aws:kms\"`, `kms_master_key_id=<key>.arn` "
                "and `bucket_key_enabled=True` (components.bucket.SecureBucket does this).",
    tags=["encryption", "data"],
)


def denies_insecure_transport(document: Any) -> bool:
    for st in statements(document):
        if st["effect"] != "deny" or not any(a in ("s3:*", "*") for a in st["actions"]):
            continue
        secure = dig(st["condition"], "Bool", "aws:SecureTransport")
        if str(secure).lower() == "false":
            return True
    return False


def _tls_only_or_unknown(props: Any) -> bool:
    """A document only known after apply (it embeds the bucket ARN) is checked at update time."""
    try:
        return denies_insecure_transport(dig(props, "policy"))
    except UnknownValueError:
        return True


def check_s3_tls_only(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    policies = buckets_with(stack, S3_POLICY)
    out = []
    for bucket in stack.of(S3_BUCKET):
        docs = [p.props for p in policies.get(bucket.urn, [])]
        if peek(bucket.props, "policy") is not None:
            docs.append(bucket.props)
        if not any(_tls_only_or_unknown(d) for d in docs):
            out.append((bucket.urn, "S3 bucket must have a bucket policy that denies `s3:*` when `aws:SecureTransport` is false"))
    return out


s3_tls_only = stack_policy(
    "s3-bucket-tls-only",
    what="Checks that every S3 bucket has a bucket policy denying all requests made without TLS (`aws:SecureTransport` false)",
    why="S3 accepts plain HTTP by default; only a deny in the bucket policy guarantees tenant objects never travel unencrypted.",
    check=check_s3_tls_only,
    severity=HIGH,
    remediation="Add a BucketPolicy with a Deny of `s3:*` on the bucket and `bucket/*` for `Principal: *` under "
                "`Condition: {Bool: {aws:SecureTransport: false}}` (components.bucket.tls_only_policy).",
    tags=["encryption", "transit"],
)

POLICIES = [rds_storage_encrypted, rds_tls_required, ebs_encrypted, eks_secrets_encrypted, sns_encrypted,
            backup_vault_encrypted, log_group_encrypted, s3_encrypted, s3_tls_only]
