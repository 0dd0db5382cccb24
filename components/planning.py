"""Pure planning arithmetic, kept out of resource constructors so it can be property-tested."""

from __future__ import annotations

import ipaddress

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
