"""Typed stack configuration: the one parser for the Pulumi program and for the tooling.

Every key of a stack lives under the `meridian:` namespace: project defaults in `Pulumi.yaml`,
per-stack values in `Pulumi.<stack>.yaml`. The program reaches the merged values through the
engine (`pulumi.Config`); the tooling reads the two YAML files itself. Both hand the same
mapping to `parse_config`, so both see the same truth and the same errors.

A bad config raises `ConfigError` listing every problem at once: the file, the key path, what is
wrong and what is allowed.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.metadata
import importlib.util
import ipaddress
import itertools
import json
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from components.planning import DEFAULT_DNS_TTL_S, FailoverBudget, derived_failure_threshold, failover_budget

NAMESPACE = "meridian"
# Config namespaces the program reads: its own, the providers it configures, the engine's.
# A key in any other namespace (say a typo, `meridan:database`) would be ignored, so it is refused
# unless the stack declares that namespace in `meridian:config_namespaces`.
READ_NAMESPACES = (NAMESPACE, "aws", "kubernetes", "pulumi")

# Residency zones and the AWS regions whose data stays inside them (product definition).
ZONE_REGIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
    "eu": ("eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "eu-south-1"),
    "apac": ("ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ap-south-1"),
}
ALL_REGIONS = tuple(itertools.chain.from_iterable(ZONE_REGIONS.values()))

S3_RTC_MINUTES = 15  # S3 Replication Time Control's bound (the only value AWS accepts)

TenantId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")]
Percent = Annotated[int, Field(ge=1, le=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionSpec(_Model):
    """One region of the pair and the VPC address space it gets."""

    region: str
    cidr: ipaddress.IPv4Network = Field(description="VPC CIDR, /16 to /20; carved into subnet tiers")


class RegionPair(_Model):
    primary: RegionSpec
    dr: RegionSpec

    @property
    def both(self) -> tuple[tuple[str, RegionSpec], ...]:
        return (("primary", self.primary), ("dr", self.dr))


class NetworkSettings(_Model):
    az_count: int = Field(3, ge=2, le=4, description="availability zones the VPC spans")
    nat_gateways: Literal["per-az", "single"] = "per-az"
    flow_log_retention_days: Literal[30, 60, 90, 180, 365, 731, 1827, 3653] = 365


class ClusterSettings(_Model):
    version: str = "1.33"
    node_instance_types: tuple[str, ...] = ("m7g.large",)
    node_ami_type: str = "AL2023_ARM_64_STANDARD"
    node_min: int = Field(3, ge=1)
    node_desired: int = Field(3, ge=1)
    node_max: int = Field(9, ge=1)
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


class WorkloadSettings(_Model):
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
    replicas: int = Field(3, ge=1)
    container_port: int = Field(8080, ge=1, le=65535)


class DatabaseSettings(_Model):
    engine: Literal["aurora-postgresql", "postgres"] = "aurora-postgresql"
    engine_version: str = "16.4"
    instance_class: str = "db.r6g.large"
    readers: int = Field(2, ge=0, le=15, description="in-region read replicas in the primary region")
    backup_retention_days: int = Field(14, ge=1, le=35)
    allocated_storage_gb: int = Field(100, ge=20, le=65536, description="RDS postgres only")


class FailoverSettings(_Model):
    api_zone: str = Field(description="Route 53 hosted zone name, e.g. meridian.example.com")
    api_record: str = "api"
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
    health_check_interval_s: Literal[10, 30] = 10
    failure_threshold: int = Field(
        ge=1,
        le=10,
        description="consecutive failed checks before Route 53 fails a region over; when absent, the largest "
        "the RTO budget allows (components.planning.derived_failure_threshold)",
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
    p95_ms: float = Field(500, gt=0)
    p99_ms: float = Field(1000, gt=0)
    error_rate: float = Field(0.01, ge=0, le=1)
    availability: float = Field(0.999, gt=0, le=1)


class Quota(_Model):
    gql_qps: int = Field(gt=0)
    ingest_eps: int = Field(gt=0)
    storage_gb: int = Field(gt=0)


class PlanSpec(_Model):
    """A plan of the catalog: fixed quotas, or `per_tenant: true` (enterprise) set on each tenant."""

    per_tenant: bool = False
    quota: Quota | None = None


class TenantSpec(_Model):
    id: TenantId
    plan: str
    monthly_budget_usd: float = Field(gt=0)
    data_tier: Literal["pool", "silo"] = "pool"
    quota: Quota | None = Field(None, description="only for per-tenant (enterprise) plans")


class CostSettings(_Model):
    cost_center: str = Field(min_length=1)
    stack_cap_usd: float = Field(gt=0)
    alert_thresholds_pct: tuple[Percent, ...] = (50, 80, 100)
    activate_cost_allocation_tags: bool = Field(
        True,
        description="this stack activates the cost-allocation tags its budgets filter on (an account-wide setting: "
        "exactly one stack per account may own it; AWS refuses a tag not yet seen in billing, docs/operations.md)",
    )


ARN = re.compile(r"^arn:aws:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d{12}):(?P<resource>.+)$")


class AlertSubscription(_Model):
    """Where alerts go: an address outside AWS (email, https) or a queue / function inside the zone."""

    protocol: Literal["email", "https", "sqs", "lambda"]
    endpoint: str = Field(min_length=3, max_length=2048)

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> AlertSubscription:
        ep = self.endpoint
        if self.protocol == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", ep):
            raise ValueError(f"email endpoint must be an address like oncall@example.com, got {ep!r}")
        if self.protocol == "https" and not re.fullmatch(r"https://[^\s/]+(/\S*)?", ep):
            raise ValueError(f"https endpoint must be an https:// URL, got {ep!r}")
        if self.protocol in ("sqs", "lambda"):
            service = {"sqs": "sqs", "lambda": "lambda"}[self.protocol]
            m = ARN.match(ep)
            if m is None or m["service"] != service or not m["region"]:
                raise ValueError(f"{self.protocol} endpoint must be the ARN of an {service} resource with its region, got {ep!r}")
        return self

    @property
    def region(self) -> str | None:
        """The AWS region the endpoint lives in (sqs, lambda); None for endpoints outside AWS."""
        m = ARN.match(self.endpoint) if self.protocol in ("sqs", "lambda") else None
        return m["region"] if m else None


class AlertSettings(_Model):
    subscriptions: tuple[AlertSubscription, ...] = Field(
        (), description="who gets every alert topic's messages (failover alarms, budget notifications)"
    )


class DrSettings(_Model):
    rpo_minutes: float = Field(15, gt=0)
    rto_minutes: float = Field(5, gt=0)
    backup_retention_days: int = Field(
        35,
        ge=7,
        le=35,
        description="AWS Backup recovery points (continuous backups keep at most 35 days); the vault lock's minimum",
    )
    backup_schedule: str = Field(
        "cron(0 * ? * * *)",
        pattern=r"^(cron|rate)\(.+\)$",
        description="snapshot (and cross-region copy) schedule; continuous backup covers the time between",
    )
    vault_lock_changeable_days: int | None = Field(
        3, ge=3, description="days the vault lock stays changeable before compliance mode (immutable); null keeps governance mode"
    )
    replicate_delete_markers: bool = Field(True, description="S3 replication copies delete markers to the dr region")
    replication_time_control: bool = Field(
        True, description="S3 Replication Time Control: 99.99 % of objects within 15 minutes, with metrics"
    )
    fis_duration_minutes: int = Field(5, ge=1, le=60, description="how long each FIS experiment holds its fault")


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
    pod_identity_associations_per_cluster: int = Field(5000, ge=1, description="EKS Pod Identity associations per cluster")


class StackConfig(_Model):
    zone: Literal["us", "eu", "apac"]
    config_namespaces: tuple[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")], ...] = Field(
        (), description="config namespaces of your own, kept in the stack files but not read by this program"
    )
    regions: RegionPair
    network: NetworkSettings = NetworkSettings()
    cluster: ClusterSettings = ClusterSettings()
    workload: WorkloadSettings
    database: DatabaseSettings = DatabaseSettings()
    failover: FailoverSettings
    slo: SloSettings = SloSettings()
    plans: dict[str, PlanSpec]
    tenants: tuple[TenantSpec, ...]
    cost: CostSettings
    dr: DrSettings = DrSettings()
    production: bool = False
    aws_account_id: str | None = Field(
        None,
        pattern=r"^\d{12}$",
        description="the AWS account the stack deploys into: every provider refuses credentials of any other "
        "(allowed_account_ids); required for production stacks",
    )
    alerts: AlertSettings = AlertSettings()
    quotas: QuotaSettings = QuotaSettings()
    rollout: RolloutSettings = RolloutSettings()

    @property
    def allowed_regions(self) -> tuple[str, ...]:
        return ZONE_REGIONS[self.zone]

    def quota_of(self, tenant: TenantSpec) -> Quota:
        plan = self.plans[tenant.plan]
        quota = tenant.quota if plan.per_tenant else plan.quota
        assert quota is not None, "parse_config guarantees every tenant has a quota"
        return quota


# --- errors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class ConfigError(Exception):
    """A stack config that cannot be used; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class RawConfig:
    """The merged `meridian:` keys of one stack and, per top-level key, the file that set it;
    `foreign` holds every key of another namespace (`aws:region`) and the file that set it."""

    values: dict[str, Any]
    sources: dict[str, str]
    default_source: str = "config"
    foreign: dict[str, str] = field(default_factory=dict)

    def source_of(self, top_key: str) -> str:
        return self.sources.get(top_key, self.default_source)


