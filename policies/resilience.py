"""Data protection and failover readiness: deletion protection, backups, vault lock, versioning,
Route 53 failover pairs with health checks, a database member in the dr region."""

from __future__ import annotations

import re
from typing import Any

from encryption import alb_log_buckets
from ruleutil import (
    BACKUP_VAULT,
    BUCKET_SETTINGS,
    CRITICAL,
    HIGH,
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
    peek,
    resource_policy,
    resource_region,
    stack_policy,
    tags_of,
    truthy,
    unknown,
)


def check_deletion_protection(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    kind = type_.rsplit(":", 1)[-1]
    out = []
    if not truthy(dig(props, "deletionProtection", default=False)):
        out.append(f"RDS {kind} must set `deletionProtection: true` (the default is off)")
    replica = peek(props, "replicateSourceDb") is not None or peek(props, "replicationSourceIdentifier") is not None
    if type_ != RDS_GLOBAL and not replica and truthy(dig(props, "skipFinalSnapshot", default=False)):
        out.append(
            f"RDS {kind} must keep a final snapshot on deletion (`skipFinalSnapshot: false` with a `finalSnapshotIdentifier`)"
        )
    return out


deletion_protection = resource_policy(
    "rds-deletion-protection-enabled",
    what="Checks that every Aurora global cluster, Aurora cluster and RDS instance has deletion protection on, and that every cluster and instance that is not a replica keeps a final snapshot on deletion",
    why="A mistaken `pulumi destroy`, a rename that becomes replace, or a console click must not be able to delete the platform database.",
    types=[RDS_CLUSTER, RDS_INSTANCE, RDS_GLOBAL],
    check=check_deletion_protection,
    severity=HIGH,
    remediation="Set `deletion_protection=True` (and `protect=True` in the resource options); turn it off deliberately, in a reviewed change, before a planned deletion.",
    limits="Deletion protection stops API deletes, not a `pulumi destroy` of a resource whose protection a reviewed change turned off; whether the final snapshot is ever restorable is AWS's.",
    tags=["data-protection"],
)


SECRET = "aws:secretsmanager/secret:Secret"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
# what deletes a data holder with its contents and no way back, by type: (property, its dangerous value, why)
_FORCE_DELETION = {
    **{t: ("forceDestroy", "deletes the bucket with every object version in it") for t in S3_BUCKETS},
    BACKUP_VAULT: ("forceDestroy", "deletes the vault with every recovery point in it"),
    # the images the running pods pull (and the only copy of a release's image once its build is gone)
    ECR_REPOSITORY: ("forceDelete", "deletes the repository with every image in it"),
}


def check_production_deletion(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if not truthy(config.get("production", False)):
        return []
    kind = type_.rsplit(":", 1)[-1]
    if type_ == SECRET:
        window = dig(props, "recoveryWindowInDays")  # absent: AWS keeps a deleted secret 30 days
        if window is not None and float(window) == 0:
            return [
                "Secret in a production stack must keep a recovery window (`recoveryWindowInDays` 7 to 30, 30 when absent), "
                "not 0: a deletion (a rename that becomes replace, a `pulumi destroy`) loses the credential at once, with no restore"
            ]
        return []
    prop, why = _FORCE_DELETION[type_]
    if truthy(dig(props, prop, default=False)):
        return [f"{kind} in a production stack must not set `{prop}: true`: a `pulumi destroy` or a replace {why}"]
    return []


production_deletion = resource_policy(
    "production-data-not-force-deletable",
    what="Checks that in a production stack (`production`, generated from the stack config) no S3 bucket or AWS Backup vault "
    "is force-destroyable (`forceDestroy`), no ECR repository force-deletable (`forceDelete`) and no Secrets Manager secret is deleted without a recovery window (`recoveryWindowInDays: 0`)",
    why="A production bucket, vault or secret is the data itself, its last copy, or the credential to it, and a production "
    "repository holds the images every running pod pulls: `forceDestroy`, `forceDelete` and a zero "
    "recovery window turn a mistaken destroy or a replace into a loss nothing undoes. The stack config refuses "
    "`teardown.force_delete` in production; this is the check that the plan obeys it.",
    types=[*S3_BUCKETS, BACKUP_VAULT, ECR_REPOSITORY, SECRET],
    check=check_production_deletion,
    severity=HIGH,
    config={
        "production": {
            "type": "boolean",
            "default": False,
            "description": "the stack is a production stack (generated from the stack config's `production`)",
        }
    },
    remediation="Leave `force_destroy` / `force_delete` off (components read `meridian:teardown.force_delete`, false in production) and "
    "`recovery_window_in_days` unset or 7..30; empty a bucket or vault by hand in a reviewed teardown.",
    limits="Outside production nothing is judged (teardown of test stacks deletes their data on purpose); `protect` and "
    "deletion protection are other rules' or Pulumi's.",
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
    limits="Whether automated backups succeed and restore is not provable from the plan: DR drills (`meridian drill restore`) show it.",
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

    compliance = str(config.get("lockMode", "compliance")) == "compliance"

    def judge_lock(lock: Any) -> list[tuple[str | None, str]]:
        out = []
        days = dig(lock.props, "minRetentionDays")
        if days is None or float(days) < minimum:
            out.append((lock.urn, f"Backup vault lock must set `minRetentionDays` to at least {minimum}"))
        if compliance and dig(lock.props, "changeableForDays") is None:
            out.append(
                (
                    lock.urn,
                    "Backup vault lock must set `changeableForDays` (compliance mode): without it the lock stays in governance "
                    "mode and any principal with backup:DeleteBackupVaultLockConfiguration removes it",
                )
            )
        return out

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
    what="Checks that every AWS Backup vault has a vault lock whose minimum retention is at least `minRetentionDays` and, where the config's `lockMode` is compliance, that sets `changeableForDays` (compliance mode once the grace days pass)",
    why="Ransomware and compromised admins delete backups first; a vault lock makes recovery points immutable for the retention window.",
    reads=[BACKUP_VAULT, VAULT_LOCK],
    check=check_vault_lock,
    severity=HIGH,
    config={
        "minRetentionDays": {"type": "integer", "minimum": 1, "default": 7, "description": "minimum vault-lock retention, days"},
        "lockMode": {
            "type": "string",
            "enum": ["compliance", "governance"],
            "default": "compliance",
            "description": "compliance: every lock must set changeableForDays (generated from the stack's dr settings)",
        },
    },
    remediation="Add a VaultLockConfiguration for the vault with `min_retention_days` >= the minimum (and `changeable_for_days` to enter compliance mode once tested).",
    limits="Whether the lock's grace period has passed (compliance is reached only after `changeableForDays`) and what AWS Backup really holds are facts of the account, not the plan.",
    tags=["data-protection"],
)

S3_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")


def check_versioning(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    def judge_config(v: Any) -> list[tuple[str | None, str]]:
        status = dig(v.props, "versioningConfiguration", "status")
        return [(v.urn, f"S3 bucket versioning must be Enabled, not {status}")] if status != "Enabled" else []

    def judge(bucket: Any, mine: list[Any]) -> list[tuple[str | None, str]]:
        inline = [dig(bucket.props, "versioning")] + as_list(dig(bucket.props, "versionings"))  # Bucket, BucketV2
        if not mine and not any(truthy(dig(v, "enabled", default=False)) for v in inline):
            return [(bucket.urn, "S3 bucket must have versioning enabled (a BucketVersioning with status Enabled)")]
        return judge_each(mine, judge_config)

    return judge_buckets(Stack(resources), S3_VERSIONING, judge)


versioning = stack_policy(
    "s3-bucket-versioning-enabled",
    what="Checks that every S3 bucket has versioning enabled (a BucketVersioning with status Enabled, or inline: Bucket's `versioning`, BucketV2's `versionings`)",
    why="Versioning is what lets us undo an overwrite or delete of tenant objects, and S3 replication requires it.",
    reads=[*S3_BUCKETS, *S3_VERSIONING],
    check=check_versioning,
    severity=MEDIUM,
    remediation='Add a BucketVersioning with `versioning_configuration={"status": "Enabled"}` (components.bucket.SecureBucket does this).',
    limits=BUCKET_SETTINGS
    + " Versioning keeps old versions; how long is the lifecycle rule's and s3-lifecycle-keeps-retention's concern. MFA delete is not required.",
    tags=["data-protection"],
)

S3_LIFECYCLE = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)


def _expirations(rule: Any) -> list[tuple[str, Any]]:
    """(what expires, after how many days or on which date) of one lifecycle rule, in any of the
    shapes: BucketLifecycleConfiguration, Bucket's inline `lifecycleRules`, BucketV2's lists."""
    out = []
    for exp in as_list(dig(rule, "expiration")) + as_list(dig(rule, "expirations")):
        if dig(exp, "date") is not None:
            out.append(("current objects", f"on {dig(exp, 'date')}"))
        if dig(exp, "days") is not None:
            out.append(("current objects", dig(exp, "days")))
    for exp in as_list(dig(rule, "noncurrentVersionExpiration")) + as_list(dig(rule, "noncurrentVersionExpirations")):
        days = dig(exp, "noncurrentDays", default=dig(exp, "days"))
        if days is not None:
            out.append(("noncurrent versions", days))
    return out


def _enabled(rule: Any) -> bool:
    status = dig(rule, "status")
    return str(status).lower() == "enabled" if status is not None else truthy(dig(rule, "enabled", default=True))


def tenant_root(config: dict) -> str:
    """The key prefix under which every tenant's objects live: the folder of `tenantPrefix` before
    its `{tenant}` (`tenants/t-{tenant}/` -> `tenants/`); "" (the whole bucket) if it has none."""
    head = str(config.get("tenantPrefix", "tenants/t-{tenant}/")).split("{tenant}", 1)[0]
    return head[: head.rfind("/") + 1]


def _rule_prefix(rule: Any) -> str | None:
    """The key prefix a lifecycle rule's filter limits it to, in any of the shapes (`filter.prefix`,
    `filter.and.prefix`, the legacy rule-level `prefix`); None: no prefix, every key. Tags and
    object sizes narrow nothing the plan can tell (objects' tags are set at runtime)."""
    for filter_ in as_list(dig(rule, "filter")) or [None]:
        for value in (dig(filter_, "prefix"), dig(filter_, "and", "prefix")):
            if value:
                return str(value)
    legacy = dig(rule, "prefix")
    return str(legacy) if legacy else None


def covers_tenant_data(rule: Any, root: str) -> bool:
    """Whether a lifecycle rule may expire tenant objects: no prefix, or a prefix that contains the
    tenant root or lies within it. Raises `UnknownValueError` on a prefix only known after apply."""
    prefix = _rule_prefix(rule)
    return prefix is None or root.startswith(prefix) or prefix.startswith(root)


def check_lifecycle_retention(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    minimum = int(config.get("minRetentionDays", 35))
    root = tenant_root(config)
    stack = Stack(resources)
    log_buckets = alb_log_buckets(stack)

    def judge_rules(owner: Any, rules: list[Any], whole: str | None) -> list[tuple[str | None, str]]:
        """`whole`: why every key of the bucket counts (a tenant's own bucket, access logs), else
        only rules whose filter may select keys under the tenant root."""
        out = []
        for rule in rules:
            if not _enabled(rule) or (whole is None and not covers_tenant_data(rule, root)):
                continue
            prefix = _rule_prefix(rule)
            scope = f"under `{prefix}` " if prefix else ""
            why = whole or f"its filter may select tenant data under `{root}`"
            for what, when in _expirations(rule):
                if isinstance(when, str) or float(when) < minimum:
                    shown = when if isinstance(when, str) else f"after {int(float(when))} days"
                    out.append(
                        (
                            owner.urn,
                            f"S3 lifecycle rule {dig(rule, 'id', default='(no id)')} must not expire {what} {scope}{shown}: "
                            f"keep them at least {minimum} days (the recovery window; {why})",
                        )
                    )
        return out

    def judge(bucket: Any, configs: list[Any]) -> list[tuple[str | None, str]]:
        tenant = tags_of(bucket.props).get(TAG_TENANT)
        whole = None
        if tenant is UNKNOWN:
            whole = f"its {TAG_TENANT} tag is unknown at preview: the whole bucket may be a tenant's"
        elif tenant is not None:
            whole = f"the whole bucket is tenant {tenant}'s"
        if bucket.urn in log_buckets:
            whole = "it holds a load balancer's access logs, the evidence runtime-backstops-enforced requires"
        out = judge_rules(bucket, as_list(dig(bucket.props, "lifecycleRules")), whole)
        for c in configs:
            out += judge_rules(c, as_list(dig(c.props, "rules")), whole)
        return out

    return judge_buckets(stack, S3_LIFECYCLE, judge)


lifecycle_retention = stack_policy(
    "s3-lifecycle-keeps-retention",
    what="Checks that no enabled S3 lifecycle rule (BucketLifecycleConfiguration, or a bucket's inline rules) that may select tenant data or access logs expires current objects or noncurrent versions sooner than `minRetentionDays`, or on a fixed date: every rule of a tenant's bucket (tag `meridian:tenant`, or unknown) or of a bucket a load balancer logs to, and on other buckets every rule whose filter has no prefix or a prefix containing or within the tenant root of `tenantPrefix`",
    why="Versioning and backups are the recovery window; a lifecycle rule that deletes objects or old versions after a day empties that window silently, long before anyone notices the damage they should undo.",
    reads=[*S3_BUCKETS, *S3_LIFECYCLE],
    check=check_lifecycle_retention,
    severity=HIGH,
    config={
        "minRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "default": 35,
            "description": "shortest expiration a lifecycle rule may set, days (generated: dr.backup_retention_days)",
        },
        "tenantPrefix": {
            "type": "string",
            "default": "tenants/t-{tenant}/",
            "description": "where a tenant's objects live in a shared bucket; its folder before `{tenant}` is the tenant root (generated: components.tenant)",
        },
    },
    remediation="Expire objects and noncurrent versions no sooner than the retention (config `meridian:dr.backup_retention_days`); "
    "use transitions to cheaper storage classes instead of early expiration; scratch data goes under its own prefix outside the tenant root.",
    limits=BUCKET_SETTINGS
    + " On a shared bucket only a prefix outside the tenant root exempts a rule: a tag or object-size filter is judged as covering "
    "tenant data (objects' tags are set at runtime); tenant data the application writes outside the root of a shared bucket is not seen.",
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


_PROBES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP")
_ELB_REGION = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.elb\.amazonaws\.com\.?$")
ALIAS_TTL_S = 60  # Route 53 answers an alias to an ELB with the balancer's own 60 s TTL


def _host(value: Any) -> str | None:
    return str(value).rstrip(".").lower() if isinstance(value, str) and value else None


def _target(record: Any) -> tuple[str | None, str, bool]:
    """(the name a record answers with, the property it comes from, whether it is an alias evaluating target health)."""
    aliases = as_list(dig(record.props, "aliases"))
    if aliases:
        return _host(dig(aliases[0], "name")), "aliases", truthy(dig(aliases[0], "evaluateTargetHealth", default=False))
    records = as_list(dig(record.props, "records"))
    return (_host(records[0]) if records else None), "records", False


def _target_region(stack: Stack, record: Any) -> str | None:
    host, prop, _ = _target(record)
    regions = {resource_region(r) for r in stack.linked(record, prop) if r.resource_type.startswith("aws:")} - {None}
    if len(regions) == 1:
        return regions.pop()
    m = _ELB_REGION.search(host or "")
    return m.group(1) if m else None


def _probe_problems(stack: Stack, record: Any, check: Any) -> list[str]:
    """Why a record's health check does not tell whether the record's own target is serving."""
    out = []
    if truthy(dig(check.props, "disabled", default=False)):
        out.append("is disabled (Route 53 then reports it healthy forever)")
    if truthy(dig(check.props, "invertHealthcheck", default=False)):
        out.append("is inverted (`invertHealthcheck`: healthy when the target fails)")
    kind = str(dig(check.props, "type", default="")).upper()
    if kind not in _PROBES:
        return out + [f"must probe the record's target itself (type {kind or 'unset'} does not)"]
    host, prop, _ = _target(record)
    address = _host(dig(check.props, "ipAddress"))
    if address:  # Route 53 probes the address when one is set, sending `fqdn` only as the Host header (security review 20, F03)
        if address != host:
            out.append(
                f"probes the address {address} (`ipAddress`: Route 53 probes it, `fqdn` is only its Host header), not the record's target {host or '(unset)'}"
            )
        return out
    probed = _host(dig(check.props, "fqdn"))
    same_source = {r.urn for r in stack.linked(check, "fqdn")} & {r.urn for r in stack.linked(record, prop)}
    if not same_source and (probed is None or probed != host):
        out.append(f"probes {probed or 'nothing'}, not the record's target {host or '(unset)'}")
    return out


def check_failover_pairs(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    dr = config.get("drRegion")
    max_ttl = int(config.get("maxTtlSeconds", 60))
    rto = config.get("rtoTargetSeconds")
    margin = int(config.get("propagationMarginSeconds", 10))
    by_key: dict[tuple, dict[str, list[Any]]] = {}

    def index(record: Any) -> list[tuple[str | None, str]]:
        kind = _failover_type(record)
        if kind in ("PRIMARY", "SECONDARY"):
            by_key.setdefault(_record_key(stack, record), {}).setdefault(kind, []).append(record)
        return []

    out = judge_each(stack.of(RECORD), index)

    def judge_record(record: Any, kind: str) -> list[tuple[str | None, str]]:
        found = []
        name = dig(record.props, "name")
        _, _, evaluates = _target(record)
        ttl = ALIAS_TTL_S if as_list(dig(record.props, "aliases")) else dig(record.props, "ttl")
        checks = stack.linked(record, "healthCheckId", HEALTH_CHECK)
        check_id = peek(record.props, "healthCheckId")
        if not checks and check_id not in (None, ""):
            found.append(
                (
                    record.urn,
                    Unverifiable.at("healthCheckId", "a health check outside the stack: is it enabled, and what does it probe?"),
                )
            )
        elif not checks and not evaluates and kind == "PRIMARY":
            found.append(
                (
                    record.urn,
                    f"PRIMARY failover record {name} must have a health check (`healthCheckId`, or an alias with "
                    "`evaluateTargetHealth`): without one Route 53 never fails over",
                )
            )
        for check in checks:
            found += [
                (
                    record.urn,
                    f"{kind} failover record {name}: its health check {p}; the check must be enabled and probe the record's own target",
                )
                for p in _probe_problems(stack, record, check)
            ]
        if ttl is not None and float(ttl) > max_ttl:
            found.append(
                (record.urn, f"{kind} failover record {name} must keep its TTL at most {max_ttl} s, not {int(float(ttl))}")
            )
        if rto is not None and ttl is not None:
            for check in checks:
                interval = float(dig(check.props, "requestInterval", default=30))
                threshold = float(dig(check.props, "failureThreshold", default=3))
                bound = interval * threshold + interval + margin + float(ttl)
                if bound > float(rto):
                    found.append(
                        (
                            record.urn,
                            f"{kind} failover record {name} must fail over within the RTO target {rto} s: checks {int(interval)} x "
                            f"{int(threshold)} + aggregation {int(interval)} + margin {margin} + TTL {int(float(ttl))} = {int(bound)} s",
                        )
                    )
        return found

    def judge_pair(key: tuple) -> list[tuple[str | None, str]]:
        pair = by_key[key]
        found = []
        for kind in ("PRIMARY", "SECONDARY"):
            found += judge_each(pair.get(kind, []), lambda r, kind=kind: judge_record(r, kind))
        for record in pair.get("PRIMARY", []):
            if not pair.get("SECONDARY"):
                found.append(
                    (
                        record.urn,
                        f"PRIMARY failover record {dig(record.props, 'name')} must have a SECONDARY record for the same zone, name and type",
                    )
                )
        if not dr:
            return found + [
                (None, "drRegion is not configured for route53-failover-record-ready: set it in policies/config/<stack>.json")
            ]

        def judge_secondary(record: Any) -> list[tuple[str | None, str]]:
            region = _target_region(stack, record)
            if region is None:
                return [(record.urn, Unverifiable.at("records", "which region does the SECONDARY answer with?"))]
            if region != dr:
                return [
                    (
                        record.urn,
                        f"SECONDARY failover record {dig(record.props, 'name')} must answer with the dr region {dr}, not {region}",
                    )
                ]
            return []

        def judge_primary(record: Any) -> list[tuple[str | None, str]]:
            region = _target_region(stack, record)
            if region == dr:
                return [
                    (
                        record.urn,
                        f"PRIMARY failover record {dig(record.props, 'name')} must not answer with the dr region {dr}: both answers would fail together",
                    )
                ]
            return []

        return found + judge_each(pair.get("SECONDARY", []), judge_secondary) + judge_each(pair.get("PRIMARY", []), judge_primary)

    for key in sorted(by_key, key=str):
        try:
            out += judge_pair(key)
        except UnknownValueError as exc:
            out.append((None, Unverifiable.of(exc)))
    return out


failover_pairs = stack_policy(
    "route53-failover-record-ready",
    what="Checks that every PRIMARY Route 53 failover record has a SECONDARY for the same zone, name and type, that the SECONDARY answers with the dr region (and the PRIMARY does not), that each record's health check is enabled, not inverted, and probes that record's own target (its `ipAddress` when one is set, which Route 53 probes in place of the `fqdn`; or the record is an alias evaluating target health), and that TTL (at most `maxTtlSeconds`) plus checks x threshold, checker aggregation and margin fit the RTO target",
    why="Failover routing only moves traffic when the PRIMARY's health check fails and a SECONDARY in another region exists: a disabled or inverted check, a check of some other endpoint, a SECONDARY in the same region or a long TTL each turn a region outage into a full outage while the records look complete.",
    reads=[RECORD, HEALTH_CHECK],
    check=check_failover_pairs,
    severity=CRITICAL,
    config={
        "drRegion": {"type": "string", "description": "the dr region of the stack's pair (generated from the stack config)"},
        "maxTtlSeconds": {
            "type": "integer",
            "minimum": 1,
            "default": 60,
            "description": "largest TTL of a failover record, seconds",
        },
        "rtoTargetSeconds": {
            "type": "integer",
            "minimum": 1,
            "description": "automatic failover must finish within this (generated: failover.rto_target_s)",
        },
        "propagationMarginSeconds": {
            "type": "integer",
            "minimum": 0,
            "default": 10,
            "description": "health status reaching Route 53's name servers (generated)",
        },
    },
    remediation="Give the PRIMARY record `health_check_id=<HealthCheck>.id` of an enabled HTTPS check on the same load balancer the record names, create the SECONDARY record pointing at the dr region's load balancer, and keep TTL and check settings within the failover budget (components.failover.Failover).",
    limits="A record's target region is read from the resource it was built from, or an ELB DNS name; a health check outside the stack is reported, not judged.",
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
    limits="That the dr member is in sync (replication lag) and can be promoted in time is measured by drills, not proved by the plan.",
    tags=["resilience", "failover"],
)

TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")


# What the provider sends when a timing is absent (pulumi-aws `TargetGroupHealthCheck`: interval 30, unhealthy
# threshold 3) and the longest timeout AWS documents as a default for the protocols a check takes
# (CreateTargetGroup `HealthCheckTimeoutSeconds`: HTTP 6, HTTPS and TCP 10 s:
# https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html)
_HEALTH_DEFAULTS = {"interval": 30, "unhealthyThreshold": 3, "timeout": 10}


def _seconds(check: Any, setting: str) -> float | None:
    """A timing setting of the health check (its default when absent), None when it is no number."""
    value = peek(check, setting)
    if value is UNKNOWN:
        raise unknown("healthCheck", setting)
    try:
        return float(value) if value is not None else float(_HEALTH_DEFAULTS[setting])
    except (TypeError, ValueError):
        return None


def _takes_out_problem(check: Any, rto: Any) -> str | None:
    """Why the check takes longer than the RTO target to take a bad target out: a target failing just after a
    passing check is seen by the next check (up to one interval later), and marked unhealthy when the
    `unhealthyThreshold`-th consecutive check fails, at worst `timeout` after that check starts:
    interval x unhealthyThreshold + timeout (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html)."""
    if rto is None:
        return None
    interval, threshold, timeout = (_seconds(check, s) for s in ("interval", "unhealthyThreshold", "timeout"))
    if interval is None or threshold is None or timeout is None:
        return (
            "Target group health check must give `interval`, `unhealthyThreshold` and `timeout` as numbers: how long a "
            "failing target keeps its traffic cannot be told"
        )
    bound = interval * threshold + timeout
    if bound <= float(rto):
        return None
    return (
        f"Target group health check must take a failing target out within the RTO target {int(rto)} s: interval "
        f"{int(interval)} x unhealthyThreshold {int(threshold)} + timeout {int(timeout)} = {int(bound)} s, during which "
        "the load balancer keeps sending it tenants' requests"
    )


def check_target_group_health(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if str(dig(props, "targetType", default="instance")) == "lambda":
        return []  # Lambda targets are health-checked only when asked, and then by invocation
    check = dig(props, "healthCheck", default={}) or {}
    if not truthy(dig(check, "enabled", default=True)):
        return ["Target group must keep its health check enabled: the load balancer would send requests to dead targets"]
    slow = _takes_out_problem(check, config.get("rtoTargetSeconds"))
    out = [slow] if slow else []
    protocol = str(dig(check, "protocol", default=dig(props, "protocol", default="HTTP"))).upper()
    if protocol not in ("HTTP", "HTTPS"):
        return out  # TCP/TLS checks only open a connection: nothing more to state
    path = dig(check, "path")
    if not path or str(path).split("?", 1)[0] == "/":  # written out or left to the default, `/` is the static root
        out.append("Target group health check must name the service's health path (`healthCheck.path`), not the default `/`")
    matcher = dig(check, "matcher")
    if not matcher:
        out.append(
            "Target group health check must state the healthy status (`healthCheck.matcher`, e.g. 200): the default accepts any 200-399"
        )
    elif str(dig(props, "protocolVersion", default="HTTP1")).upper() != "GRPC":
        wrong = _matcher_problem(matcher)
        if wrong:
            out.append(
                f"Target group health check must count only 2xx/3xx as healthy, not {wrong} (`healthCheck.matcher` {matcher!r})"
            )
    return out


def _matcher_problem(matcher: Any) -> str | None:
    """What an HTTP matcher (`200`, `200,202`, `200-299`: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_Matcher.html)
    accepts beyond 200-399: a 4xx or 5xx answer (the service saying it cannot serve) counted as healthy."""
    if matcher is UNKNOWN:
        raise unknown("healthCheck", "matcher")
    for part in str(matcher).split(","):
        low, _, high = part.strip().partition("-")
        try:
            lo, hi = int(low), int(high or low)
        except ValueError:
            return f"an unreadable code {part.strip()!r}"
        if lo < 200 or hi > 399 or lo > hi:
            return f"codes {part.strip()}"
    return None


target_group_health = resource_policy(
    "lb-target-group-health-checked",
    what="Checks that every load balancer target group (except Lambda) keeps its health check on, that it takes a failing "
    "target out within the stack's RTO target (`interval` x `unhealthyThreshold` + `timeout`, absent settings at the "
    "provider's defaults 30 x 3 and the longest documented default timeout, 10 s, at most `rtoTargetSeconds`), and "
    "that HTTP(S) checks name the service's health path (not `/`, written out or left to the default) and the status that "
    "counts as healthy, only codes within 200-399",
    why="Weighted rollouts and failover rest on the load balancer taking unready pods out: the default check (`/`, any "
    "2xx-3xx) passes a pod whose database is gone, a disabled check sends tenants' requests to dead targets, and a slow "
    "one keeps sending them for as long as it takes to notice. The bound is the RTO target (failover.rto_target_s), not "
    "the Route 53 detection time: a bad target in a region whose other targets still answer is a failure Route 53's "
    "regional check never sees, so only the target group's own check ends it, and it must end within the same "
    "promise the stack makes for a whole region (at the shipped 10 x 2 + 5 = 25 s against 60 s).",
    types=list(TARGET_GROUPS),
    check=check_target_group_health,
    severity=HIGH,
    config={
        "rtoTargetSeconds": {
            "type": "integer",
            "minimum": 1,
            "description": "a failing target is taken out within this (generated: failover.rto_target_s)",
        }
    },
    required=["rtoTargetSeconds"],
    remediation='Set `health_check={"enabled": True, "path": "/healthz", "matcher": "200", "interval": 10, "timeout": 5, '
    '"unhealthy_threshold": 2, ...}` (components.ingress does).',
    limits="That the named health path really checks the service's dependencies is the service's; a gRPC matcher's codes "
    "(`protocolVersion` GRPC) are not judged. The bound is the worst case of the documented check cycle; the load "
    "balancer's own health-check nodes are several and independent, which only shortens it. Connections already open "
    "to a target marked unhealthy are the service's to drain (`deregistration_delay`).",
    tags=["resilience", "network"],
)

POLICIES = [
    deletion_protection,
    production_deletion,
    backup_retention,
    vault_lock,
    versioning,
    lifecycle_retention,
    failover_pairs,
    dr_member,
    target_group_health,
]
