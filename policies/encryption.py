"""Encryption at rest (customer-managed KMS keys) and in transit (TLS enforced by the service)."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from iamdoc import parse, public
from ruleutil import (
    BUCKET_SETTINGS,
    CRITICAL,
    HIGH,
    KMS_KEYS,
    KMS_REPLICA_KEY,
    MEDIUM,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_GLOBAL,
    RDS_INSTANCE,
    S3_BUCKETS,
    TAG_TENANT,
    UNKNOWN,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    judge_buckets,
    judge_each,
    key_tenant,
    known,
    named_bucket,
    peek,
    provider_accounts,
    region_of,
    resource_policy,
    resource_region,
    stack_policy,
    string_list,
    tags_of,
    truthy,
    unknown,
)

S3_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
S3_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"

_KEY_SCHEMA = {
    "requireCustomerKey": {
        "type": "boolean",
        "default": True,
        "description": "require a customer-managed KMS key (not the AWS-managed default key)",
    },
    "externalKeyArns": string_list([], "KMS key ARNs managed outside the stack that may be used anyway"),
}
_KEY_REF = re.compile(
    r"^(arn:aws[\w-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<name>[\w/+=,.@-]+)"
    r"|(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
    r"|alias/(?P<alias>[\w/+=,.@-]+))$"
)


KEY_ACCOUNT = (
    "A key ARN of another account than the resource's provider declares (`allowedAccountIds`) is refused; a key id or "
    "alias resolves in the resource's own account and region. "
)


def key_problem(
    name: str, key: Any, config: dict, field: str, region: str | None = None, accounts: frozenset[str] = frozenset()
) -> list[str]:
    """A key setting must name a customer-managed KMS key: a key ARN or alias ARN in the resource's
    own region and in one of the stack's `accounts` (its providers' `allowedAccountIds`), a key id or
    alias name (they resolve in the resource's own account and region), or a configured external
    key. An unknown value is unverifiable (it is another resource's output)."""
    if not config.get("requireCustomerKey", True):
        return []
    if key is UNKNOWN:
        return [Unverifiable.at(field, "a key from another resource")]
    if key in (None, ""):
        return [f"{name} must name a customer-managed KMS key in `{field}`"]
    if key in config.get("externalKeyArns", []):
        return []
    m = _KEY_REF.match(str(key))
    if m is None:
        return [f"{name} must name a KMS key in `{field}` by key ARN, alias ARN, key id or alias, not {key!r}"]
    if (m.group("name") or "").startswith("aws/") or (m.group("alias") or "").startswith("aws/"):
        return [f"{name} must use a customer-managed KMS key in `{field}`, not the AWS-managed {key}"]
    if region and m.group("region") and m.group("region") != region:
        return [f"{name} must use a KMS key in its own region {region} (`{field}` is in {m.group('region')})"]
    if accounts and m.group("account") and m.group("account") not in accounts:
        return [
            f"{name} must use a KMS key of the stack's own account ({', '.join(sorted(accounts))}), not account "
            f"{m.group('account')} (`{field}`): that account's key policy decides who decrypts the data, and it can "
            "disable the key"
        ]
    return []


def _key_problem(name: str, key: Any, config: dict, field: str, provider: Any = None, props: Any = None) -> list[str]:
    region = region_of(props, provider) if props is not None else None
    return key_problem(
        name, key, config, field, region if isinstance(region, str) else None, frozenset(provider_accounts(provider))
    )


# --- RDS / Aurora ----------------------------------------------------------------------------


def check_rds_storage_encrypted(type_: str, props: Any, config: dict, provider: Any) -> list[str]:
    name = type_.rsplit(":", 1)[-1]
    out = []
    # an Aurora cluster instance's storage is its cluster's (judged there); its Performance Insights are its own
    if type_ != RDS_CLUSTER_INSTANCE and not truthy(dig(props, "storageEncrypted", default=False)):
        # Absent means the provider default: unencrypted (a read replica inherits, but says so too).
        out.append(f"RDS {name} must set `storageEncrypted: true` (the default is unencrypted)")
    elif type_ in (RDS_CLUSTER, RDS_INSTANCE):  # the global cluster's members carry the keys
        out += _key_problem(f"RDS {name}", peek(props, "kmsKeyId"), config, "kmsKeyId", provider, props)
    if type_ != RDS_GLOBAL and truthy(peek(props, "performanceInsightsEnabled", default=False)):
        out += _key_problem(
            f"RDS {name} Performance Insights",
            peek(props, "performanceInsightsKmsKeyId"),
            config,
            "performanceInsightsKmsKeyId",
            provider,
            props,
        )
    return out


rds_storage_encrypted = resource_policy(
    "rds-storage-encrypted",
    what="Checks that every Aurora global cluster, Aurora cluster and RDS instance has storage encryption on with a customer-managed KMS key named by ARN, alias or id in its own region, and that Performance Insights, where on (RDS instances and Aurora cluster instances), uses such a key too",
    why="The database holds every tenant's records; encryption at rest with our own key keeps snapshots, replicas and disks unreadable without a key we control and can audit.",
    types=[RDS_CLUSTER, RDS_INSTANCE, RDS_GLOBAL, RDS_CLUSTER_INSTANCE],
    check=check_rds_storage_encrypted,
    severity=CRITICAL,
    config=_KEY_SCHEMA,
    remediation="Set `storage_encrypted=True` and `kms_key_id=<customer key>.arn` (components.keys.customer_key). "
    "Encryption cannot be turned on in place: restore from an encrypted snapshot copy.",
    limits=KEY_ACCOUNT
    + "Whether a key named by ARN is a customer-managed key of this stack is not provable from the resource alone; AWS-managed keys are recognised by their `alias/aws/` names.",
    tags=["encryption", "data"],
)


_TLS_PARAMS = {
    "postgres": ("rds.force_ssl", "1"),
    "mysql": ("require_secure_transport", "1"),
    "mariadb": ("require_secure_transport", "1"),
}
# The first major version whose default parameter group sets rds.force_ssl to 1, by group family:
# RDS for PostgreSQL from 15 ("Requiring an SSL connection to a PostgreSQL DB instance",
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html#PostgreSQL.Concepts.General.SSL.Requiring),
# Aurora PostgreSQL from 17 (0 on 16 and older; "Securing Aurora PostgreSQL data with SSL/TLS",
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Security.html). MySQL and
# MariaDB groups are taken as leaving require_secure_transport off.
# In Aurora both are cluster-level parameters, set in the DB cluster parameter group: a DB (instance)
# parameter group of an `aurora-*` family cannot hold them, so only cluster groups are judged there
# (Aurora PostgreSQL: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Security.html,
# "require SSL/TLS for connections to your DB cluster" by rds.force_ssl: https://repost.aws/knowledge-center/aurora-postgresql-ssl-certificates;
# Aurora MySQL: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Security.html).
_TLS_BY_DEFAULT_FROM = {"postgres": 15, "aurora-postgresql": 17}
_FAMILY = re.compile(r"^(?P<engine>aurora-postgresql|postgres|aurora-mysql|mysql|mariadb)(?P<major>\d+)")
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"


def _default_forces_tls(family: str) -> bool:
    m = _FAMILY.match(family)
    return bool(m) and int(m.group("major")) >= _TLS_BY_DEFAULT_FROM.get(m.group("engine"), 10**6)


def _group_tls_problem(props: Any) -> str | None:
    """Why a parameter group lets clients connect without TLS, or None (a parameter it leaves
    unset takes its family's default)."""
    family = str(dig(props, "family", default=""))
    engine = next((e for e in ("postgres", "mysql", "mariadb") if e in family), None)
    if engine is None:
        return None
    param, value = _TLS_PARAMS[engine]
    params = {
        str(dig(p, "name", default="")).lower(): str(dig(p, "value", default="")).strip().lower()
        for p in as_list(dig(props, "parameters"))
    }
    got = params.get(param)
    if got is None:
        if _default_forces_tls(family):
            return None
        return f"RDS parameter group ({family}) must set `{param}` to {value}: clients may connect without TLS (the {family} default is off)"
    if got not in (value, "on", "true"):
        return f"RDS parameter group ({family}) must set `{param}` to {value}, not {got}"
    return None


_AUTONAME = re.compile(r"-[0-9a-f]{7}$")  # Pulumi's auto-naming: `<logical name>-<7 random hex>`


def _stack_group(stack: Stack, name: str, types: tuple[str, ...], region: str | None) -> Any | None:
    """The parameter group of the stack called `name` in `region` (names are per region): by its
    `name`, its `namePrefix`, or (no name given) Pulumi's auto-name from its logical name."""
    for group in stack.of(*types):
        if resource_region(group) != region:
            continue
        given, prefix = known(peek(group.props, "name")), known(peek(group.props, "namePrefix"))
        if given == name or (isinstance(prefix, str) and name.startswith(prefix)):
            return group
        if given is None and prefix is None and _AUTONAME.search(name) and name[:-8] == group.name:
            return group
    return None


def _engine_major(stack: Stack, db: Any) -> tuple[str, int | None]:
    """The database's engine and major version."""
    engine, version = dig(db.props, "engine", default=""), dig(db.props, "engineVersion")
    # a global cluster's member may leave the version to it; a read replica, its engine and version to its source
    for source in stack.linked(db, "globalClusterIdentifier", RDS_GLOBAL) + stack.linked(db, "replicateSourceDb", RDS_INSTANCE):
        engine = engine or dig(source.props, "engine", default="")
        version = version if version is not None else dig(source.props, "engineVersion")
    m = re.match(r"^(\d+)", str(version)) if version is not None else None
    return str(engine), int(m.group(1)) if m else None


def _database_tls_problem(stack: Stack, db: Any) -> str | None:
    """Why database `db` may accept connections without TLS, judged by the parameter group it
    names; an `Unverifiable` where the group cannot be told."""
    cluster = db.resource_type == RDS_CLUSTER
    prop, types = (
        ("dbClusterParameterGroupName", (CLUSTER_PARAMETER_GROUP,)) if cluster else ("parameterGroupName", (PARAMETER_GROUP,))
    )
    label = f"RDS {'cluster' if cluster else 'instance'} {db.name}"
    engine, major = _engine_major(stack, db)
    if not engine:
        return Unverifiable(
            f"{label} names no `engine` (nor a source of the stack that does): which TLS parameter applies is not judged"
        )
    if not any(e in engine for e in ("postgres", "mysql", "mariadb")):
        return None
    name = known(peek(db.props, prop))
    linked = stack.linked(db, prop, *types)
    if name is UNKNOWN:
        if len(linked) == 1:
            group = linked[0]
        else:
            raise unknown(prop)
    elif name in (None, "") or str(name).startswith("default."):
        family = str(name)[len("default.") :] if name else (f"{engine}{major}" if major is not None else "")
        if not family:
            return (
                f"{label} must name a parameter group that forces TLS in `{prop}` or pin `engineVersion`: its engine's "
                f"default group is the one of whatever version AWS picks, and {engine}'s leave TLS optional"
                + (f" before {_TLS_BY_DEFAULT_FROM[engine]}" if engine in _TLS_BY_DEFAULT_FROM else "")
            )
        if _default_forces_tls(family):
            return None
        return (
            f"{label} must use a parameter group that forces TLS (`{prop}`): it uses the default group of {family}, "
            f"which leaves TLS optional ({_TLS_PARAMS['postgres' if 'postgres' in family else 'mysql'][0]} is off by default"
            + (f" before {engine} {_TLS_BY_DEFAULT_FROM[engine]})" if engine in _TLS_BY_DEFAULT_FROM else ")")
        )
    else:
        group = _stack_group(stack, str(name), types, resource_region(db))
        if group is None:
            unnamed = [g for g in linked if known(peek(g.props, "name")) is UNKNOWN]
            if len(unnamed) != 1:
                return Unverifiable(
                    f"{label} names parameter group {name!r}, which is no group of this stack in its region "
                    f"{resource_region(db)}: whether it forces TLS is not judged here"
                )
            group = unnamed[0]
    problem = _group_tls_problem(group.props)
    if problem is None:
        return None
    return f"{label} must use a parameter group that forces TLS: it uses {group.name}, and {problem}"


def check_rds_tls_required(resources: list[Any], _config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)

    def judge_group(group: Any) -> list[tuple[str | None, str]]:
        if group.resource_type == PARAMETER_GROUP and str(dig(group.props, "family", default="")).startswith("aurora"):
            return []  # an Aurora cluster's TLS parameter is in its cluster parameter group (judged as the cluster's)
        problem = _group_tls_problem(group.props)
        return [(group.urn, problem)] if problem else []

    def judge_database(db: Any) -> list[tuple[str | None, str]]:
        problem = _database_tls_problem(stack, db)
        return [(db.urn, problem)] if problem else []

    return judge_each(stack.of(PARAMETER_GROUP, CLUSTER_PARAMETER_GROUP), judge_group) + judge_each(
        stack.of(RDS_CLUSTER, RDS_INSTANCE), judge_database
    )


rds_tls_required = stack_policy(
    "rds-parameter-group-tls-required",
    what="Checks that every RDS parameter group and every Aurora cluster parameter group for PostgreSQL forces TLS "
    "(`rds.force_ssl` 1, set or its family's default; MySQL / MariaDB: `require_secure_transport`), and that every Aurora / "
    "RDS cluster and RDS instance uses a "
    "group that does: the group of this stack it names in its own region (by name, prefix, Pulumi auto-name or, where "
    "the name is unknown at preview, its link), or an engine default group that forces TLS (RDS for PostgreSQL 15 and "
    "later, Aurora PostgreSQL 17 and later)",
    why="Database traffic crosses subnets and, for the dr member, regions: the server itself must refuse plaintext connections rather than trust every client to ask for TLS; a group that forces TLS holds only for the databases that use it.",
    reads=[PARAMETER_GROUP, CLUSTER_PARAMETER_GROUP, RDS_CLUSTER, RDS_INSTANCE, RDS_GLOBAL],
    check=check_rds_tls_required,
    severity=HIGH,
    remediation='Add `{"name": "rds.force_ssl", "value": "1"}` to the parameter group\'s `parameters`, name that group '
    "in each database's `db_cluster_parameter_group_name` / `parameter_group_name`, and use `sslmode=verify-full` in clients.",
    limits="A group named that the stack does not define (in the database's region) is an advisory naming it, never a pass; "
    "the engine defaults are AWS's documented ones (RDS for PostgreSQL: rds.force_ssl 1 from 15; Aurora PostgreSQL: from 17); "
    "MySQL and MariaDB default groups are taken as not forcing TLS. A DB (instance) parameter group of an `aurora-*` "
    "family is not judged, nor the one an Aurora cluster instance names: in Aurora `rds.force_ssl` and "
    "`require_secure_transport` are cluster-level parameters, held by the cluster's parameter group (judged), and AWS "
    "refuses them in an instance group. A same-region read replica naming no group "
    "takes its source's (judged there) where AWS would; it is judged here by its engine's default. Client certificate "
    "verification is the clients'.",
    tags=["encryption", "transit"],
)


# --- simple 'has a key' resources ------------------------------------------------------------


def _key_check(label: str, field: str, *, flag: str | None = None):
    def check(type_: str, props: Any, config: dict, provider: Any) -> list[str]:
        if flag is not None and not truthy(dig(props, flag, default=False)):
            return [f"{label} must set `{flag}: true` (the default is unencrypted)"]
        return _key_problem(label, peek(props, field), config, field, provider, props)

    return check


LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
INSTANCE_TYPES = {
    "aws:ec2/instance:Instance": "instance",
    "aws:ec2/spotInstanceRequest:SpotInstanceRequest": "spot instance request",
    LAUNCH_CONFIGURATION: "launch configuration",
}


def check_ebs_encrypted(type_: str, props: Any, config: dict, provider: Any) -> list[str]:
    if type_ == "aws:ebs/volume:Volume":
        return _key_check("EBS volume", "kmsKeyId", flag="encrypted")(type_, props, config, provider)
    disks: list[tuple[str, Any]] = []
    if type_ == "aws:ec2/launchTemplate:LaunchTemplate":
        disks = [
            (f"launch template block device {dig(m, 'deviceName', default=i)}", dig(m, "ebs"))
            for i, m in enumerate(as_list(dig(props, "blockDeviceMappings")))
        ]
        disks = [(n, d) for n, d in disks if d is not None]
    elif type_ in INSTANCE_TYPES:
        label = INSTANCE_TYPES[type_]
        disks = [(f"{label} root volume", dig(props, "rootBlockDevice", default={}))]
        disks += [
            (f"{label} volume {dig(d, 'deviceName', default=i)}", d) for i, d in enumerate(as_list(dig(props, "ebsBlockDevices")))
        ]
    out = []
    for label, disk in disks:
        if not truthy(dig(disk, "encrypted", default=False)):
            out.append(f"{label} must set `encrypted: true` (the default follows the account setting, often off)")
        elif type_ == LAUNCH_CONFIGURATION and dig(disk, "kmsKeyId") is None:
            continue  # a launch configuration's disks take no key: the account's EBS default key encrypts them
        else:
            out += _key_problem(label, peek(disk, "kmsKeyId"), config, "kmsKeyId", provider, props)
    return out


ebs_encrypted = resource_policy(
    "ebs-volume-encrypted",
    what="Checks that EBS volumes, launch-template block devices and the root and EBS volumes of instances, spot instance requests and launch configurations are encrypted (with a customer-managed KMS key wherever the resource takes one)",
    why="Node disks hold container images, logs and scratch data of every tenant scheduled on them; an unencrypted disk or snapshot leaks all of it.",
    types=["aws:ebs/volume:Volume", "aws:ec2/launchTemplate:LaunchTemplate", *INSTANCE_TYPES],
    check=check_ebs_encrypted,
    severity=HIGH,
    config=_KEY_SCHEMA,
    remediation="Set `encrypted=True` and `kms_key_id` on each volume / block device mapping (or enable EBS encryption by default with a customer key).",
    limits=KEY_ACCOUNT
    + "Volumes created at runtime (by the EBS CSI driver, by autoscaling from templates outside the stack) are covered only by the account's EBS encryption-by-default setting.",
    tags=["encryption", "data"],
)


def check_eks_secrets_encrypted(type_: str, props: Any, config: dict, provider: Any) -> list[str]:
    enc = dig(props, "encryptionConfig")
    resources = [str(r) for r in as_list(dig(enc, "resources"))]
    if "secrets" not in resources:
        return ['EKS cluster must envelope-encrypt Kubernetes secrets: set `encryptionConfig.resources: ["secrets"]`']
    return _key_problem(
        "EKS secrets encryption", peek(enc, "provider", "keyArn"), config, "encryptionConfig.provider.keyArn", provider, props
    )


eks_secrets_encrypted = resource_policy(
    "eks-cluster-secrets-encrypted",
    what="Checks that every EKS cluster envelope-encrypts Kubernetes secrets with a customer-managed KMS key",
    why="Cluster secrets include database credentials and service-account tokens; etcd backups must not expose them in clear.",
    types=["aws:eks/cluster:Cluster"],
    check=check_eks_secrets_encrypted,
    severity=HIGH,
    config=_KEY_SCHEMA,
    remediation='Set `encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]}` on the cluster.',
    limits=KEY_ACCOUNT + "Secrets written to other stores (ConfigMaps, environment variables) are not covered.",
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
    limits=KEY_ACCOUNT + "Who may publish or subscribe is judged by resource-policy-principals-in-account, not here.",
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
    limits=KEY_ACCOUNT + "Who may use the vault's key is the key policy's (resource-policy-principals-in-account).",
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
    limits=KEY_ACCOUNT
    + "Log groups created at runtime by services (e.g. Lambda, EKS if its group is not in the stack) are not in the plan.",
    tags=["encryption"],
)


def check_data_store_key(type_: str, props: Any, config: dict, provider: Any) -> list[str]:
    if type_ == SECRET:
        out = _key_problem("Secrets Manager secret", peek(props, "kmsKeyId"), config, "kmsKeyId", provider, props)
        for i, replica in enumerate(as_list(dig(props, "replicas"))):
            region = dig(replica, "region")
            out += key_problem(
                f"Secrets Manager secret replica in {region}",
                peek(replica, "kmsKeyId"),
                config,
                f"replicas[{i}].kmsKeyId",
                region,
                frozenset(provider_accounts(provider)),
            )
        return out
    if type_ == ECR_REPOSITORY:
        configs = as_list(dig(props, "encryptionConfigurations"))
        kind = str(dig(configs[0], "encryptionType", default="AES256")) if configs else "AES256"
        if kind != "KMS":
            return [f"ECR repository must use `encryptionType: KMS` with a customer-managed key, not {kind} (an AWS-owned key)"]
        return _key_problem(
            "ECR repository", peek(configs[0], "kmsKey"), config, "encryptionConfigurations[0].kmsKey", provider, props
        )
    # SQS: `sqsManagedSseEnabled` is SSE-SQS, a key AWS owns
    return _key_problem("SQS queue", peek(props, "kmsMasterKeyId"), config, "kmsMasterKeyId", provider, props)


SECRET = "aws:secretsmanager/secret:Secret"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
SQS_QUEUE = "aws:sqs/queue:Queue"

data_store_key = resource_policy(
    "data-store-customer-key",
    what="Checks that every Secrets Manager secret (and each of its replicas), ECR repository and SQS queue is encrypted with a customer-managed KMS key in its own region: not the default `aws/secretsmanager` key, not ECR's `AES256`, not SQS-managed SSE",
    why="Secrets hold database credentials, images carry the service's code and configuration, queues carry events; with AWS-owned or AWS-managed keys the key policy cannot limit who decrypts them, and no key grant or CloudTrail decrypt record shows who did.",
    types=[SECRET, ECR_REPOSITORY, SQS_QUEUE],
    check=check_data_store_key,
    severity=HIGH,
    config=_KEY_SCHEMA,
    remediation="Secrets: `kms_key_id=<customer key>.arn` (and on each replica); ECR: "
    '`encryption_configurations=[{"encryption_type": "KMS", "kms_key": key.arn}]` (replaces the repository); SQS: `kms_master_key_id=key.arn`.',
    limits=KEY_ACCOUNT
    + "Whether the named key's policy admits only the intended callers is judged by resource-policy-principals-in-account, not here.",
    tags=["encryption", "data"],
)


# --- S3 (stack rules: a bucket's settings live on separate resources) ------------------------

LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")


def inline_sse_rules(bucket_props: Any) -> list[Any]:
    """A bucket's inline default-encryption rules, in the shape of a BucketServerSideEncryptionConfiguration
    rule: `serverSideEncryptionConfiguration.rule` (Bucket) or the lists of BucketV2
    (`serverSideEncryptionConfigurations[].rules[].applyServerSideEncryptionByDefaults[]`)."""
    out = []
    rule = dig(bucket_props, "serverSideEncryptionConfiguration", "rule")
    if rule is not None:
        out.append(rule)
    for conf in as_list(dig(bucket_props, "serverSideEncryptionConfigurations")):
        for r in as_list(dig(conf, "rules")):
            for default in as_list(dig(r, "applyServerSideEncryptionByDefaults")) or [{}]:
                out.append({"applyServerSideEncryptionByDefault": default})
    return out


def alb_log_buckets(stack: Stack) -> set[str]:
    """URNs of the buckets a load balancer delivers its access logs to (`accessLogs.bucket`, by link or by
    name: given, prefix or Pulumi auto-name)."""
    out: set[str] = set()
    for lb in stack.of(*LOAD_BALANCERS):
        if not truthy(peek(lb.props, "accessLogs", "enabled", default=False)):
            continue
        out |= {b.urn for b in stack.linked(lb, "accessLogs", *S3_BUCKETS)}
        name = known(peek(lb.props, "accessLogs", "bucket"))
        if isinstance(name, str) and (bucket := named_bucket(stack, name)) is not None:
            out.add(bucket.urn)
    return out


def _name(resource: Any) -> str:
    return resource.urn.rsplit("::", 1)[-1]


_SSE_PROPS = ("rules", "serverSideEncryptionConfiguration", "serverSideEncryptionConfigurations")


def _key_owner_problems(stack: Stack, bucket: Any, owner: Any, key: Any, region: Any) -> list[Any]:
    """A bucket's default key must be a key of the bucket's region (S3 cannot use a key of another
    region: https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#sse-kms-requirements)
    and, for a tenant's bucket (tag `meridian:tenant`), that tenant's key: the key resource the
    setting was built from, with the same tenant tag."""
    keys = [k for prop in _SSE_PROPS for k in stack.linked(owner, prop, *KMS_KEYS)]
    out: list[Any] = []
    for k in keys:
        key_region = resource_region(k)
        if isinstance(region, str) and isinstance(key_region, str) and key_region != region:
            out.append(
                f"S3 default encryption must use a KMS key in the bucket's region {region}, not {_name(k)} of {key_region}: "
                "S3 cannot use a key of another region, so every write fails"
            )
    tenant = tags_of(bucket.props).get(TAG_TENANT)
    if tenant is UNKNOWN:
        return [*out, Unverifiable.at(f"tags.{TAG_TENANT}", "whose bucket is it, and so whose key must it use?")]
    if not tenant:
        return out
    if not keys:
        what = "a key from another resource" if key is UNKNOWN else f"whose key is {key}?"
        return [
            *out,
            Unverifiable.at(
                "rules.applyServerSideEncryptionByDefault.kmsMasterKeyId",
                f"{what} tenant {tenant}'s bucket must use tenant {tenant}'s key, and no key of the stack is linked",
            ),
        ]
    for k in keys:
        owner_tenant = key_tenant(stack, k, TAG_TENANT)
        if owner_tenant is UNKNOWN:
            out.append(Unverifiable.at(f"tags.{TAG_TENANT}", f"whose key is {_name(k)}?"))
        elif owner_tenant != tenant:
            out.append(
                f"Tenant {tenant}'s bucket must be encrypted under tenant {tenant}'s own KMS key (tag {TAG_TENANT}: {tenant}), "
                f"not {_name(k)} ({'tenant ' + str(owner_tenant) if owner_tenant else 'no tenant'}): whoever that key's policy "
                "lets decrypt reads this tenant's objects"
            )
    return out


def check_s3_encrypted(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)

    log_buckets = alb_log_buckets(stack)

    def accounts_of(r: Any) -> frozenset[str]:
        return frozenset(provider_accounts(r.provider.props if r.provider is not None else None))

    def judge(bucket: Any, configs: list[Any]) -> list[tuple[str | None, str]]:
        out = []
        rules = []
        for c in configs:
            try:
                rules += [(c, r) for r in as_list(dig(c.props, "rules"))]
            except UnknownValueError as exc:
                out.append((c.urn, Unverifiable.of(exc)))
        rules += [(bucket, r) for r in inline_sse_rules(bucket.props)]
        sse_s3_ok = bucket.urn in log_buckets and TAG_TENANT not in tags_of(bucket.props)
        if not rules and not out:
            out.append(
                (
                    bucket.urn,
                    "S3 bucket must have default encryption with a KMS key (a BucketServerSideEncryptionConfiguration); "
                    "the default SSE-S3 uses an AWS-owned key",
                )
            )
        region = resource_region(bucket)
        for owner, rule in rules:
            try:
                default = dig(rule, "applyServerSideEncryptionByDefault", default={})
                algorithm = dig(default, "sseAlgorithm")
                if algorithm == "AES256" and sse_s3_ok:
                    continue  # ALB log delivery writes only to SSE-S3 buckets: the one place the AWS-owned key is the rule
                if algorithm not in ("aws:kms", "aws:kms:dsse"):
                    out.append((owner.urn, f"S3 default encryption must use `aws:kms` with a customer key, not {algorithm}"))
                else:
                    key = peek(default, "kmsMasterKeyId")
                    problems = key_problem(
                        "S3 default encryption",
                        key,
                        config,
                        "rules.applyServerSideEncryptionByDefault.kmsMasterKeyId",
                        region if isinstance(region, str) else None,
                        accounts=accounts_of(bucket),
                    )
                    out += [(owner.urn, m) for m in problems]
                    if not problems:
                        out += [(owner.urn, m) for m in _key_owner_problems(stack, bucket, owner, key, region)]
            except UnknownValueError as exc:
                out.append((owner.urn, Unverifiable.of(exc)))
        return out

    def judge_replication(r: Any) -> list[tuple[str | None, str]]:
        out = []
        for rule in as_list(dig(r.props, "rules")):
            if str(dig(rule, "status", default="Enabled")).lower() == "disabled":
                continue
            for dest in as_list(dig(rule, "destination")):
                out += [
                    (r.urn, m)
                    for m in key_problem(
                        f"S3 replication rule {dig(rule, 'id', default='?')} replica encryption",
                        peek(dest, "encryptionConfiguration", "replicaKmsKeyId"),
                        config,
                        "rules.destination.encryptionConfiguration.replicaKmsKeyId",
                        accounts=accounts_of(r),
                    )
                ]
        return out

    return judge_buckets(stack, S3_SSE, judge) + judge_each(stack.of(S3_REPLICATION), judge_replication)


s3_encrypted = stack_policy(
    "s3-bucket-encrypted",
    what="Checks that every S3 bucket (Bucket and BucketV2, default encryption inline or as its own resource) has default encryption `aws:kms` with a customer-managed KMS key, except a bucket that receives a load balancer's access logs and holds no tenant's data, which may use SSE-S3 (`AES256`, the only encryption ALB log delivery accepts), and that every S3 replication rule encrypts its replicas with one (`replicaKmsKeyId`); a bucket's default key must be in the bucket's region, and a tenant's bucket (tag `meridian:tenant`) must use the key of the stack, linked, that carries the same tenant tag, or a replica key of that key (linked by `primaryKeyArn`, whose key material it holds) (unknown -> advisory)",
    why="Buckets hold tenant data (pool prefixes and silo buckets); each tenant's key only protects its data if the bucket default is KMS too.",
    reads=[*S3_BUCKETS, *S3_SSE, S3_REPLICATION],
    check=check_s3_encrypted,
    severity=CRITICAL,
    config=_KEY_SCHEMA,
    remediation='Add a BucketServerSideEncryptionConfiguration with `sse_algorithm="aws:kms"`, `kms_master_key_id=<key>.arn` '
    "and `bucket_key_enabled=True` (components.bucket.SecureBucket does this).",
    limits=KEY_ACCOUNT
    + BUCKET_SETTINGS
    + " Objects written before the default changed keep their old encryption; a writer may name another key per request (the tenant bucket policy binds keys, judged by the tenancy rules).",
    tags=["encryption", "data"],
)


def _covers(patterns: tuple[Any, ...], arn: str) -> bool:
    return any(p is not UNKNOWN and fnmatch.fnmatchcase(arn, str(p)) for p in patterns)


def denies_insecure_transport(document: Any, bucket_name: str) -> bool:
    """Whether a Deny to everyone of every S3 action without TLS covers this bucket and all its objects."""
    bucket_arn = f"arn:aws:s3:::{bucket_name}"
    for st in parse(document):
        if st.effect != "deny" or not public(st) or not any(a in ("s3:*", "*") for a in st.actions) or st.not_resources:
            continue
        if not (_covers(st.resources, bucket_arn) and _covers(st.resources, f"{bucket_arn}/*")):
            continue
        if any(
            str(op).lower() == "bool" and str(key).lower() == "aws:securetransport" and "false" in [str(v).lower() for v in vals]
            for op, key, vals in st.conditions
        ):
            return True
    return False


def check_s3_tls_only(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    must_deny = (
        "must deny `s3:*` to `Principal: *` when `aws:SecureTransport` is false, on this bucket's own ARN and its objects "
        "(`arn:aws:s3:::<bucket>` and `arn:aws:s3:::<bucket>/*`)"
    )

    def judge(bucket: Any, policies: list[Any]) -> list[tuple[str | None, str]]:
        holders = [(p, p.props, dig(p.props, "bucket")) for p in policies]
        if peek(bucket.props, "policy") is not None:
            holders.append((bucket, bucket.props, dig(bucket.props, "bucket")))
        if not holders:
            return [(bucket.urn, f"S3 bucket must have a bucket policy that {must_deny.removeprefix('must ')}")]
        # a bucket has one policy: with several, whichever is applied last is in force, so each must deny
        out = []
        for holder, props, name in holders:
            try:
                if not isinstance(name, str) or not name:
                    raise unknown("bucket")
                if not denies_insecure_transport(dig(props, "policy"), name):
                    others = f" (one of {len(holders)} policies of this bucket: whichever is applied last is in force)"
                    out.append((holder.urn, f"S3 bucket policy {must_deny}{others if len(holders) > 1 else ''}"))
            except UnknownValueError as exc:
                out.append((holder.urn, Unverifiable.of(exc, "does it deny plain HTTP?")))
        return out

    return judge_buckets(Stack(resources), [S3_POLICY], judge)


s3_tls_only = stack_policy(
    "s3-bucket-tls-only",
    what="Checks that every S3 bucket has a bucket policy (inline or BucketPolicy) whose Deny to `*` of `s3:*` without TLS (`aws:SecureTransport` false) covers that same bucket's ARN and all its objects, and that every policy applying to a bucket does (a bucket has one policy: whichever is applied last is in force)",
    why="S3 accepts plain HTTP by default; only a deny in the bucket policy guarantees tenant objects never travel unencrypted.",
    reads=[*S3_BUCKETS, S3_POLICY],
    check=check_s3_tls_only,
    severity=HIGH,
    remediation="Add a BucketPolicy with a Deny of `s3:*` on the bucket and `bucket/*` for `Principal: *` under "
    "`Condition: {Bool: {aws:SecureTransport: false}}` (components.bucket.bucket_policy).",
    limits=BUCKET_SETTINGS + " A Deny covering the bucket through a wildcard ARN counts.",
    tags=["encryption", "transit"],
)


# AWS KMS schedules deletion 7 to 30 days ahead, 30 when not given (ScheduleKeyDeletion, PendingWindowInDays:
# https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html)
KMS_MAX_DELETION_WINDOW = 30


def check_kms_key(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    out = []
    replica = type_ == KMS_REPLICA_KEY  # its rotation and spec are its primary's; `enabled`, not `isEnabled`
    enabled = "enabled" if replica else "isEnabled"
    if not truthy(dig(props, enabled, default=True)):
        out.append(f"KMS key must be enabled (`{enabled}: true`, the default): a disabled key decrypts nothing it protects")
    window = float(dig(props, "deletionWindowInDays", default=KMS_MAX_DELETION_WINDOW))
    minimum = float(config.get("minDeletionWindowDays", KMS_MAX_DELETION_WINDOW))
    if window < minimum:
        out.append(
            f"KMS key must keep a deletion window of at least {minimum:g} days (`deletionWindowInDays`), not {window:g}: "
            "the window is the only time to cancel a scheduled deletion before everything the key encrypted is lost"
        )
    if not replica and truthy(dig(props, "multiRegion", default=False)):
        out.append(
            "KMS key must be single-Region (`multiRegion` false, the default): a multi-Region primary key can be "
            "replicated (ReplicateKey) into any region, outside the stack's zone, by whoever the key policy lets"
        )
    spec = peek(props, "customerMasterKeySpec") or peek(props, "keySpec") or "SYMMETRIC_DEFAULT"
    if not replica and spec == "SYMMETRIC_DEFAULT" and not truthy(dig(props, "enableKeyRotation", default=False)):
        out.append("KMS key must set `enableKeyRotation: true` (symmetric keys; the default is off)")
    policy = dig(props, "policy")
    if policy is not None:
        for st in parse(policy):
            if st.allow and public(st) and not st.conditions:
                out.append(
                    f"KMS key policy must not allow `Principal: *` without a condition ({st.label}): it lets any AWS account use or manage the key"
                )
    return out


kms_key_guarded = resource_policy(
    "kms-key-rotation-and-policy",
    what="Checks that every KMS key is single-Region (`multiRegion` off), every symmetric key rotates (`enableKeyRotation`), is enabled (`isEnabled`, default true), keeps a "
    "deletion window (`deletionWindowInDays`, AWS's default 30) of at least `minDeletionWindowDays`, and that its key policy, "
    "where set, allows nothing to `Principal: *` without a condition; a multi-Region replica key (`aws:kms/replicaKey`) "
    "likewise for `enabled`, its deletion window and its policy (its rotation is its primary's)",
    why="Keys guard every tenant's data; rotation limits what one leaked key version decrypts, a public key policy hands the key to "
    "every AWS account, and a multi-Region key's replicas (same key material) can be created in any region, out of zone.",
    types=list(KMS_KEYS),
    check=check_kms_key,
    severity=HIGH,
    config={
        "minDeletionWindowDays": {
            "type": "integer",
            "minimum": 7,
            "maximum": KMS_MAX_DELETION_WINDOW,
            "default": KMS_MAX_DELETION_WINDOW,
            "description": "shortest deletion window a key may have, days (generated from the program's key window; AWS allows 7-30)",
        }
    },
    remediation="Use components.keys.customer_key (rotation on, a policy where the account administers the key and named services use it).",
    limits="Principals outside the account are judged by resource-policy-principals-in-account; grants made at runtime are not "
    "in the plan; a key disabled or scheduled for deletion after `up` (DisableKey, ScheduleKeyDeletion) is CloudTrail's and "
    "the key policy's to prevent, not the plan's.",
    tags=["encryption"],
)

LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
CLASSIC_ELB = "aws:elb/loadBalancer:LoadBalancer"
_TLS_POLICIES = [
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
]


def check_listener_tls(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if type_ == CLASSIC_ELB:
        # a classic ELB cannot redirect: every listener must terminate TLS itself
        return [
            f"Classic load balancer listener on port {dig(listener, 'lbPort')} must use HTTPS or SSL, not {protocol.upper()}"
            for listener in as_list(dig(props, "listeners"))
            if (protocol := str(dig(listener, "lbProtocol", default=""))).lower() not in ("https", "ssl")
        ]
    protocol = str(dig(props, "protocol", default="HTTP")).upper()
    if protocol in ("HTTPS", "TLS"):
        policy = dig(props, "sslPolicy")
        allowed = config.get("allowedSslPolicies", _TLS_POLICIES)
        if policy not in allowed:
            return [
                f"Load balancer listener must use a current TLS policy ({', '.join(allowed)}), not {policy or 'the provider default (ELBSecurityPolicy-2016-08)'}"
            ]
        return []
    if protocol == "HTTP":
        actions = as_list(dig(props, "defaultActions"))
        if actions and all(
            dig(a, "type") == "redirect" and str(dig(a, "redirect", "protocol", default="")).upper() == "HTTPS" for a in actions
        ):
            return []
        return ["Load balancer HTTP listener must only redirect to HTTPS"]
    return [f"Load balancer listener must use HTTPS or TLS, not {protocol}"]


listener_tls = resource_policy(
    "lb-listener-tls",
    what="Checks that every ALB / NLB listener speaks HTTPS or TLS with a current TLS policy (TLS 1.2+ with TLS 1.3), or is an HTTP listener that only redirects to HTTPS, and that every classic ELB listener speaks HTTPS or SSL",
    why="Tenant API traffic crosses the internet; the provider default TLS policy (2016-08) still accepts TLS 1.0 and weak ciphers.",
    types=[*LISTENERS, CLASSIC_ELB],
    check=check_listener_tls,
    severity=HIGH,
    config={
        "allowedSslPolicies": {
            "type": "array",
            "items": {"type": "string"},
            "default": _TLS_POLICIES,
            "description": "ELB security policies listeners may use",
        }
    },
    remediation='Set `protocol="HTTPS"` (or TLS), `ssl_policy="ELBSecurityPolicy-TLS13-1-2-2021-06"` and a certificate; make port 80 a redirect.',
    limits="A classic ELB's TLS policy lives on separate ELB policy resources and is not judged: the protocol is.",
    tags=["encryption", "transit"],
)

POLICIES = [
    kms_key_guarded,
    listener_tls,
    rds_storage_encrypted,
    rds_tls_required,
    ebs_encrypted,
    eks_secrets_encrypted,
    sns_encrypted,
    backup_vault_encrypted,
    log_group_encrypted,
    s3_encrypted,
    s3_tls_only,
    data_store_key,
]
