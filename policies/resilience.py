"""Data protection and failover readiness: deletion protection, backups, vault lock, versioning,
Route 53 failover pairs with health checks, a database member in the dr region."""

from __future__ import annotations

from typing import Any

from ruleutil import (
    BACKUP_VAULT,
    CRITICAL,
    HIGH,
    MEDIUM,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_GLOBAL,
    RDS_INSTANCE,
    S3_BUCKETS,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    judge_buckets,
    judge_each,
    peek,
    resource_policy,
    resource_region,
    stack_policy,
    truthy,
)


def check_deletion_protection(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if not truthy(dig(props, "deletionProtection", default=False)):
        return [f"RDS {type_.rsplit(':', 1)[-1]} must set `deletionProtection: true` (the default is off)"]
    return []


deletion_protection = resource_policy(
    "rds-deletion-protection-enabled",
    what="Checks that every Aurora global cluster, Aurora cluster and RDS instance has deletion protection on",
    why="A mistaken `pulumi destroy`, a rename that becomes replace, or a console click must not be able to delete the platform database.",
    types=[RDS_CLUSTER, RDS_INSTANCE, RDS_GLOBAL],
    check=check_deletion_protection,
    severity=HIGH,
    remediation="Set `deletion_protection=True` (and `protect=True` in the resource options); turn it off deliberately, in a reviewed change, before a planned deletion.",
    tags=["data-protection"],
)


def check_backup_retention(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    minimum = int(config.get("minRetentionDays", 7))
    if type_ == RDS_INSTANCE and peek(props, "replicateSourceDb") is not None and config.get("exemptReadReplicas", True):
        return []  # a read replica's data lives on in its source's backups
    days = dig(props, "backupRetentionPeriod")
    if days is None:
        return [f"RDS {type_.rsplit(':', 1)[-1]} must set `backupRetentionPeriod` to at least {minimum} days (the default is 1)"]
    if float(days) < minimum:
        return [f"RDS {type_.rsplit(':', 1)[-1]} must keep backups at least {minimum} days, not {int(float(days))}"]
    return []


backup_retention = resource_policy(
    "rds-backup-retention-sufficient",
    what="Checks that every Aurora cluster and RDS instance (read replicas exempt by default) keeps automated backups for at least `minRetentionDays`",
    why="Point-in-time recovery is the answer to corruption and bad migrations, which replicate instantly to the dr member; the recovery window must cover how long such damage goes unnoticed.",
    types=[RDS_CLUSTER, RDS_INSTANCE],
    check=check_backup_retention,
    severity=HIGH,
    config={
        "minRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "maximum": 35,
            "default": 7,
            "description": "minimum automated backup retention, days",
        },
        "exemptReadReplicas": {
            "type": "boolean",
            "default": True,
            "description": "skip instances with `replicateSourceDb` (they restore from their source)",
        },
    },
    remediation="Set `backup_retention_period` (config `meridian:dr.backup_retention_days`, which AWS Backup continuous backup shares) to at least the minimum.",
    tags=["data-protection"],
)

VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"


def check_vault_lock(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    minimum = int(config.get("minRetentionDays", 7))
    by_name = {peek(v.props, "name"): v for v in stack.of(BACKUP_VAULT) if isinstance(peek(v.props, "name"), str)}
    locks: dict[str, list[Any]] = {}
    for lock in stack.of(VAULT_LOCK):
        name = peek(lock.props, "backupVaultName")
        vaults = stack.linked(lock, "backupVaultName", BACKUP_VAULT) or (
            [by_name[name]] if isinstance(name, str) and name in by_name else []
        )
        for vault in vaults:
            locks.setdefault(vault.urn, []).append(lock)

    def judge_lock(lock: Any) -> list[tuple[str | None, str]]:
        days = dig(lock.props, "minRetentionDays")
        return (
            [(lock.urn, f"Backup vault lock must set `minRetentionDays` to at least {minimum}")]
            if days is None or float(days) < minimum
            else []
        )

    def judge(vault: Any) -> list[tuple[str | None, str]]:
        mine = locks.get(vault.urn, [])
        if not mine:
            return [
                (
                    vault.urn,
                    "Backup vault must have a vault lock (VaultLockConfiguration) so recovery points cannot be deleted early",
                )
            ]
        return judge_each(mine, judge_lock)

    return judge_each(stack.of(BACKUP_VAULT), judge)


vault_lock = stack_policy(
    "backup-vault-lock-enabled",
    what="Checks that every AWS Backup vault has a vault lock whose minimum retention is at least `minRetentionDays`",
    why="Ransomware and compromised admins delete backups first; a vault lock makes recovery points immutable for the retention window.",
    reads=[BACKUP_VAULT, VAULT_LOCK],
    check=check_vault_lock,
    severity=HIGH,
    config={
        "minRetentionDays": {"type": "integer", "minimum": 1, "default": 7, "description": "minimum vault-lock retention, days"}
    },
    remediation="Add a VaultLockConfiguration for the vault with `min_retention_days` >= the minimum (and `changeable_for_days` to enter compliance mode once tested).",
    tags=["data-protection"],
)

S3_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")


def check_versioning(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    def judge_config(v: Any) -> list[tuple[str | None, str]]:
        status = dig(v.props, "versioningConfiguration", "status")
        return [(v.urn, f"S3 bucket versioning must be Enabled, not {status}")] if status != "Enabled" else []

    def judge(bucket: Any, mine: list[Any]) -> list[tuple[str | None, str]]:
        if not mine and not truthy(dig(bucket.props, "versioning", "enabled", default=False)):
            return [(bucket.urn, "S3 bucket must have versioning enabled (a BucketVersioning with status Enabled)")]
        return judge_each(mine, judge_config)

    return judge_buckets(Stack(resources), S3_VERSIONING, judge)


versioning = stack_policy(
    "s3-bucket-versioning-enabled",
    what="Checks that every S3 bucket has versioning enabled",
    why="Versioning is what lets us undo an overwrite or delete of tenant objects, and S3 replication requires it.",
    reads=[*S3_BUCKETS, *S3_VERSIONING],
    check=check_versioning,
    severity=MEDIUM,
    remediation='Add a BucketVersioning with `versioning_configuration={"status": "Enabled"}` (components.bucket.SecureBucket does this).',
    tags=["data-protection"],
)

RECORD = "aws:route53/record:Record"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
ZONE = "aws:route53/zone:Zone"


def _failover_type(record: Any) -> str | None:
    policies = as_list(dig(record.props, "failoverRoutingPolicies"))
    return str(dig(policies[0], "type")).upper() if policies else None


def _record_key(stack: Stack, record: Any) -> tuple:
    """Records answer the same name if they share zone (resource or id), name and type."""
    zones = tuple(sorted(z.urn for z in stack.linked(record, "zoneId", ZONE)))
    zone = zones or dig(record.props, "zoneId")
    name = str(dig(record.props, "name", default="")).rstrip(".").lower()
    return (zone, name, str(dig(record.props, "type", default="")).upper())


def check_failover_pairs(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    secondaries: set[tuple] = set()
    primaries = []

    def index(record: Any) -> list[tuple[str | None, str]]:
        kind = _failover_type(record)
        if kind == "SECONDARY":
            secondaries.add(_record_key(stack, record))
        elif kind == "PRIMARY":
            primaries.append(record)
        return []

    out = judge_each(stack.of(RECORD), index)

    def judge(record: Any) -> list[tuple[str | None, str]]:
        found = []
        name = dig(record.props, "name")
        check = peek(record.props, "healthCheckId")
        if check in (None, "") and not stack.linked(record, "healthCheckId", HEALTH_CHECK):
            found.append(
                (
                    record.urn,
                    f"PRIMARY failover record {name} must have a health check (`healthCheckId`): without one Route 53 never fails over",
                )
            )
        if _record_key(stack, record) not in secondaries:
            found.append(
                (record.urn, f"PRIMARY failover record {name} must have a SECONDARY record for the same zone, name and type")
            )
        return found

    return out + judge_each(primaries, judge)


failover_pairs = stack_policy(
    "route53-failover-record-ready",
    what="Checks that every PRIMARY Route 53 failover record has a health check and a SECONDARY record for the same zone, name and type",
    why="Failover routing only moves traffic when the PRIMARY's health check fails and a SECONDARY exists; without either, a region outage is a full outage.",
    reads=[RECORD, HEALTH_CHECK],
    check=check_failover_pairs,
    severity=CRITICAL,
    remediation="Give the PRIMARY record `health_check_id=<HealthCheck>.id` and create the SECONDARY record pointing at the dr region (components.failover.Failover).",
    tags=["resilience", "failover"],
)


def _databases(stack: Stack) -> list[tuple[Any, list[Any]]]:
    """(database, its members or replicas) for each database in the stack."""
    out = []
    clusters = stack.of(RDS_CLUSTER)
    instances = stack.of(RDS_INSTANCE)
    for glob in stack.of(RDS_GLOBAL):
        ident = peek(glob.props, "globalClusterIdentifier")
        members = [
            c
            for c in clusters
            if glob in stack.linked(c, "globalClusterIdentifier")
            or (ident is not None and peek(c.props, "globalClusterIdentifier") == ident)
        ]
        out.append((glob, members))
    in_global = {c.urn for _, ms in out for c in ms}
    for cluster in clusters:
        if cluster.urn in in_global or peek(cluster.props, "replicationSourceIdentifier") is not None:
            continue
        replicas = [c for c in stack.referring(cluster, "replicationSourceIdentifier", RDS_CLUSTER)]
        out.append((cluster, replicas))
    for instance in instances:
        if peek(instance.props, "replicateSourceDb") is not None:
            continue
        out.append((instance, stack.referring(instance, "replicateSourceDb", RDS_INSTANCE)))
    return out


def check_dr_member(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    dr = config.get("drRegion")
    if not dr:
        return [(None, "drRegion is not configured for this stack: set it in policies/config/<stack>.json")]
    stack = Stack(resources)

    def judge(pair: tuple[Any, list[Any]]) -> list[tuple[str | None, str]]:
        database, members = pair
        in_dr = [m for m in members if resource_region(m) == dr]
        kind = database.resource_type.rsplit(":", 1)[-1]
        if not in_dr:
            return [
                (database.urn, f"{kind} must have a member (secondary cluster or cross-region replica) in the dr region {dr}")
            ]
        if database.resource_type == RDS_GLOBAL and not [
            m for m in in_dr if stack.referring(m, "clusterIdentifier", RDS_CLUSTER_INSTANCE)
        ]:
            return [(database.urn, f"{kind} secondary cluster in {dr} must have at least one instance to take over")]
        return []

    out = []
    for database, members in _databases(stack):
        try:
            out += judge((database, members))
        except UnknownValueError as exc:
            out.append((database.urn, Unverifiable.of(exc)))
    return out


dr_member = stack_policy(
    "rds-database-dr-member",
    what="Checks that every database (Aurora global cluster, standalone Aurora cluster, RDS instance that is not itself a replica) has a member with an instance in the stack's dr region",
    why="The failover records move traffic to the dr region; without a database there (an Aurora secondary or a cross-region read replica) the dr region serves only errors and the RPO is the last backup.",
    reads=[RDS_CLUSTER, RDS_INSTANCE, RDS_GLOBAL],
    check=check_dr_member,
    severity=CRITICAL,
    config={
        "drRegion": {
            "type": "string",
            "description": "the dr region of the stack's pair (set per stack in policies/config/<stack>.json)",
        }
    },
    required=["drRegion"],
    remediation="Use components.database.ReplicatedDatabase: Aurora global with a secondary cluster (and an instance) in the dr region, or an RDS cross-region read replica there.",
    tags=["resilience", "failover"],
)

TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")


def check_target_group_health(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if str(dig(props, "targetType", default="instance")) == "lambda":
        return []  # Lambda targets are health-checked only when asked, and then by invocation
    check = dig(props, "healthCheck", default={}) or {}
    if not truthy(dig(check, "enabled", default=True)):
        return ["Target group must keep its health check enabled: the load balancer would send requests to dead targets"]
    protocol = str(dig(check, "protocol", default=dig(props, "protocol", default="HTTP"))).upper()
    if protocol not in ("HTTP", "HTTPS"):
        return []  # TCP/TLS checks only open a connection: nothing more to state
    out = []
    path = dig(check, "path")
    if not path:
        out.append("Target group health check must name the service's health path (`healthCheck.path`), not the default `/`")
    matcher = dig(check, "matcher")
    if not matcher:
        out.append(
            "Target group health check must state the healthy status (`healthCheck.matcher`, e.g. 200): the default accepts any 200-399"
        )
    return out


target_group_health = resource_policy(
    "lb-target-group-health-checked",
    what="Checks that every load balancer target group (except Lambda) keeps its health check on, and that HTTP(S) checks name the service's health path and the status that counts as healthy",
    why="Weighted rollouts and failover rest on the load balancer taking unready pods out: the default check (`/`, any 2xx-3xx) passes a pod whose database is gone, and a disabled check sends tenants' requests to dead targets.",
    types=list(TARGET_GROUPS),
    check=check_target_group_health,
    severity=HIGH,
    remediation='Set `health_check={"enabled": True, "path": "/healthz", "matcher": "200", ...}` (components.ingress does).',
    tags=["resilience", "network"],
)

POLICIES = [deletion_protection, backup_retention, vault_lock, versioning, failover_pairs, dr_member, target_group_health]
