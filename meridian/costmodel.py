"""Offline monthly cost estimate of a plan: per resource, per type, per region and per tenant.

Prices come from `meridian/data/aws_prices.json` (with its source and date). Fixed charges are
priced from each resource's inputs; tenant storage is priced at the tenant's plan quota (the
most it can use). Shared platform cost is allocated to tenants by their quota weight, so each
tenant's estimate can be held against its budget and the stack total against the stack cap.
A tenant cluster pair's clusters (`cells.cluster_pairs`) are the platform stack's resources but
serve only the cells on the pair: their cost is the pair's (`CostReport.pairs`), kept out of the
platform's inline tenants' share and allocated to the tenants of the pair's cells by the same
weight where every stack of the zone is known (`meridian preview --zone`, `allocate_pairs`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any

from stackconfig import StackConfig

SECONDS_PER_MONTH = 730 * 3600
SHARED = "(shared)"


@dataclass(frozen=True)
class Line:
    urn: str
    type: str
    region: str
    tenant: str | None
    monthly_usd: float
    basis: str
    pair: int = 0  # the tenant cluster pair whose clusters the resource belongs to; 0: the platform's own


@dataclass(frozen=True)
class PairCost:
    """What tenant cluster pair k's clusters cost a month, and the cells whose tenants run on them."""

    pair: int
    cells: tuple[str, ...]
    monthly_usd: float


@dataclass
class TenantCost:
    tenant: str
    plan: str
    direct_usd: float
    shared_usd: float
    budget_usd: float
    budget_key: str = ""  # where the budget is set: `Pulumi.us.yaml: meridian:tenants['acme'].monthly_budget_usd`

    @property
    def total_usd(self) -> float:
        return self.direct_usd + self.shared_usd

    @property
    def over_budget(self) -> bool:
        return self.total_usd > self.budget_usd + 1e-9


@dataclass
class CostReport:
    stack: str
    lines: list[Line]
    tenants: list[TenantCost]
    stack_cap_usd: float
    requests_per_month_at_quota: float
    source: str
    date: str
    unpriced_types: list[str] = field(default_factory=list)
    stack_cap_key: str = ""  # where the cap is set: `Pulumi.us.yaml: meridian:cost.stack_cap_usd`
    pairs: list[PairCost] = field(default_factory=list)  # in the stack total; allocated to the pairs' cells' tenants

    @property
    def total_usd(self) -> float:
        return sum(line.monthly_usd for line in self.lines)

    @property
    def usd_per_1k_requests(self) -> float | None:
        if self.requests_per_month_at_quota <= 0:
            return None
        return self.total_usd / (self.requests_per_month_at_quota / 1000)

    def by(self, attr: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for line in self.lines:
            out[getattr(line, attr) or SHARED] += line.monthly_usd
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    @property
    def problems(self) -> list[str]:
        """What puts the estimate over its caps; empty when within them."""
        out = []
        if self.total_usd > self.stack_cap_usd + 1e-9:
            out.append(
                f"stack {self.stack}: estimate ${self.total_usd:,.2f}/month is over the stack cap ${self.stack_cap_usd:,.2f}"
                + (f" ({self.stack_cap_key})" if self.stack_cap_key else "")
            )
        out += [
            f"tenant {t.tenant}: estimate ${t.total_usd:,.2f}/month (direct ${t.direct_usd:,.2f} + shared ${t.shared_usd:,.2f})"
            f" is over its budget ${t.budget_usd:,.2f}" + (f" ({t.budget_key})" if t.budget_key else "")
            for t in self.tenants
            if t.over_budget
        ]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "evaluated": True,
            "currency": "USD",
            "source": self.source,
            "price_date": self.date,
            "monthly_total_usd": round(self.total_usd, 2),
            "stack_cap_usd": self.stack_cap_usd,
            "by_type": {k: round(v, 2) for k, v in self.by("type").items()},
            "by_region": {k: round(v, 2) for k, v in self.by("region").items()},
            "tenants": [
                {
                    **asdict(t),
                    "direct_usd": round(t.direct_usd, 2),
                    "shared_usd": round(t.shared_usd, 2),
                    "total_usd": round(t.total_usd, 2),
                    "over_budget": t.over_budget,
                }
                for t in self.tenants
            ],
            "pairs": [{"pair": p.pair, "cells": list(p.cells), "monthly_usd": round(p.monthly_usd, 2)} for p in self.pairs],
            "usd_per_1k_requests_at_quota": self.usd_per_1k_requests,
            "unpriced_types": self.unpriced_types,
            "problems": self.problems,
        }


