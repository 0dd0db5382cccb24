"""Pure planning arithmetic, kept out of resource constructors so it can be property-tested: the
failover budget the config checks hold the RTO target to, and the subnet plan and tenant sizing the
components build from the config's values."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

TIERS = ("public", "private", "data")


def plan_subnets(vpc_cidr: str, az_count: int) -> dict[str, list[str]]:
    """Carve a VPC CIDR into public, private and data subnets, one per AZ per tier.

    The VPC is split in quarters: private (pods, nodes) gets half, data and public a quarter
    each; each tier's share is then split in four so up to 4 AZs fit without renumbering.
    A /16 gives private /19s, data and public /20s.
    """
    if not 1 <= az_count <= 4:
        raise ValueError(f"az_count must be 1..4, got {az_count}")
    vpc = ipaddress.ip_network(vpc_cidr)
    quarters = list(vpc.subnets(prefixlen_diff=2))
    private_half = quarters[0].supernet(prefixlen_diff=1)
    shares = {"private": private_half, "data": quarters[2], "public": quarters[3]}
    return {tier: [str(n) for n in list(shares[tier].subnets(prefixlen_diff=2))[:az_count]] for tier in TIERS}


def tenant_sizing(gql_qps: int, ingest_eps: int, storage_gb: int) -> dict[str, str]:
    """Kubernetes ResourceQuota hard limits for a tenant's plan quota.

    One vCPU serves ~50 GraphQL qps or ~1,000 ingest events/s on the reference service; memory is
    2 GiB per vCPU; storage claims are capped at the plan's storage. Monotone in every input.
    """
    cpu = max(1, -(-gql_qps // 50) + -(-ingest_eps // 1000))
    return {
        "requests.cpu": str(cpu),
        "limits.cpu": str(cpu * 2),
        "requests.memory": f"{cpu * 2}Gi",
        "limits.memory": f"{cpu * 4}Gi",
        "pods": str(10 * cpu),
        "services.loadbalancers": "0",
        "persistentvolumeclaims": "10",
        "requests.storage": f"{storage_gb}Gi",
    }


# --- failover timing ------------------------------------------------------------------------------

# The API records are CNAMEs with their own TTL, not aliases: Route 53 answers an alias to an ELB load
# balancer with the balancer's fixed 60 s TTL (Route 53 FAQ), which alone would spend the < 60 s target.
DEFAULT_DNS_TTL_S = 10
# Route 53 health checkers report from several regions; the last of them reaches the threshold up to one
# interval after the first, and the health status then reaches Route 53's name servers. Stated, not measured.
PROPAGATION_MARGIN_S = 10
# The ALB closes every client connection after this long (`client_keep_alive`, 60 s is its minimum): a
# client that keeps reusing a connection to a region whose ALB still answers moves at the latest then.
CLIENT_KEEP_ALIVE_S = 60


@dataclass(frozen=True)
class FailoverBudget:
    """Worst-case time from a region failing to clients reaching the other region, term by term."""

    interval_s: int
    threshold: int
    dns_ttl_s: int  # resolvers keep the PRIMARY answer this long
    detection_s: int  # interval x threshold: consecutive failed checks seen by one checker
    aggregation_s: int  # checkers in several regions are staggered: the last reaches the threshold up to one interval later
    margin_s: int  # the health status reaching Route 53's name servers, resolvers refreshing
    keep_alive_s: int  # a connection to a failed region whose ALB still answers is closed at the latest after this

    @property
    def detection_bound_s(self) -> int:
        """interval x threshold + TTL: what the health checks and DNS alone take (drills measure this)."""
        return self.detection_s + self.dns_ttl_s

    @property
    def total_s(self) -> int:
        """Every new connection lands on the healthy region: what `rto_target_s` must cover."""
        return self.detection_bound_s + self.aggregation_s + self.margin_s

    @property
    def pinned_client_s(self) -> int:
        """A client that reconnected to the failed region just before its answer changed, on an ALB that
        still answers (a partial failure), holds that connection up to the ALB's keep-alive more."""
        return self.total_s + self.keep_alive_s

    def explain(self) -> str:
        return (
            f"failover bound = checks {self.interval_s} x {self.threshold} + TTL {self.dns_ttl_s}"
            f" + checker aggregation {self.aggregation_s} + propagation margin {self.margin_s} = {self.total_s} s"
        )


def failover_budget(interval_s: int, threshold: int, dns_ttl_s: int = DEFAULT_DNS_TTL_S) -> FailoverBudget:
    return FailoverBudget(
        interval_s=interval_s,
        threshold=threshold,
        dns_ttl_s=dns_ttl_s,
        detection_s=interval_s * threshold,
        aggregation_s=interval_s,
        margin_s=PROPAGATION_MARGIN_S,
        keep_alive_s=CLIENT_KEEP_ALIVE_S,
    )


def derived_failure_threshold(rto_target_s: int, interval_s: int, dns_ttl_s: int = DEFAULT_DNS_TTL_S) -> int:
    """The largest failure threshold (Route 53 allows 1-10) whose failover bound fits the RTO target:
    the most tolerance of a passing blip the target affords. 1 when even one check does not fit (the
    config check then reports it)."""
    fits = [t for t in range(1, 11) if failover_budget(interval_s, t, dns_ttl_s).total_s <= rto_target_s]
    return max(fits, default=1)
