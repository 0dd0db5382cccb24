"""Which EKS clusters of a plan run tenants, and the Kubernetes providers that reach each.

Every EKS cluster the program builds runs tenants: each region's own cluster the platform's, each
tenant cluster pair's its cells' (components.tenantclusters). A pair cluster's tenant namespaces
live only in its cells' plans, while its guards (admission backstops, the VPC CNI add-on) live only
in the platform's: so a cluster is judged as a tenant cluster by being in the plan, not by the
namespaces the plan puts on it. A cluster that runs no tenant is declared so by name in the stack's
pack config (`clustersWithoutTenants`, set by hand; the program builds none).
"""

from __future__ import annotations

from typing import Any

from ruleutil import UNKNOWN, Stack, peek

CLUSTER = "aws:eks/cluster:Cluster"
K8S_PROVIDER = "pulumi:providers:kubernetes"
WITHOUT_TENANTS = "clustersWithoutTenants"

SETTINGS: dict[str, dict[str, Any]] = {
    WITHOUT_TENANTS: {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "set by hand: names (`name`) of the stack's EKS clusters that run no tenant (the program builds "
        "none: every cluster it builds runs the platform's or a tenant cluster pair's tenants); every other EKS "
        "cluster of the plan is held to the tenant clusters' guards",
    }
}


def runs_tenants(cluster: Any, config: dict) -> bool:
    """Whether EKS `cluster` runs tenants: unless its name is known and declared tenant-free."""
    name = peek(cluster.props, "name")
    return not (isinstance(name, str) and name in set(config.get(WITHOUT_TENANTS) or []))


def tenant_clusters(stack: Stack, config: dict) -> list[Any]:
    """The plan's EKS clusters that run tenants."""
    return [c for c in stack.of(CLUSTER) if runs_tenants(c, config)]


def cluster_label(cluster: Any) -> str:
    name = peek(cluster.props, "name")
    return name if isinstance(name, str) and name else cluster.name


def providers_of(stack: Stack, cluster: Any) -> list[Any]:
    """The Kubernetes providers built from `cluster` (their `kubeconfig` a property dependency on it): the
    ones the plan gives to reach it."""
    return stack.referring(cluster, "kubeconfig", K8S_PROVIDER)


def names_cluster(stack: Stack, resource: Any, prop: str, cluster: Any) -> bool | Any:
    """Whether `resource`'s `prop` (a cluster name, as an add-on's `clusterName`) names EKS `cluster`: built
    from it, or equal to its known name; `UNKNOWN` when the value is unknown at preview and not built from it."""
    if cluster.urn in {c.urn for c in stack.linked(resource, prop, CLUSTER)}:
        return True
    value = peek(resource.props, prop)
    if value is UNKNOWN or peek(cluster.props, "name") is UNKNOWN:
        return UNKNOWN
    return isinstance(value, str) and value == peek(cluster.props, "name")