def load_prices() -> dict[str, Any]:
    return json.loads(resources.files("meridian").joinpath("data/aws_prices.json").read_text())


@dataclass(frozen=True)
class Option:
    """Something the plan does not build that an operator may buy, with its monthly price."""

    name: str
    monthly_usd: float
    detail: str


def options_not_in_plan(prices: dict[str, Any] | None = None) -> list[Option]:
    """Priced options the program does not build (shown beside the estimate, never added to it)."""
    p = prices or load_prices()
    hourly = p["hourly"]["arc_cluster"]
    return [
        Option(
            "Route 53 ARC routing controls",
            hourly * p["hours_per_month"],
            f"one cluster at ${hourly:.2f}/hour, shareable by every stack: failover by a data-plane switch, "
            "independent of Route 53's control plane (docs/runbooks/dr-drill.md)",
        )
    ]


# A Cluster component's name: `<stack>-<region>-eks` for the platform's own, `-eks-<k>` for pair k's
# (components.naming.cluster_name; tests/test_pair_nodes_cost.py ties the two)
_CLUSTER_TYPE = "meridian:cluster:Cluster"
_PAIR_CLUSTER = re.compile(r"-eks-(\d+)$")


def pairs_of(resources: list[Mapping[str, Any]]) -> dict[str, int]:
    """Each resource's tenant cluster pair: k for what a pair k cluster component holds (its children and
    theirs), 0 for everything else."""
    parents = {r["urn"]: r.get("parent") or "" for r in resources}
    own = {
        r["urn"]: int(m.group(1))
        for r in resources
        if r["type"] == _CLUSTER_TYPE and (m := _PAIR_CLUSTER.search(r["name"])) is not None
    }
    out: dict[str, int] = {}
    for r in resources:
        chain, urn = [], r["urn"]
        while urn and urn not in out and urn not in own:  # up the parents to a known answer or the root
            chain.append(urn)
            urn = parents.get(urn, "")
        k = own.get(urn, out.get(urn, 0))
        for link in chain:
            out[link] = k
        if urn in own:
            out[urn] = k
    return out


def _tenant_of(inputs: Mapping[str, Any]) -> str | None:
    tags = inputs.get("tags")
    if isinstance(tags, dict) and isinstance(tags.get("meridian:tenant"), str):
        return tags["meridian:tenant"]
    labels = (inputs.get("metadata") or {}).get("labels") if isinstance(inputs.get("metadata"), dict) else None
    return labels.get("meridian.io/tenant") if isinstance(labels, dict) else None


