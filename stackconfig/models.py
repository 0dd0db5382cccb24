"""The stack config's typed shape: one frozen pydantic model per section of the `meridian:` namespace.

Every field carries a description written for the engineer editing `Pulumi.<stack>.yaml`:
docs/config.md's key reference is generated from them (`meridian docs --write`).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from stackconfig.planning import DEFAULT_DNS_TTL_S, FailoverBudget, derived_failure_threshold, failover_budget

NAMESPACE = "meridian"

# Residency zones and the AWS regions whose data stays inside them (product definition).
ZONE_REGIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
    "eu": ("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1"),
    "apac": ("ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ap-south-1"),
}

S3_RTC_MINUTES = 15  # S3 Replication Time Control's bound (the only value AWS accepts)

TenantId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")]
# A stack's name as its file spells it (`Pulumi.<name>.yaml`); short, because it prefixes resource names.
StackName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$")]
DEFAULT_CELL_SIZE = 1000
# EKS: "up to 5,000 EKS Pod Identity associations per cluster", not adjustable in Service Quotas
# (https://docs.aws.amazon.com/eks/latest/userguide/pod-identities.html, .../service-quotas.html).
POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER = 5000
# Tenant cluster pairs a zone may have: each region's tenant role trusts its clusters by exact ARN
# (components.tenantidentity.trust_policy), and IAM holds a trust policy to 2,048 characters by default
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html). 13 pairs fit for the longest
# stack name and region the config allows, and 14 do not (rendered: tests/test_tenant_pair_patterns.py); the
# role's inline policy stays the same size for any count of pairs.
CLUSTER_PAIRS_MAX = 13
TRUST_POLICY_CHARS = 2048
# A quota's ceiling: far past any tenant, and it bounds the digits a tenant file entry may take.
QUOTA_MAX = 1_000_000_000
Percent = Annotated[int, Field(ge=1, le=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionSpec(_Model):
    """One region of the pair and the VPC address space it gets."""

    region: str = Field(description="AWS region name, e.g. us-east-1; must lie in the residency zone")
    cidr: ipaddress.IPv4Network = Field(description="VPC CIDR, /16 to /20; carved into subnet tiers")


class RegionPair(_Model):
    """The two regions a stack spans: the primary serves, the dr region holds replicas and takes over."""

    primary: RegionSpec = Field(description="the serving region: writer database, active traffic")
    dr: RegionSpec = Field(description="the disaster-recovery region: replicas, backup copies, failover target")

    @property
    def both(self) -> tuple[tuple[str, RegionSpec], ...]:
        return (("primary", self.primary), ("dr", self.dr))


class NetworkSettings(_Model):
    """The VPC of each region."""

    az_count: int = Field(3, ge=2, le=4, description="availability zones the VPC spans")
    nat_gateways: Literal["per-az", "single"] = Field(
        "per-az", description="per-az: one NAT gateway per AZ (an AZ outage keeps egress); single: one, cheaper, one AZ's fate"
    )
    flow_log_retention_days: Literal[30, 60, 90, 180, 365, 731, 1827, 3653] = Field(
        365, description="days the VPC flow logs stay in CloudWatch Logs"
    )


class TenantNodeSettings(_Model):
    """The managed node group of each tenant cluster pair's clusters (`cells.cluster_pairs`), sized for
    what the cells on a pair run, apart from the platform's own clusters (docs/operations.md, "Sizing a
    pair's nodes"). Nothing scales a node group: it runs between min and max as its desired size says."""

    instance_types: tuple[str, ...] = Field(
        ("m7g.large",), min_length=1, description="EC2 instance types of each pair cluster's managed node group"
    )
    ami_type: str = Field(
        "AL2023_ARM_64_STANDARD", description="EKS AMI type of the pair's nodes; must match the instance types' CPU architecture"
    )
    min: int = Field(ge=1, description="fewest nodes per pair cluster's node group")
    desired: int = Field(ge=1, description="nodes per pair cluster's node group at creation")
    max: int = Field(ge=1, description="most nodes per pair cluster's node group (preflight counts it against the vCPU quota)")