# --- parsing ------------------------------------------------------------------------------------


def _key_path(loc: tuple[Any, ...], values: Any = None) -> str:
    """`('tenants', 4, 'id')` -> `meridian:tenants['fjord'].id`: list entries that carry an `id`
    are named by it, as written, so the reader finds them without counting."""
    path = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    node = values.get(loc[0]) if loc and isinstance(values, Mapping) else None
    for part in loc[1:]:
        if isinstance(part, int):
            entry = node[part] if isinstance(node, list) and part < len(node) else None
            ident = entry.get("id") if isinstance(entry, Mapping) else None
            path += f"[{ident!r}]" if isinstance(ident, str) and ident else f"[{part}]"
            node = entry
        else:
            path += f".{part}"
            node = node.get(part) if isinstance(node, Mapping) else None
    return path


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest choice, or nothing when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fields_at(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys allowed at `loc` (a pydantic error location), walking the model annotations."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None:  # a dict of models (plans): `part` is the entry's name
            model = next((a for a in typing.get_args(model) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            continue
        if part not in fields:
            return ()
        model = _model_in(fields[part].annotation)
    return tuple(getattr(model, "model_fields", {}) or ())


def _model_in(annotation: Any) -> Any:
    """The pydantic model an annotation holds (`Quota | None`, `tuple[TenantSpec, ...]`), or the
    `dict[str, Model]` annotation itself for keyed collections."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is dict:
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _describe(error: Mapping[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        return "unknown key (remove it or check its spelling)" + did_you_mean(str(loc[-1]), _fields_at(loc[:-1]))
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"{msg} (got {error['input']!r})"
    if "input" in error and not isinstance(error["input"], (dict, list)):
        return f"{msg} (got {error['input']!r})"
    return msg


def parse_config(raw: RawConfig) -> StackConfig:
    """Validate the merged `meridian:` keys of one stack; raise ConfigError with every problem.

    Cross-key rules still run when some other key is malformed: they check every section that
    did validate, so one run reports everything wrong.
    """
    try:
        cfg = StackConfig.model_validate(raw.values)
        sections: dict[str, Any] = dict(cfg)
        problems: list[Problem] = []
    except ValidationError as exc:
        cfg = None
        errors = exc.errors()
        problems = [
            Problem(raw.source_of(str(e["loc"][0]) if e["loc"] else ""), _key_path(e["loc"], raw.values), _describe(e))
            for e in errors
        ]
        sections = _valid_sections(raw.values, {str(e["loc"][0]) for e in errors if e["loc"]})
    problems += [
        Problem(raw.source_of(key.split(".")[0].split("[")[0]), f"{NAMESPACE}:{key}", msg)
        for key, msg in cross_field_problems(sections)
    ]
    if problems:
        raise ConfigError(problems)
    assert cfg is not None
    return cfg


def _valid_sections(values: Mapping[str, Any], failed: set[str]) -> dict[str, Any]:
    """The top-level sections that validate on their own (defaults included)."""
    out: dict[str, Any] = {}
    for name, spec in StackConfig.model_fields.items():
        if name in failed:
            continue
        if name in values:
            out[name] = TypeAdapter(spec.annotation).validate_python(values[name])
        elif not spec.is_required():
            out[name] = spec.get_default(call_default_factory=True)
    return out


def cross_field_problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules that span keys, over whichever sections validated; (key path, message) pairs."""
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if has("zone") and has("regions"):
        allowed = ZONE_REGIONS[s["zone"]]
        for role, spec in s["regions"].both:
            if spec.region not in allowed:
                out.append(
                    (
                        f"regions.{role}.region",
                        f"{spec.region!r} is outside residency zone {s['zone']!r} (allowed: {', '.join(allowed)})",
                    )
                )
    if has("regions"):
        pair = s["regions"]
        for role, spec in pair.both:
            if not 16 <= spec.cidr.prefixlen <= 20:
                out.append((f"regions.{role}.cidr", f"{spec.cidr} must be a /16 to /20 so three subnet tiers fit over the AZs"))
        if pair.primary.region == pair.dr.region:
            out.append(
                (
                    "regions.dr.region",
                    f"dr region must differ from primary ({pair.primary.region}): a pair in one region survives no regional outage",
                )
            )
        if pair.primary.cidr.overlaps(pair.dr.cidr):
            out.append(
                (
                    "regions.dr.cidr",
                    f"{pair.dr.cidr} overlaps primary {pair.primary.cidr}; the VPCs are peered for replication, pick disjoint ranges",
                )
            )

    if has("cluster"):
        cl = s["cluster"]
        if not cl.node_min <= cl.node_desired <= cl.node_max:
            out.append(
                (
                    "cluster",
                    f"node sizes must satisfy node_min <= node_desired <= node_max (got {cl.node_min}, {cl.node_desired}, {cl.node_max})",
                )
            )
        for i, cidr in enumerate(cl.public_access_cidrs):
            if cidr.prefixlen == 0:
                out.append(
                    (
                        f"cluster.public_access_cidrs[{i}]",
                        "0.0.0.0/0 opens the Kubernetes API to the internet; list operator CIDRs or leave empty for private only",
                    )
                )
        if cl.api_access == "public-restricted" and not cl.public_access_cidrs:
            out.append(
                (
                    "cluster.public_access_cidrs",
                    "api_access public-restricted needs the runner's egress CIDRs here, or the "
                    "Kubernetes API is unreachable from `pulumi up`; or set api_access: private-runner",
                )
            )
        if cl.api_access == "private-runner" and not cl.runner_cidrs:
            out.append(
                ("cluster.runner_cidrs", "api_access private-runner needs the runner's network (routed into both VPCs) here")
            )
        if not cl.deploy_role_arn:
            out.append(
                (
                    "cluster.deploy_role_arn",
                    "required: the role `pulumi up` runs as; it gets cluster admin through an EKS "
                    "access entry (the creator gets no implicit admin), e.g. arn:aws:iam::<account>:role/meridian-deploy",
                )
            )
        if cl.api_access == "private-runner" and cl.public_access_cidrs:
            out.append(
                ("cluster.public_access_cidrs", "must be empty with api_access private-runner (the endpoint is private only)")
            )

    if has("failover"):
        fo = s["failover"]
        if bool(fo.hosted_zone_id) == fo.create_zone:
            out.append(
                (
                    "failover.hosted_zone_id",
                    "required: the ID of the existing Route 53 zone for api_zone, delegated from its parent (certificates "
                    "validate only in a delegated zone); or, without it, create_zone: true for the two-phase bring-up"
                    if not fo.create_zone
                    else "set hosted_zone_id or create_zone: true, not both",
                )
            )
        if fo.failover_bound_s > fo.rto_target_s:
            fits = derived_failure_threshold(fo.rto_target_s, fo.health_check_interval_s, fo.dns_ttl_s)
            fix = (
                f"set failure_threshold <= {fits}"
                if failover_budget(fo.health_check_interval_s, fits, fo.dns_ttl_s).total_s <= fo.rto_target_s
                else f"lower dns_ttl_s or raise rto_target_s to at least {failover_budget(10, 1, fo.dns_ttl_s).total_s} s"
                " (interval 10, threshold 1)"
            )
            out.append(("failover", f"{fo.budget.explain()} exceeds rto_target_s {fo.rto_target_s} s; {fix}"))

    if has("dr"):
        dr = s["dr"]
        if dr.replication_time_control and dr.rpo_minutes < S3_RTC_MINUTES:
            out.append(
                (
                    "dr.rpo_minutes",
                    f"{dr.rpo_minutes:g} min is below S3 Replication Time Control's {S3_RTC_MINUTES} min bound: objects cannot meet it",
                )
            )
        if not dr.replication_time_control and s.get("production"):
            out.append(
                (
                    "dr.replication_time_control",
                    "a production stack needs it: S3 replication without RTC has no time bound, so no RPO holds for objects",
                )
            )
        if has("failover") and s["failover"].budget.pinned_client_s > dr.rto_minutes * 60:
            out.append(
                (
                    "dr.rto_minutes",
                    f"{dr.rto_minutes:g} min is shorter than the failover bound plus the ALB's client keep-alive "
                    f"({s['failover'].budget.pinned_client_s} s): a client pinned to a failed region would outlast it",
                )
            )

    plans = s.get("plans")
    for name, plan in (plans or {}).items():
        if plan.per_tenant and plan.quota is not None:
            out.append((f"plans.{name}.quota", "a per_tenant plan takes its quota from each tenant; remove it here"))
        if not plan.per_tenant and plan.quota is None:
            out.append((f"plans.{name}.quota", "required unless per_tenant: true"))

    tenants = s.get("tenants") or ()
    first_at: dict[str, int] = {}
    for i, tenant in enumerate(tenants):
        at = f"tenants[{tenant.id!r}]"  # named by id, as written: nobody counts list entries
        if tenant.id in first_at:
            out.append(
                (
                    f"{at}.id",
                    f"duplicate tenant id {tenant.id!r} (entries {first_at[tenant.id] + 1} and {i + 1} of the list); ids must be unique within a stack",
                )
            )
        first_at.setdefault(tenant.id, i)
        if plans is None:
            continue
        plan = plans.get(tenant.plan)
        if plan is None:
            out.append(
                (f"{at}.plan", f"unknown plan {tenant.plan!r} (allowed: {', '.join(plans)})" + did_you_mean(tenant.plan, plans))
            )
        elif plan.per_tenant and tenant.quota is None:
            out.append((f"{at}.quota", f"plan {tenant.plan!r} is set per tenant: give this tenant a quota"))
        elif not plan.per_tenant and tenant.quota is not None:
            out.append((f"{at}.quota", f"plan {tenant.plan!r} has fixed quotas; remove the tenant's own"))

    if s.get("production") and not s.get("aws_account_id"):
        out.append(("aws_account_id", "required for a production stack: every provider is pinned to it (allowed_account_ids)"))
    account = s.get("aws_account_id")
    if account and has("cluster"):
        roles = [("cluster.deploy_role_arn", s["cluster"].deploy_role_arn)]
        roles += [(f"cluster.operator_role_arns[{i}]", a) for i, a in enumerate(s["cluster"].operator_role_arns)]
        for key, arn in roles:
            if arn and arn.split(":")[4] != account:
                out.append((key, f"{arn} is in account {arn.split(':')[4]}, not the stack's aws_account_id {account}"))
    if has("alerts") and has("zone"):
        allowed = ZONE_REGIONS[s["zone"]]
        for i, sub in enumerate(s["alerts"].subscriptions):
            if sub.region is not None and sub.region not in allowed:
                out.append(
                    (
                        f"alerts.subscriptions[{i}].endpoint",
                        f"{sub.protocol} endpoint in {sub.region} is outside residency zone {s['zone']!r} "
                        f"(allowed: {', '.join(allowed)})",
                    )
                )
        if s.get("production") and not s["alerts"].subscriptions:
            out.append(
                (
                    "alerts.subscriptions",
                    "a production stack needs at least one: its failover alarms and budget alerts go nowhere",
                )
            )

    if has("cost"):
        cost = s["cost"]
        budgets = sum(t.monthly_budget_usd for t in tenants)
        if has("tenants") and budgets > cost.stack_cap_usd:
            out.append(
                (
                    "tenants",
                    f"tenant budgets sum to ${budgets:,.2f}, over the stack cap cost.stack_cap_usd ${cost.stack_cap_usd:,.2f}",
                )
            )
        if list(cost.alert_thresholds_pct) != sorted(set(cost.alert_thresholds_pct)):
            out.append(
                ("cost.alert_thresholds_pct", f"{list(cost.alert_thresholds_pct)} must be strictly increasing percentages")
            )
    return out


# --- keys outside the `meridian:` namespace -----------------------------------------------------


@functools.cache
def provider_config_keys(namespace: str) -> frozenset[str] | None:
    """The config keys a provider accepts (`region`, `defaultTags`, ...), read from its installed
    Python SDK's generated `config/vars.py`; None when that SDK has no such module (kubernetes)."""
    spec = importlib.util.find_spec(f"pulumi_{namespace}")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "config" / "vars.py"
    if not path.is_file():
        return None
    keys = set()
    for node in ast.walk(ast.parse(path.read_text())):  # every `__config__.get*('<key>')`
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "__config__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(str(node.args[0].value))
    return frozenset(keys) or None  # an SDK generated another way: better unchecked than every key refused


def _sdk_version(namespace: str) -> str:
    try:
        return f"pulumi-{namespace} {importlib.metadata.version(f'pulumi-{namespace}')}"
    except importlib.metadata.PackageNotFoundError:
        return f"pulumi-{namespace}"


def declared_namespaces(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The namespaces a stack declares as its own (`meridian:config_namespaces`), as far as readable."""
    declared = values.get("config_namespaces")
    return tuple(n for n in declared if isinstance(n, str)) if isinstance(declared, list | tuple) else ()


def foreign_key_problems(foreign: Mapping[str, str], own: Iterable[str] = ()) -> list[Problem]:
    """Keys outside `meridian:` (`ns:key` -> file) that nothing would read: an unknown namespace, or
    a provider key its SDK does not define. Each with the closest known key as a suggestion."""
    namespaces = (*READ_NAMESPACES, *own)
    known = [f"{NAMESPACE}:{name}" for name in StackConfig.model_fields]
    for ns in READ_NAMESPACES:
        known += [f"{ns}:{key}" for key in provider_config_keys(ns) or ()]
    problems = []
    for key, file in sorted(foreign.items()):
        ns, _, name = key.partition(":")
        if ns not in namespaces:
            hint = did_you_mean(key, known) or did_you_mean(ns, namespaces)
            problems.append(
                Problem(
                    file,
                    key,
                    f"unknown config namespace {ns!r}: nothing reads it (namespaces read: {', '.join(READ_NAMESPACES)};"
                    f" declare your own in {NAMESPACE}:config_namespaces){hint}",
                )
            )
            continue
        accepted = provider_config_keys(ns)
        if accepted is not None and name not in accepted:
            problems.append(
                Problem(
                    file,
                    key,
                    f"unknown key: the {ns} provider ({_sdk_version(ns)}) has no setting {name!r}" + did_you_mean(name, accepted),
                )
            )
    return problems


def validate(raw: RawConfig) -> StackConfig:
    """`parse_config` plus the keys of other namespaces: every problem of both in one ConfigError."""
    foreign = foreign_key_problems(raw.foreign, declared_namespaces(raw.values))
    try:
        cfg = parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(exc.problems + foreign) from None
    if foreign:
        raise ConfigError(foreign)
    return cfg


# --- sources: the YAML files (tooling) and the engine (program) ---------------------------------


@dataclass(frozen=True)
class Overrides:
    """Top-level `meridian:` keys replaced after the files are read, and what to blame for them."""

    values: dict[str, Any]
    source: str


class StackFileError(Exception):
    """A stack or project file that is missing or not YAML."""


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StackFileError(f"{path.name}: file not found in {path.parent}")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise StackFileError(f"{path.name}: top level must be a mapping")
    return doc


def _split_key(key: str, default_ns: str) -> tuple[str, str]:
    ns, sep, rest = key.partition(":")
    return (ns, rest) if sep else (default_ns, key)


def read_stack_files(project_dir: Path, stack: str, overrides: Overrides | None = None) -> tuple[RawConfig, dict[str, str]]:
    """Merge `Pulumi.yaml` defaults with `Pulumi.<stack>.yaml` as the engine does.

    Returns the `meridian:` keys (with the file each came from) and the other namespaces'
    keys (e.g. `aws:region`) as the engine would pass them, as strings. `overrides` replace
    whole top-level keys after the files (e.g. synthetic tenants for scale runs).
    """
    project_doc = _load_yaml(project_dir / "Pulumi.yaml")
    stack_file = f"Pulumi.{stack}.yaml"
    stack_doc = _load_yaml(project_dir / stack_file)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    others: dict[str, str] = {}
    foreign: dict[str, str] = {}
    for file, doc, is_project in (("Pulumi.yaml", project_doc, True), (stack_file, stack_doc, False)):
        section = doc.get("config") or {}
        if not isinstance(section, dict):
            raise StackFileError(f"{file}: `config` must be a mapping")
        for key, value in section.items():
            if is_project and isinstance(value, dict) and ({"default", "value"} & value.keys()):
                value = value.get("value", value.get("default"))
            ns, name = _split_key(str(key), NAMESPACE)
            if ns == NAMESPACE:
                values[name] = value
                sources[name] = file
            else:
                others[f"{ns}:{name}"] = value if isinstance(value, str) else json.dumps(value)
                foreign[f"{ns}:{name}"] = file
    if overrides:
        values.update(overrides.values)
        sources.update({k: overrides.source for k in overrides.values})
    return RawConfig(values, sources, default_source=stack_file, foreign=foreign), others


def load_stack(project_dir: Path, stack: str, overrides: Overrides | None = None) -> StackConfig:
    """The tooling's entry: read and validate one stack's config from its files."""
    raw, others = read_stack_files(project_dir, stack, overrides)
    aws_region, zone = others.get("aws:region"), raw.values.get("zone")
    region = []  # checked even when other keys are broken, so one run lists every problem
    if aws_region is not None and zone in ZONE_REGIONS and aws_region not in ZONE_REGIONS[zone]:
        region = [
            Problem(
                raw.foreign.get("aws:region", f"Pulumi.{stack}.yaml"),
                "aws:region",
                f"{aws_region!r} is outside residency zone {zone!r} (allowed: {', '.join(ZONE_REGIONS[zone])})",
            )
        ]
    try:
        cfg = validate(raw)
    except ConfigError as exc:
        raise ConfigError(exc.problems + region) from None
    if region:
        raise ConfigError(region)
    return cfg


def engine_config(project_dir: Path, stack: str, overrides: Overrides | None = None) -> dict[str, str]:
    """All config keys as the engine hands them to a program: `ns:key` -> string (JSON for non-strings)."""
    raw, others = read_stack_files(project_dir, stack, overrides)
    merged = {f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.values.items()}
    return {**others, **merged}


# Top-level keys typed as text: the engine passes every value as a string, so JSON-decoding them
# would turn "012345678901" into a number.
_TEXT_KEYS = frozenset(name for name, f in StackConfig.model_fields.items() if f.annotation in (str, str | None))


def from_engine(stack: str) -> StackConfig:
    """The program's entry: read every `meridian:` key the engine passed and validate it."""
    import pulumi.runtime.config as rc  # the engine's own store; pulumi.Config cannot list keys

    passed = {**rc.get_config_env(), **rc.CONFIG.get()}
    values: dict[str, Any] = {}
    stack_file = f"Pulumi.{stack}.yaml"
    foreign: dict[str, str] = {}
    for key, text in passed.items():
        ns, name = _split_key(key, "")
        if ns != NAMESPACE:
            foreign[key] = stack_file  # the engine does not say which file; the stack's is the likely one
            continue
        if name in _TEXT_KEYS and isinstance(text, str):
            values[name] = text  # digits that must stay text (an account id may start with 0)
            continue
        try:
            values[name] = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError:
            values[name] = text  # plain strings arrive unquoted
    return validate(RawConfig(values, {}, default_source=stack_file, foreign=foreign))