class _Pricer:
    def __init__(self, prices: dict[str, Any], cfg: StackConfig):
        self.p = prices
        self.cfg = cfg
        self.hours = prices["hours_per_month"]

    def factor(self, region: str) -> float:
        return self.p["regional_factor"].get(region, 1.0)

    def price(self, rtype: str, inputs: Mapping[str, Any], region: str) -> tuple[float, str] | None:
        """Monthly USD and its basis for one resource, or None for a type with no fixed charge model."""
        p, h, f = self.p, self.hours, self.factor(region)
        month = p["monthly"]
        if rtype == "aws:eks/cluster:Cluster":
            return p["hourly"]["eks_cluster"] * h, "EKS control plane"
        if rtype == "aws:eks/nodeGroup:NodeGroup":
            size = inputs["scalingConfig"]["desiredSize"]
            itype = inputs["instanceTypes"][0]
            return p["ec2_hourly"][itype] * h * f * size, f"{size} x {itype}"
        if rtype == "aws:ec2/natGateway:NatGateway":
            return p["hourly"]["nat_gateway"] * h * f, "NAT gateway hours"
        if rtype == "aws:ec2/vpcEndpoint:VpcEndpoint" and inputs.get("vpcEndpointType") == "Interface":
            azs = len(inputs.get("subnetIds") or [])
            return p["hourly"]["interface_endpoint_az"] * h * f * azs, f"interface endpoint in {azs} AZs"
        if rtype == "aws:ec2/eip:Eip":
            return p["hourly"]["public_ipv4"] * h, "public IPv4 address"
        if rtype in ("aws:rds/clusterInstance:ClusterInstance", "aws:rds/instance:Instance"):
            engine = inputs.get("engine", "postgres")
            cls = inputs["instanceClass"]
            multi = 2 if inputs.get("multiAz") else 1
            usd = p["rds_hourly"][engine][cls] * h * f * multi
            if rtype == "aws:rds/instance:Instance":
                gb = inputs.get("allocatedStorage") or self.cfg.database.allocated_storage_gb
                usd += p["per_gb_month"]["rds_gp3"] * gb * f * multi
            return usd, f"{cls}{' Multi-AZ' if multi == 2 else ''}"
        if rtype == "aws:rds/cluster:Cluster":
            gb = self.cfg.database.allocated_storage_gb
            return p["per_gb_month"]["aurora_storage"] * gb * f, f"Aurora storage ~{gb} GB"
        if rtype == "aws:kms/key:Key":
            return month["kms_key"], "KMS key"
        if rtype == "aws:secretsmanager/secret:Secret":
            copies = 1 + len(inputs.get("replicas") or [])
            return month["secret"] * copies, f"secret ({copies} {'copy' if copies == 1 else 'copies'}, each billed)"
        if rtype == "aws:route53/zone:Zone":
            return month["route53_zone"], "hosted zone"
        if rtype == "aws:route53/healthCheck:HealthCheck":
            features = (
                (inputs.get("type") == "HTTPS") + bool(inputs.get("measureLatency")) + (inputs.get("requestInterval") == 10)
            )
            return month["health_check_base"] + features * month["health_check_feature"], f"health check + {features} features"
        if rtype == "aws:cloudwatch/metricAlarm:MetricAlarm":
            return month["cloudwatch_alarm"], "standard alarm"
        if rtype == "aws:budgets/budget:Budget":
            return month["budget_with_actions"], "budget with actions"
        if rtype in ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"):
            kind = inputs.get("loadBalancerType", "application")
            if kind == "network":
                return p["hourly"]["nlb"] * h * f, "network load balancer hours"
            return p["hourly"]["alb"] * h * f, "application load balancer hours (LCUs are usage)"
        if rtype == "kubernetes:core/v1:Service" and (inputs.get("spec") or {}).get("type") == "LoadBalancer":
            return p["hourly"]["nlb"] * h * f, "network load balancer hours (controller-created)"
        return None


# Types with no fixed monthly charge (usage-priced or free); anything else unpriced is reported.
_FREE = (
    "aws:ec2/",
    "aws:iam/",
    "aws:kms/alias",
    "aws:s3/",
    "aws:route53/record",
    "aws:acm/",
    "aws:sns/",
    "aws:cloudwatch/logGroup",
    "aws:rds/subnetGroup",
    "aws:rds/parameterGroup",
    "aws:rds/clusterParameterGroup",
    "aws:rds/globalCluster",
    "aws:budgets/budgetAction",
    "kubernetes:",
    "random:",
    "aws:backup/",
    "aws:fis/",  # backup storage per GB-month of recovery points, FIS per action-minute: usage
    # ECR is priced by stored GB and transfer (usage); EKS add-ons, access entries and Pod Identity are free
    "aws:ecr/",
    "aws:eks/addon",
    "aws:eks/accessEntry",
    "aws:eks/accessPolicyAssociation",
    "aws:eks/podIdentityAssociation",
    "aws:costexplorer/costAllocationTag",  # activating a cost-allocation tag is free
    "aws:lambda/permission",
    # a function is billed per request and GB-second (the cap enforcer's hourly run stays in the free tier);
    # scheduled EventBridge rules and their targets are free
    "aws:lambda/function",
    "aws:cloudwatch/eventRule",
    "aws:cloudwatch/eventTarget",
    # a secret's versions and rotation schedule are free; the rotation function runs a few seconds a month
    "aws:secretsmanager/secretVersion",
    "aws:secretsmanager/secretRotation",
    "aws:serverlessrepository/",
    # listeners and target groups cost nothing beyond the load balancer's hours and LCUs
    "aws:lb/listener",
    "aws:lb/targetGroup",
    "aws:vpc/securityGroup",  # VPC security group rules
    # external access analysis is free; unused access is billed per IAM role and user analyzed each month
    # (the account's principals, not the plan's): usage
    "aws:accessanalyzer/",
)


