"""Constraints between arguments that AWS (or the provider at apply) enforces and the SDK does not.

The Pulumi SDK checks argument names and required properties, never how arguments combine: each
row of `CONSTRAINTS` is one such rule, with the page that states it, judged on every resource of
its types. A rule reads only the plan; a value it needs but cannot read is a finding, not a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from meridian.preflight.context import CheckResult, Context, Finding

if TYPE_CHECKING:
    from meridian.engine.recorder import Registration

Problem = tuple[str, str, str]  # urn, what AWS refuses, how to fix it


@dataclass(frozen=True)
class Constraint:
    name: str
    rule: str
    source: str
    types: tuple[str, ...]
    judge: Callable[[Context, Registration, dict], Iterator[Problem]]


# --- S3 replication ---------------------------------------------------------------------------------------

S3_REPLICATION_REQS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-requirements.html"
S3_REPLICATION_RULE = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_ReplicationRule.html"


def _replication_versioning(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    """Both buckets versioned, and the configuration waits for the source's versioning: the SDK
    expands `depends_on` a component into its children but not into a custom resource's children,
    so depending on a bucket (or on a component holding it) does not wait for its versioning."""
    versioned = {
        str(ctx.inputs[v.urn].get("bucket")): v
        for v in ctx.of_type("aws:s3/bucketVersioning:BucketVersioning")
        if (ctx.inputs[v.urn].get("versioningConfiguration") or {}).get("status") == "Enabled"
    }
    source = str(inputs.get("bucket"))
    destinations = {
        str((rule.get("destination") or {}).get("bucket", "")).rsplit(":", 1)[-1] for rule in inputs.get("rules") or []
    }
    for bucket in sorted({source} | destinations):
        if bucket not in versioned:
            yield (
                reg.urn,
                f"bucket {bucket} has no versioning enabled in this stack: S3 refuses replication from or to it",
                ("enable versioning on both buckets (components.bucket.SecureBucket does)"),
            )
        elif versioned[bucket].urn not in reg.dependencies:
            yield (
                reg.urn,
                f"the replication configuration does not wait for the versioning of {bucket}: the first `up` can race it",
                ("depends_on the BucketVersioning resources (SecureBucket.versioning)"),
            )


def _replication_rules(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    rules = inputs.get("rules") or []
    priorities = [r.get("priority") for r in rules if r.get("filter") is not None]
    if len(rules) > 1 and len(set(priorities)) != len(priorities):
        yield reg.urn, "replication rules with filters share a priority", "give each rule its own priority"
    ids = [r.get("id") for r in rules]
    if len(set(ids)) != len(ids):
        yield reg.urn, "replication rule ids repeat", "give each rule a unique id"
    for rule in rules:
        rid = rule.get("id", "?")
        dest = rule.get("destination") or {}
        if rule.get("filter") is not None and rule.get("deleteMarkerReplication") is None:
            yield (
                reg.urn,
                f"rule {rid} has a filter but no delete_marker_replication: S3 refuses it",
                ("set delete_marker_replication (Enabled or Disabled)"),
            )
        kms_objects = ((rule.get("sourceSelectionCriteria") or {}).get("sseKmsEncryptedObjects") or {}).get("status") == "Enabled"
        replica_key = (dest.get("encryptionConfiguration") or {}).get("replicaKmsKeyId")
        if kms_objects != bool(replica_key):
            yield (
                reg.urn,
                f"rule {rid}: SSE-KMS objects selected without a replica key, or a replica key without selecting them",
                ("set source_selection_criteria.sse_kms_encrypted_objects and destination.encryption_configuration together"),
            )
        rtc = (dest.get("replicationTime") or {}).get("status") == "Enabled"
        metrics = (dest.get("metrics") or {}).get("status") == "Enabled"
        if rtc and not metrics:
            yield (
                reg.urn,
                f"rule {rid}: Replication Time Control without replication metrics",
                "enable destination.metrics with RTC",
            )


# --- KMS, Backup, databases ---------------------------------------------------------------------------------


def _replica_key(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    primary = str(inputs.get("primaryKeyArn"))
    keys = [k for k in ctx.of_type("aws:kms/key:Key") if primary.endswith(str(k.id)) or primary == k.id]
    if not keys:
        yield (
            reg.urn,
            f"primary key {primary} is not a key of this stack: its multi-Region setting cannot be checked",
            ("replicate a multi-Region key the stack creates"),
        )
    elif not ctx.inputs[keys[0].urn].get("multiRegion"):
        yield (
            reg.urn,
            f"primary key {keys[0].name} is not multi-Region: KMS cannot replicate it",
            "create it with multi_region=True",
        )


BACKUP_LIFECYCLE = "https://docs.aws.amazon.com/aws-backup/latest/devguide/API_Lifecycle.html"
CONTINUOUS_MAX_DAYS = 35
COLD_MIN_DAYS = 90


def _lifecycles(rule: dict) -> Iterator[tuple[str, dict]]:
    yield "rule", rule.get("lifecycle") or {}
    for i, copy in enumerate(rule.get("copyActions") or []):
        yield f"copy action {i}", copy.get("lifecycle") or {}


def _backup_lifecycle(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    for rule in inputs.get("rules") or []:
        name = rule.get("ruleName", "?")
        for where, life in _lifecycles(rule):
            cold, delete = life.get("coldStorageAfter"), life.get("deleteAfter")
            if cold is not None and delete is not None and delete < cold + COLD_MIN_DAYS:
                yield (
                    reg.urn,
                    f"{name} {where}: deleted after {delete:g} days, less than 90 after moving to cold storage ({cold:g})",
                    ("delete_after >= cold_storage_after + 90"),
                )
        delete = (rule.get("lifecycle") or {}).get("deleteAfter")
        if rule.get("enableContinuousBackup") and (delete is None or delete > CONTINUOUS_MAX_DAYS):
            yield (
                reg.urn,
                f"{name}: continuous backups keep at most {CONTINUOUS_MAX_DAYS} days, the lifecycle says {delete}",
                ("delete_after between 1 and 35 for a continuous rule"),
            )


def _vault_lock(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    changeable, low, high = inputs.get("changeableForDays"), inputs.get("minRetentionDays"), inputs.get("maxRetentionDays")
    if changeable is not None and changeable < 3:
        yield (
            reg.urn,
            f"changeable_for_days {changeable:g}: AWS Backup takes at least 3",
            "at least 3, or unset (governance mode)",
        )
    if low is not None and high is not None and low > high:
        yield reg.urn, f"min_retention_days {low:g} > max_retention_days {high:g}", "min <= max"


def _key_region(arn: Any) -> str | None:
    parts = str(arn).split(":")
    return parts[3] if len(parts) > 5 and parts[2] == "kms" else None


def _database_keys(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    region = ctx.plan.region_of(reg)
    key = inputs.get("kmsKeyId")
    cross_region_source = str(inputs.get("replicateSourceDb") or inputs.get("replicationSourceIdentifier") or "").startswith(
        "arn:"
    )
    secondary = (
        reg.type == "aws:rds/cluster:Cluster" and inputs.get("globalClusterIdentifier") and not inputs.get("masterUsername")
    )
    if inputs.get("storageEncrypted") and (cross_region_source or secondary) and key is None:
        yield (
            reg.urn,
            "an encrypted cross-region replica / global secondary without kms_key_id: RDS needs a key of its own region",
            ("pass the region's customer key as kms_key_id"),
        )
    if key is not None and _key_region(key) not in (None, region):
        yield (
            reg.urn,
            f"kms_key_id is a key in {_key_region(key)}, the database is in {region}",
            "use a key of the database's region",
        )
    if inputs.get("enableGlobalWriteForwarding") and not inputs.get("globalClusterIdentifier"):
        yield (
            reg.urn,
            "write forwarding on a cluster outside a global database",
            "set global_cluster_identifier, or drop forwarding",
        )
    retention = inputs.get("backupRetentionPeriod")
    low = 1 if reg.type == "aws:rds/cluster:Cluster" else 0
    if retention is not None and not low <= retention <= 35:
        yield reg.urn, f"backup_retention_period {retention:g} outside {low}..35", f"between {low} and 35 days"


# --- network, load balancers, DNS, logs ----------------------------------------------------------------------

LOG_RETENTION_DAYS = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}


def _log_retention(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    days = inputs.get("retentionInDays")
    if days is not None and days not in LOG_RETENTION_DAYS:
        yield reg.urn, f"retention_in_days {days:g} is not one CloudWatch Logs accepts", f"one of {sorted(LOG_RETENTION_DAYS)}"


def _flow_log(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    if inputs.get("logDestinationType", "cloud-watch-logs") == "cloud-watch-logs" and not inputs.get("iamRoleArn"):
        yield reg.urn, "a flow log to CloudWatch Logs needs iam_role_arn", "pass the delivery role"


def _vpc_endpoint(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    kind = inputs.get("vpcEndpointType", "Gateway")
    if kind == "Interface" and not inputs.get("subnetIds"):
        yield reg.urn, "an interface endpoint without subnet_ids has no network interface", "one subnet per AZ"
    if kind == "Gateway" and (inputs.get("subnetIds") or inputs.get("privateDnsEnabled")):
        yield reg.urn, "subnet_ids / private_dns_enabled on a gateway endpoint", "route_table_ids only"


def _listener(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    if inputs.get("protocol") in ("HTTPS", "TLS") and not inputs.get("certificateArn"):
        yield reg.urn, f"{inputs.get('protocol')} listener without certificate_arn", "pass the validated certificate's ARN"


def _load_balancer(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    if inputs.get("loadBalancerType", "application") != "application":
        return
    subnets = {s.id: ctx.inputs[s.urn] for s in ctx.of_type("aws:ec2/subnet:Subnet")}
    zones = {subnets[s].get("availabilityZone") for s in inputs.get("subnets") or [] if s in subnets}
    if len(zones) < 2:
        yield (
            reg.urn,
            f"an Application Load Balancer in {len(zones)} known Availability Zone(s): AWS requires two",
            ("subnets of at least two AZs (from this stack)"),
        )


def _record(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    alias = inputs.get("aliases")
    if alias and inputs.get("ttl") is not None:
        yield reg.urn, "an alias record with ttl: Route 53 refuses it", "drop ttl (the alias target's TTL applies)"
    if not alias and (inputs.get("ttl") is None or not inputs.get("records")):
        yield reg.urn, "a non-alias record needs ttl and records", "set both"
    if inputs.get("failoverRoutingPolicies") and not inputs.get("setIdentifier"):
        yield reg.urn, "a failover record without set_identifier", "name each failover record"


# --- EKS, Budgets ----------------------------------------------------------------------------------------------

ARM_FAMILY = "g"  # Graviton instance families: m7g, c7gn, r8g, t4g ...


def _is_graviton(instance_type: str) -> bool:
    family = instance_type.split(".", 1)[0]
    return any(c.isdigit() for c in family) and ARM_FAMILY in family[[c.isdigit() for c in family].index(True) + 1 :]


def _node_group(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    arm = "ARM_64" in str(inputs.get("amiType", "AL2023_x86_64_STANDARD"))
    for it in inputs.get("instanceTypes") or []:
        if _is_graviton(it) != arm:
            yield (
                reg.urn,
                f"instance type {it} does not run AMI type {inputs.get('amiType')}",
                "Graviton types with ARM_64 AMIs, x86 otherwise",
            )
    scaling = inputs.get("scalingConfig") or {}
    low, want, high = scaling.get("minSize"), scaling.get("desiredSize"), scaling.get("maxSize")
    if None not in (low, want, high) and not low <= want <= high:
        yield reg.urn, f"scaling min {low:g} <= desired {want:g} <= max {high:g} does not hold", "order the sizes"


def _access_policy(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    entries = [
        e
        for e in ctx.of_type("aws:eks/accessEntry:AccessEntry")
        if ctx.inputs[e.urn].get("clusterName") == inputs.get("clusterName")
        and ctx.inputs[e.urn].get("principalArn") == inputs.get("principalArn")
    ]
    if not entries:
        yield (
            reg.urn,
            f"no access entry for {inputs.get('principalArn')} on {inputs.get('clusterName')}: EKS refuses the association",
            ("create the AccessEntry first (and depend on it)"),
        )
    elif ctx.inputs[entries[0].urn].get("type", "STANDARD") != "STANDARD":
        yield (
            reg.urn,
            f"access policies attach only to STANDARD entries, not {ctx.inputs[entries[0].urn].get('type')}",
            ("use a STANDARD access entry"),
        )
    elif entries[0].urn not in reg.dependencies:
        yield reg.urn, "the association does not wait for its access entry", "depends_on the AccessEntry"


BUDGET_DEFINITIONS = {
    "APPLY_IAM_POLICY": "iamActionDefinition",
    "APPLY_SCP_POLICY": "scpActionDefinition",
    "RUN_SSM_DOCUMENTS": "ssmActionDefinition",
}


def _budget_action(ctx: Context, reg: Registration, inputs: dict) -> Iterator[Problem]:
    kind = inputs.get("actionType")
    definition = (inputs.get("definition") or {}).get(BUDGET_DEFINITIONS.get(str(kind), ""), None)
    if definition is None:
        yield (
            reg.urn,
            f"action type {kind} without its {BUDGET_DEFINITIONS.get(str(kind), 'definition')}",
            "give the matching definition",
        )
    elif kind == "APPLY_IAM_POLICY" and not any(definition.get(k) for k in ("roles", "groups", "users")):
        yield reg.urn, "an IAM policy action that names no role, group or user", "name the roles the cap applies to"
    subscribers = inputs.get("subscribers") or []
    if not 1 <= len(subscribers) <= 11 or sum(s.get("subscriptionType") == "SNS" for s in subscribers) > 1:
        yield (
            reg.urn,
            f"{len(subscribers)} subscribers: a budget action takes 1 to 11, at most one SNS topic",
            "trim the subscribers",
        )
    threshold = inputs.get("actionThreshold") or {}
    if threshold.get("actionThresholdType") == "PERCENTAGE" and not 0 < (threshold.get("actionThresholdValue") or 0) <= 1000:
        yield reg.urn, f"percentage threshold {threshold.get('actionThresholdValue')}", "a percentage above 0"


CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint(
        "s3-replication-versioning",
        "source and destination buckets versioned before replication is configured",
        S3_REPLICATION_REQS,
        ("aws:s3/bucketReplicationConfig:BucketReplicationConfig",),
        _replication_versioning,
    ),
    Constraint(
        "s3-replication-rules",
        "filtered rules: unique priorities and delete_marker_replication; SSE-KMS selection with a replica key; RTC with metrics",
        S3_REPLICATION_RULE,
        ("aws:s3/bucketReplicationConfig:BucketReplicationConfig",),
        _replication_rules,
    ),
    Constraint(
        "kms-replica-of-multi-region",
        "a replica key's primary is a multi-Region key",
        "https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-replicate.html",
        ("aws:kms/replicaKey:ReplicaKey",),
        _replica_key,
    ),
    Constraint(
        "backup-lifecycle",
        "delete >= cold storage + 90 days; continuous backups keep 1..35 days",
        BACKUP_LIFECYCLE,
        ("aws:backup/plan:Plan",),
        _backup_lifecycle,
    ),
    Constraint(
        "backup-vault-lock",
        "changeable_for_days >= 3; min <= max retention",
        "https://docs.aws.amazon.com/aws-backup/latest/devguide/API_PutBackupVaultLockConfiguration.html",
        ("aws:backup/vaultLockConfiguration:VaultLockConfiguration",),
        _vault_lock,
    ),
    Constraint(
        "rds-keys-and-retention",
        "encrypted cross-region replicas and global secondaries name a key of their region; write forwarding only in a "
        "global database; backup retention 1..35 (Aurora) / 0..35 (RDS)",
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html",
        ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance"),
        _database_keys,
    ),
    Constraint(
        "log-retention-values",
        "retention_in_days is one of CloudWatch Logs' values",
        "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html",
        ("aws:cloudwatch/logGroup:LogGroup",),
        _log_retention,
    ),
    Constraint(
        "flow-log-delivery-role",
        "flow logs to CloudWatch Logs name a delivery role",
        "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html",
        ("aws:ec2/flowLog:FlowLog",),
        _flow_log,
    ),
    Constraint(
        "vpc-endpoint-type-arguments",
        "interface endpoints take subnets; gateway endpoints take route tables only",
        "https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html",
        ("aws:ec2/vpcEndpoint:VpcEndpoint",),
        _vpc_endpoint,
    ),
    Constraint(
        "lb-listener-certificate",
        "HTTPS / TLS listeners name a certificate",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/create-https-listener.html",
        ("aws:lb/listener:Listener",),
        _listener,
    ),
    Constraint(
        "alb-two-zones",
        "an Application Load Balancer spans at least two Availability Zones",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html",
        ("aws:lb/loadBalancer:LoadBalancer",),
        _load_balancer,
    ),
    Constraint(
        "route53-record-arguments",
        "alias records take no ttl; others need ttl and records; failover records a set identifier",
        "https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html",
        ("aws:route53/record:Record",),
        _record,
    ),
    Constraint(
        "eks-nodegroup-arguments",
        "instance types match the AMI type's architecture; min <= desired <= max",
        "https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateNodegroup.html",
        ("aws:eks/nodeGroup:NodeGroup",),
        _node_group,
    ),
    Constraint(
        "eks-access-policy-entry",
        "an access policy attaches to an existing STANDARD access entry of the same principal and cluster",
        "https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html",
        ("aws:eks/accessPolicyAssociation:AccessPolicyAssociation",),
        _access_policy,
    ),
    Constraint(
        "budget-action-arguments",
        "the definition matching the action type (IAM: roles, groups or users); 1..11 subscribers, one SNS at most",
        "https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_budgets_CreateBudgetAction.html",
        ("aws:budgets/budgetAction:BudgetAction",),
        _budget_action,
    ),
)


def check_constraints(ctx: Context) -> CheckResult:
    result = CheckResult(
        "constraints",
        "argument combinations AWS refuses and the SDK accepts: " + "; ".join(f"{c.name}: {c.rule}" for c in CONSTRAINTS),
    )
    for constraint in CONSTRAINTS:
        for reg in ctx.plan.custom:
            if reg.type not in constraint.types:
                continue
            result.checked += 1
            for urn, problem, fix in constraint.judge(ctx, reg, ctx.inputs[reg.urn]):
                result.findings.append(Finding(urn, f"{constraint.name}: {problem} ({constraint.source})", fix))
    return result
