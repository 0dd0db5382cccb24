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

from ruleutil import UNKNOWN, Stack, is_map, peek

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
        "cluster of the plan is held to the tenant clusters' guards, and so is a listed one the plan puts a tenant "
        "namespace on",
    }
}


NAMESPACE = "kubernetes:core/v1:Namespace"


def runs_tenants(stack: Stack, cluster: Any, config: dict) -> bool:
    """Whether EKS `cluster` runs tenants: unless its name is known and declared tenant-free, and the plan
    puts no tenant namespace on it (a declaration the plan contradicts exempts nothing: security review 21,
    K04, declared the platform's own cluster tenant-free)."""
    name = peek(cluster.props, "name")
    declared = isinstance(name, str) and name in set(config.get(WITHOUT_TENANTS) or [])
    return not declared or _holds_tenant_namespace(stack, cluster, config)


def _holds_tenant_namespace(stack: Stack, cluster: Any, config: dict) -> bool:
    """Whether a Namespace of the plan that is a tenant's (the tenant label, or the tenant prefix) goes
    through a Kubernetes provider built from `cluster`."""
    reaching = {p.urn for p in providers_of(stack, cluster)}
    label, prefix = config.get("tenantLabel", "meridian.io/tenant"), config.get("tenantNamespacePrefix", "t-")
    for ns in stack.of(NAMESPACE):
        if ns.provider is None or ns.provider.urn not in reaching:
            continue
        labels = peek(ns.props, "metadata", "labels")
        name = peek(ns.props, "metadata", "name")
        if (is_map(labels) and label in labels) or (isinstance(name, str) and name.startswith(prefix)):
            return True
    return False


def tenant_clusters(stack: Stack, config: dict) -> list[Any]:
    """The plan's EKS clusters that run tenants."""
    return [c for c in stack.of(CLUSTER) if runs_tenants(stack, c, config)]


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