def estimate(
    resources: Iterable[Mapping[str, Any]], cfg: StackConfig, stack: str, prices: dict[str, Any] | None = None
) -> CostReport:
    """Price plan resources (dicts shaped like the plan JSON's `resources`)."""
    prices = prices or load_prices()
    pricer = _Pricer(prices, cfg)
    lines: list[Line] = []
    unpriced: set[str] = set()
    resources = list(resources)
    pair_of = pairs_of(resources)
    # AWS Budgets bills only budgets with actions; one without is free
    with_actions = {
        u
        for r in resources
        if r["type"] == "aws:budgets/budgetAction:BudgetAction"
        for u in (r.get("propertyDependencies") or {}).get("budgetName", [])
    }
    for r in resources:
        if not r.get("custom") or r["type"].startswith("pulumi:providers:"):
            continue
        if r["type"] == "aws:budgets/budget:Budget" and r["urn"] not in with_actions:
            continue
        priced = pricer.price(r["type"], r["inputs"], r.get("region") or "")
        if priced is None:
            if not r["type"].startswith(_FREE):
                unpriced.add(r["type"])
            continue
        usd, basis = priced
        lines.append(
            Line(r["urn"], r["type"], r.get("region") or "global", _tenant_of(r["inputs"]), usd, basis, pair_of[r["urn"]])
        )

    # Tenant storage at quota, once per region the tenant lives in.
    regions = [spec.region for _, spec in cfg.regions.both]
    for tenant in cfg.tenants:
        gb = cfg.quota_of(tenant).storage_gb
        for region in regions:
            lines.append(
                Line(
                    f"quota:{tenant.id}:{region}",
                    "s3-storage-at-quota",
                    region,
                    tenant.id,
                    prices["per_gb_month"]["s3_standard"] * gb * pricer.factor(region),
                    f"{gb} GB at quota",
                )
            )

    direct: dict[str, float] = defaultdict(float)
    for line in lines:
        if line.tenant:
            direct[line.tenant] += line.monthly_usd
    # the platform's own shared cost only: a pair's clusters serve the cells on it, not the inline tenants
    shared = sum(line.monthly_usd for line in lines if not line.tenant and not line.pair)
    on_pairs = cfg.cells.cluster_pairs
    pairs = [
        PairCost(
            k, tuple(on_pairs[k - 1]) if k <= len(on_pairs) else (), sum(line.monthly_usd for line in lines if line.pair == k)
        )
        for k in sorted({line.pair for line in lines if line.pair})
    ]
    weights = {t.id: _weight(cfg, t) for t in cfg.tenants}
    total_weight = sum(weights.values()) or 1.0
    tenants = [
        TenantCost(
            t.id,
            t.plan,
            direct[t.id],
            shared * weights[t.id] / total_weight,
            t.monthly_budget_usd,
            cfg.where(f"tenants[{t.id!r}].monthly_budget_usd"),
        )
        for t in cfg.tenants
    ]
    requests = sum(cfg.quota_of(t).gql_qps + cfg.quota_of(t).ingest_eps for t in cfg.tenants) * SECONDS_PER_MONTH
    return CostReport(
        stack,
        lines,
        tenants,
        cfg.cost.stack_cap_usd,
        requests,
        prices["source"],
        prices["date"],
        sorted(unpriced),
        cfg.where("cost.stack_cap_usd"),
        pairs,
    )


@dataclass(frozen=True)
class PairShare:
    """A tenant's share of its pair's clusters: what its own stack's estimate cannot see."""

    tenant: str
    cell: str
    pair: int
    usd: float


def allocate_pairs(pairs: Iterable[PairCost], cells: Mapping[str, StackConfig]) -> list[PairShare]:
    """Each pair's cost over the tenants of the cells on it (`cells`: each cell stack's config), by the
    quota weight the platform's own shared cost is allocated by. A pair whose cells hold no tenant yet
    allocates nothing: its cost stays the platform's, in the stack total."""
    out: list[PairShare] = []
    for pair in pairs:
        weighted = [(cell, t, _weight(cells[cell], t)) for cell in pair.cells if cell in cells for t in cells[cell].tenants]
        total = sum(w for _, _, w in weighted)
        if total > 0:
            out += [PairShare(t.id, cell, pair.pair, pair.monthly_usd * w / total) for cell, t, w in weighted]
    return out


def _weight(cfg: StackConfig, tenant) -> float:
    """A tenant's share of the platform: its request quota (queries weigh 20 ingest events)."""
    q = cfg.quota_of(tenant)
    return q.gql_qps * 20 + q.ingest_eps