class ClusterSettings(_Model):
    """The EKS cluster of each region and who may reach its Kubernetes API."""

    version: str = Field("1.33", description="EKS Kubernetes version")
    node_instance_types: tuple[str, ...] = Field(("m7g.large",), description="EC2 instance types of the managed node group")
    node_ami_type: str = Field(
        "AL2023_ARM_64_STANDARD", description="EKS AMI type of the nodes; must match the instance types' CPU architecture"
    )
    node_min: int = Field(3, ge=1, description="fewest nodes per region's node group")
    node_desired: int = Field(3, ge=1, description="nodes per region's node group at creation")
    node_max: int = Field(9, ge=1, description="most nodes per region's node group")
    public_access_cidrs: tuple[ipaddress.IPv4Network, ...] = Field(
        (), description="CIDRs allowed to reach the public API endpoint; empty keeps the endpoint private"
    )
    # How `pulumi up` reaches each cluster's Kubernetes API (the kubernetes provider calls it from the runner).
    api_access: Literal["public-restricted", "private-runner"] = Field(
        "public-restricted",
        description="public-restricted: public endpoint open to public_access_cidrs only (the runner's egress IPs); "
        "private-runner: private endpoint only, the runner sits in runner_cidrs, routed into both VPCs",
    )
    runner_cidrs: tuple[ipaddress.IPv4Network, ...] = Field(
        (), description="private-runner: the runner's network, admitted on 443 to the private endpoint of both clusters"
    )
    deploy_role_arn: str | None = Field(
        None,
        pattern=r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$",
        description="the IAM role `pulumi up` runs as: gets cluster admin through an EKS access entry (not as cluster creator)",
    )
    operator_role_arns: tuple[Annotated[str, Field(pattern=r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$")], ...] = Field(
        (), description="IAM roles of on-call operators: cluster admin through EKS access entries"
    )
    viewer_role_arns: tuple[Annotated[str, Field(pattern=r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$")], ...] = Field(
        (),
        description="read-only IAM roles that run trusted code only (the deploy plan, drift detection: `pulumi preview` "
        "of main, with `--refresh`): view access to every Kubernetes object, Secrets included "
        "(AmazonEKSAdminViewPolicy), through EKS access entries, so a refresh can read what the program manages; "
        "nothing they can change",
    )
    pr_viewer_role_arns: tuple[Annotated[str, Field(pattern=r"^arn:aws:iam::\d{12}:role/[\w+=,.@/-]+$")], ...] = Field(
        (),
        description="read-only IAM roles that run pull-request code (`pulumi preview` of a pull request, no refresh): "
        "view access without Secrets (AmazonEKSViewPolicy), since a pull request's author chooses the code that runs "
        "with the role; eks-access-platform-roles-only refuses them any other policy. A role may not also be a "
        "viewer, an operator or the deploy role",
    )

    tenant_nodes: TenantNodeSettings | None = Field(
        None,
        description="the node group of each tenant cluster pair's clusters (instance_types, ami_type, min, desired, max); "
        "unset: a pair's clusters take node_instance_types, node_ami_type and node_min/desired/max as the platform's own do",
    )

    @property
    def pair_nodes(self) -> TenantNodeSettings:
        """What each tenant cluster pair's node group runs: `tenant_nodes`, or the platform clusters' own settings."""
        if self.tenant_nodes is not None:
            return self.tenant_nodes
        return TenantNodeSettings(
            instance_types=self.node_instance_types,
            ami_type=self.node_ami_type,
            min=self.node_min,
            desired=self.node_desired,
            max=self.node_max,
        )

    @model_validator(mode="after")
    def _pr_viewers_hold_nothing_else(self) -> ClusterSettings:
        trusted = {self.deploy_role_arn, *self.operator_role_arns, *self.viewer_role_arns}
        both = sorted(trusted & set(self.pr_viewer_role_arns))
        if both:
            raise ValueError(
                f"pr_viewer_role_arns {both} also in deploy_role_arn, operator_role_arns or viewer_role_arns: a role that "
                "runs pull-request code must get view access without Secrets only"
            )
        return self


class WorkloadSettings(_Model):
    """The service the clusters run: its image and Deployment."""

    repository: str = Field(
        "meridian/service",
        pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$",
        max_length=256,
        description="ECR repository the stack creates in both regions (CI pushes to the primary's; replication copies)",
    )
    image_tag: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="immutable tag of the service image to run, e.g. a release or git sha (never `latest`)",
    )
    canary_image_tag: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="the version the canary Deployment runs beside stable (`meridian rollout` shifts traffic to it); "
        "absent: the canary runs image_tag and gets no traffic (weight 0)",
    )
    replicas: int = Field(3, ge=1, description="pods of the stable Deployment per region")
    container_port: int = Field(8080, ge=1, le=65535, description="port the service listens on inside its pod")


class DatabaseSettings(_Model):
    """The PostgreSQL database: writer in the primary region, replica in the dr region."""

    engine: Literal["aurora-postgresql", "postgres"] = Field(
        "aurora-postgresql",
        description="aurora-postgresql: an Aurora global database; postgres: RDS with a cross-region read replica",
    )
    engine_version: str = Field(
        "16",
        description="PostgreSQL major version only: AWS applies minor versions itself (auto_minor_version_upgrade), and "
        "the provider keeps a major-only value in step with the running minor (engine_version_actual); a pinned minor "
        "(16.4) would be fought by the next `up` after AWS upgrades. A major upgrade is a change of this value; for an Aurora global database (us, eu) "
        "first `aws rds modify-global-cluster --engine-version <major.minor> --allow-major-version-upgrade`: the global "
        "cluster ignores later changes of its version (the provider reads it back as the running minor)",
    )
    instance_class: str = Field("db.r6g.large", description="DB instance class of the writer and every reader")
    readers: int = Field(2, ge=0, le=15, description="in-region read replicas in the primary region")
    allocated_storage_gb: int = Field(100, ge=20, le=65536, description="storage of each instance in GiB; engine postgres only")

    @field_validator("engine_version")
    @classmethod
    def _major_only(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError(
                f"give the major version only (e.g. {value.split('.')[0]!r}), got {value!r}: AWS applies minor "
                "versions itself (auto_minor_version_upgrade) and a pinned one is drift the next `up` fights"
            )
        return value


class FailoverSettings(_Model):
    """Route 53 failover of the API between the regions, and the time it may take."""

    api_zone: str = Field(description="Route 53 hosted zone name, e.g. meridian.example.com")
    api_record: str = Field("api", description="the API's record name inside api_zone (api -> api.<api_zone>)")
    hosted_zone_id: str | None = Field(
        None,
        pattern=r"^Z[A-Z0-9]{1,32}$",
        description="the existing Route 53 zone for api_zone, already delegated from its parent",
    )
    create_zone: bool = Field(
        False,
        description="two-phase bring-up: the stack creates the zone; delegate it before the "
        "certificates can validate (docs/operations.md)",
    )
    health_check_interval_s: Literal[10, 30] = Field(10, description="seconds between Route 53 health checks of each region")
    failure_threshold: int = Field(
        ge=1,
        le=10,
        json_schema_extra={"default_text": "derived from rto_target_s"},  # the docs' default column
        description="consecutive failed checks before Route 53 fails a region over; when absent, the largest "
        "the RTO budget allows (stackconfig.planning.derived_failure_threshold)",
    )
    dns_ttl_s: int = Field(
        DEFAULT_DNS_TTL_S,
        ge=1,
        le=300,
        description="TTL of the API's failover CNAME records: how long resolvers keep a region's answer",
    )
    rto_target_s: int = Field(60, gt=0, description="automatic region failover must finish within this, margin included")

    @model_validator(mode="before")
    @classmethod
    def _derive_threshold(cls, values: Any) -> Any:
        """An absent failure threshold is derived from the RTO target: the most checks its budget affords."""
        if isinstance(values, Mapping) and "failure_threshold" not in values:
            interval, rto = values.get("health_check_interval_s", 10), values.get("rto_target_s", 60)
            ttl = values.get("dns_ttl_s", DEFAULT_DNS_TTL_S)
            if all(isinstance(v, int) for v in (interval, rto, ttl)):
                return {**values, "failure_threshold": derived_failure_threshold(rto, interval, ttl)}
        return values

    @property
    def budget(self) -> FailoverBudget:
        return failover_budget(self.health_check_interval_s, self.failure_threshold, self.dns_ttl_s)

    @property
    def detection_bound_s(self) -> int:
        """Worst case from the first failed check to resolvers answering the secondary (interval x
        threshold + TTL): what drills and chaos runs measure recovery against."""
        return self.budget.detection_bound_s

    @property
    def failover_bound_s(self) -> int:
        """The detection bound plus the stated margin (checker aggregation, propagation): what rto_target_s must cover."""
        return self.budget.total_s


class SloSettings(_Model):
    """The stack-wide service level objectives the SLO gate judges load runs against."""

    p95_ms: float = Field(500, gt=0, description="95th percentile request latency in milliseconds, at most")
    p99_ms: float = Field(1000, gt=0, description="99th percentile request latency in milliseconds, at most")
    error_rate: float = Field(0.01, ge=0, le=1, description="share of failed requests, at most (0.01 = 1 %)")
    availability: float = Field(0.999, gt=0, le=1, description="share of successful requests, at least (0.999 = three nines)")


class Quota(_Model):
    """What a tenant may use; over it the service answers HTTP 429 quota_exceeded with Retry-After."""

    gql_qps: int = Field(gt=0, le=QUOTA_MAX, description="GraphQL queries per second")
    ingest_eps: int = Field(gt=0, le=QUOTA_MAX, description="ingested events per second")
    storage_gb: int = Field(gt=0, le=QUOTA_MAX, description="stored data in GB; also caps the tenant's storage claims")


class PlanSpec(_Model):
    """A plan of the catalog: fixed quotas, or `per_tenant: true` (enterprise) set on each tenant."""

    per_tenant: bool = Field(False, description="true: each tenant of the plan carries its own quota (enterprise)")
    quota: Quota | None = Field(None, description="the plan's quota; required unless per_tenant, refused with it")


class TenantSpec(_Model):
    """One tenant of the stack."""

    id: TenantId = Field(description="stable tenant id: 3-32 of a-z, 0-9, -; starts with a letter; names its resources")
    plan: str = Field(description="a plan of the catalog (plans)")
    monthly_budget_usd: float = Field(gt=0, description="the tenant's AWS Budget in USD per month")
    data_tier: Literal["pool", "silo"] = Field(
        "pool", description="pool: shared bucket and key under the tenant's own prefix; silo: a bucket and KMS key of its own"
    )
    quota: Quota | None = Field(None, description="only for per-tenant (enterprise) plans")


class CostSettings(_Model):
    """What the stack may cost and who is told as it gets close."""

    cost_center: str = Field(min_length=1, description="value of the meridian:cost-center tag on every resource")
    stack_cap_usd: float = Field(
        gt=0,
        description="the AWS Budget in USD per month of the platform stack and its cells together (a cell's resources "
        "carry the platform's meridian:stack tag, so the one budget sees the zone's spend): the tenant budgets of "
        "every stack of the zone must fit in it",
    )
    alert_thresholds_pct: tuple[Percent, ...] = Field(
        (50, 80, 100), description="budget alerts at these percentages of each budget, strictly increasing"
    )
    activate_cost_allocation_tags: bool = Field(
        True,
        description="this stack owns the account-wide activation of the cost-allocation tags its budgets filter on "
        "(exactly one stack per account may); it activates them only once cost_allocation_tags_in_billing is true",
    )
    cost_allocation_tags_in_billing: bool = Field(
        False,
        description="the tag keys already appear in billing (`aws ce list-cost-allocation-tags` lists them, about 24 h "
        "after the first tagged resources run); AWS refuses to activate a key it has not seen, so a first `up` keeps "
        "false (docs/operations.md)",
    )

    @property
    def activates_tags(self) -> bool:
        """The stack creates the tag activations: it owns them and billing has seen the keys."""
        return self.activate_cost_allocation_tags and self.cost_allocation_tags_in_billing


ARN = re.compile(r"^arn:aws:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d{12}):(?P<resource>.+)$")


class AlertSubscription(_Model):
    """Where alerts go: an address outside AWS (email, https) or a queue / function inside the zone."""

    protocol: Literal["email", "https", "sqs", "lambda"] = Field(description="SNS subscription protocol")
    endpoint: str = Field(
        min_length=3,
        max_length=2048,
        description="an address (email), an https:// URL (https) or the ARN with its region (sqs, lambda)",
    )

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> AlertSubscription:
        ep = self.endpoint
        if self.protocol == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", ep):
            raise ValueError(f"email endpoint must be an address like oncall@example.com, got {ep!r}")
        if self.protocol == "https" and not re.fullmatch(r"https://[^\s/]+(/\S*)?", ep):
            raise ValueError(f"https endpoint must be an https:// URL, got {ep!r}")
        if self.protocol in ("sqs", "lambda"):
            what = {"sqs": "an SQS queue", "lambda": "a Lambda function"}[self.protocol]
            m = ARN.match(ep)
            if m is None or m["service"] != self.protocol or not m["region"]:
                raise ValueError(f"{self.protocol} endpoint must be the ARN of {what} with its region, got {ep!r}")
        return self

    @property
    def region(self) -> str | None:
        """The AWS region the endpoint lives in (sqs, lambda); None for endpoints outside AWS."""
        m = ARN.match(self.endpoint) if self.protocol in ("sqs", "lambda") else None
        return m["region"] if m else None


class AlertSettings(_Model):
    """Who hears of failover alarms (SNS in us-east-1) and budget notifications (in the primary region)."""

    subscriptions: tuple[AlertSubscription, ...] = Field(
        (), description="who gets every alert topic's messages (failover alarms, budget notifications)"
    )


class DrSettings(_Model):
    """Disaster recovery: the objectives drills are judged against, backups, replication, FIS experiments."""

    rpo_minutes: float = Field(
        15, gt=0, description="recovery point objective: most minutes of writes a regional disaster may lose"
    )
    rto_minutes: float = Field(
        5, gt=0, description="recovery time objective: most minutes until clients are served again after a regional disaster"
    )
    backup_retention_days: int = Field(
        35,
        ge=7,
        le=35,
        description="days of point-in-time restore and of every recovery point: AWS Backup's continuous backup "
        "(at most 35), the database's own automated backups (continuous backup takes them over) and the vault lock's minimum",
    )
    backup_schedule: str = Field(
        "cron(0 * ? * * *)",
        pattern=r"^(cron|rate)\(.+\)$",
        description="snapshot (and cross-region copy) schedule; continuous backup covers the time between",
    )
    vault_lock_mode: Literal["governance", "compliance"] | None = Field(
        None,
        json_schema_extra={"default_text": "governance; compliance when production"},  # the docs' default column
        description="governance: recovery points keep their minimum retention, but a principal with "
        "backup:DeleteBackupVaultLockConfiguration can remove the lock (and then the vaults); compliance: after "
        "vault_lock_grace_days nobody can, and the vaults can never be deleted",
    )
    vault_lock_grace_days: int = Field(
        3,
        ge=3,
        le=36500,
        description="compliance mode only: days after the first `up` during which the lock can still be removed (AWS's minimum is 3)",
    )
    replicate_delete_markers: bool = Field(True, description="S3 replication copies delete markers to the dr region")
    replication_time_control: bool = Field(
        True, description="S3 Replication Time Control: 99.99 % of objects within 15 minutes, with metrics"
    )
    fis_duration_minutes: int = Field(5, ge=1, le=60, description="how long each FIS experiment holds its fault")


class TeardownSettings(_Model):
    """What `pulumi destroy` may delete with the stack (docs/operations.md, Teardown)."""

    force_delete: bool | None = Field(
        None,
        json_schema_extra={"default_text": "true; false when production"},  # the docs' default column
        description="versioned buckets (every object version) and ECR repositories (every image) are deleted with "
        "the stack; false: destroy stops at the first non-empty one until it is emptied by hand",
    )


class GuardrailSettings(_Model):
    """The account's runtime guardrails, for the stack that owns them (owns_account_guardrails)."""

    access_analyzer: Literal["create", "existing"] = Field(
        "create",
        description="create: the stack creates an account-level IAM Access Analyzer for external and one for unused "
        "access in each of its regions; existing: the account already runs them (AWS allows one account-level "
        "analyzer of each type per account and region, not adjustable: creating a second fails the `up`), and "
        "`meridian preflight --online` checks they are there",
    )


class RolloutSettings(_Model):
    """Progressive delivery: a canary beside the stable version, its traffic share raised step by step."""

    steps: tuple[Annotated[int, Field(ge=1, le=100)], ...] = Field(
        (1, 5, 25, 100), description="canary traffic percentages, strictly increasing, ending at 100"
    )
    pause_s: int = Field(
        300, ge=1, le=86400, description="how long each step holds under load before the SLO gate judges the canary"
    )
    slo_file: str = Field(
        "loadtests/slo.yaml", min_length=1, description="the objectives each step is judged against (relative to the project)"
    )
    canary_replicas: int = Field(1, ge=1, description="pods of the canary version per region while a rollout runs")

    @field_validator("steps")
    @classmethod
    def _steps_rise_to_full(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps or steps[-1] != 100:
            raise ValueError("must end at 100 (full promotion)")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"must be strictly increasing, got {list(steps)}")
        return steps


class QuotaSettings(_Model):
    """The account's service quotas `meridian preflight` plans against (AWS defaults; raise them here
    after raising them in Service Quotas). Account-wide quotas are shared by `stacks_per_account`."""

    stacks_per_account: int = Field(3, ge=1, description="stacks deployed into one AWS account (they share account quotas)")
    iam_roles: int = Field(1000, ge=1, description="IAM roles per account (adjustable to 5,000)")
    iam_managed_policies: int = Field(1500, ge=1, description="customer managed policies per account (adjustable to 5,000)")
    budgets: int = Field(20000, ge=1, description="AWS Budgets per account")
    kms_keys_per_region: int = Field(100000, ge=1, description="customer managed KMS keys per region")
    security_groups_per_vpc: int = Field(2500, ge=1, description="VPC security groups per VPC (per region)")
    eips_per_region: int = Field(5, ge=1, description="Elastic IP addresses per region")
    nat_gateways_per_az: int = Field(5, ge=1, description="NAT gateways per availability zone")
    pod_identity_associations_per_cluster: int = Field(
        POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER,
        ge=1,
        le=POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER,
        description="EKS Pod Identity associations per cluster: AWS's fixed 5,000, which Service Quotas cannot raise "
        "(lower it only to plan with headroom)",
    )
    raised: dict[Annotated[str, Field(pattern=r"^L-[0-9A-F]{8}$")], Annotated[int, Field(ge=1)]] = Field(
        {},
        description="other quotas raised in Service Quotas, by quota code (e.g. L-0EA8095F: 120); preflight plans against AWS's defaults otherwise",
    )


class CellSettings(_Model):
    """Tenant cells: the cell stacks a platform stack serves, and how many tenants one stack may hold."""

    size: int = Field(
        DEFAULT_CELL_SIZE,
        ge=1,
        description="the most tenants any one stack of the zone holds: each cell's, and the platform's own inline tenants; "
        "at most what a cell's tenant file (one Kubernetes Secret, 1 MiB) holds of the longest entry the plan catalog allows "
        "(1,460 with the shipped catalog: stackconfig.checks.tenants.max_tenants_per_file)",
    )
    names: tuple[StackName, ...] = Field(
        (),
        description="the cell stacks this platform serves (each a Pulumi.<name>.yaml naming this stack as its platform): "
        "the workload mounts their tenant files and the stack exports cell_handles for them; a listed cell may "
        "come up after the platform",
    )
    cluster_pairs: tuple[tuple[StackName, ...], ...] = Field(
        (),
        description="tenant cluster pairs beyond the platform's own clusters (pair 0), in order: pair 1, pair 2, ...; "
        "each lists the cells (of `names`) whose tenants run on that pair, an EKS cluster in each region of the zone "
        "the platform builds. A cell listed in no pair, and the platform's inline tenants, are on pair 0. EKS allows "
        "5,000 Pod Identity associations per cluster (one per tenant): a zone past that needs pairs "
        f"(at most {CLUSTER_PAIRS_MAX}: the tenant roles' trust policies name each cluster; "
        'docs/operations.md, "Tenant cluster pairs")',
    )

    def pair_of(self, cell: str) -> int:
        """The tenant cluster pair a cell's tenants run on: k for `cluster_pairs[k - 1]`, 0 (the platform's
        own clusters) for a cell listed in no pair."""
        return next((k for k, cells in enumerate(self.cluster_pairs, 1) if cell in cells), 0)


class StackConfig(_Model):
    """Everything under the `meridian:` namespace of one stack."""

    # per top-level key, the file that set it (a key no file set comes from the stack file's defaults)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)
    _default_source: str = PrivateAttr("config")

    def __eq__(self, other: object) -> bool:  # the same config, wherever each key was written
        return isinstance(other, StackConfig) and self.__dict__ == other.__dict__

    __hash__ = _Model.__hash__

    def where(self, key: str) -> str:
        """`Pulumi.us.yaml: meridian:cost.stack_cap_usd`: a key as config errors name it, with its file."""
        top = key.split(".", 1)[0].split("[", 1)[0]
        return f"{self._sources.get(top, self._default_source)}: meridian:{key}"

    zone: Literal["us", "eu", "apac"] = Field(description="residency zone: every region the stack uses must lie in it")
    config_namespaces: tuple[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")], ...] = Field(
        (), description="config namespaces of your own, kept in the stack files but not read by this program"
    )
    regions: RegionPair = Field(description=RegionPair.__doc__)
    network: NetworkSettings = Field(NetworkSettings(), description=NetworkSettings.__doc__)
    cluster: ClusterSettings = Field(ClusterSettings(), description=ClusterSettings.__doc__)
    workload: WorkloadSettings = Field(description=WorkloadSettings.__doc__)
    database: DatabaseSettings = Field(DatabaseSettings(), description=DatabaseSettings.__doc__)
    failover: FailoverSettings = Field(description=FailoverSettings.__doc__)
    slo: SloSettings = Field(SloSettings(), description=SloSettings.__doc__)
    plans: dict[str, PlanSpec] = Field(
        description="The plan catalog: plan name -> its quota, or per_tenant: true (set on each tenant)."
    )
    tenants: tuple[TenantSpec, ...] = Field(
        description="The stack's tenants: unique ids, each on a plan of the catalog, budgets summing to at most cost.stack_cap_usd."
    )
    cost: CostSettings = Field(description=CostSettings.__doc__)
    cells: CellSettings = Field(CellSettings(), description=CellSettings.__doc__)
    platform: StackName | None = Field(
        None,
        description="a cell stack only: the platform stack it belongs to (its file holds only platform and tenants; "
        "everything else is the platform's, read from Pulumi.<platform>.yaml at the same commit)",
    )
    dr: DrSettings = Field(DrSettings(), description=DrSettings.__doc__)
    production: bool = Field(
        False, description="a production stack: drills refuse it without an explicit flag; needs aws_account_id and alerts"
    )
    aws_account_id: str | None = Field(
        None,
        pattern=r"^\d{12}$",
        description="the AWS account the stack deploys into: every provider refuses credentials of any other "
        '(allowed_account_ids); required for production stacks; quote it in YAML ("012345678901")',
    )
    owns_account_guardrails: bool = Field(
        True,
        description="this stack manages the account's runtime guardrails: the S3 public access block (account-wide) and an "
        "IAM Access Analyzer for external and one for unused access in each of its regions (AWS allows one of each per "
        "account and region): exactly one stack per account may own them (docs/operations.md)",
    )
    guardrails: GuardrailSettings = Field(GuardrailSettings(), description=GuardrailSettings.__doc__)
    alerts: AlertSettings = Field(AlertSettings(), description=AlertSettings.__doc__)
    quotas: QuotaSettings = Field(QuotaSettings(), description=QuotaSettings.__doc__)
    rollout: RolloutSettings = Field(RolloutSettings(), description=RolloutSettings.__doc__)
    teardown: TeardownSettings = Field(TeardownSettings(), description=TeardownSettings.__doc__)

    @property
    def vault_lock_changeable_days(self) -> int | None:
        """The vault lock's grace in days for compliance mode; None is governance mode (AWS's
        ChangeableForDays omitted). Absent `dr.vault_lock_mode`: compliance only for production."""
        mode = self.dr.vault_lock_mode or ("compliance" if self.production else "governance")
        return self.dr.vault_lock_grace_days if mode == "compliance" else None

    @property
    def force_delete(self) -> bool:
        """Buckets and image repositories are deleted with their contents; absent: outside production only."""
        return not self.production if self.teardown.force_delete is None else self.teardown.force_delete

    @property
    def allowed_regions(self) -> tuple[str, ...]:
        return ZONE_REGIONS[self.zone]

    @property
    def is_cell(self) -> bool:
        return self.platform is not None

    def quota_of(self, tenant: TenantSpec) -> Quota:
        plan = self.plans[tenant.plan]
        quota = tenant.quota if plan.per_tenant else plan.quota
        assert quota is not None, "parse_config guarantees every tenant has a quota"
        return quota
