"""Tenant cluster pairs: more EKS clusters per region for a zone's tenants.

Every tenant holds one EKS Pod Identity association on its region's cluster (components.tenant), and
EKS allows 5,000 per cluster, a fixed limit. Past that a zone needs more clusters: pair k (k >= 1,
`cells.cluster_pairs`) is one more cluster in each region of the zone, which the platform builds and
the cells placed on the pair run their tenants on. A pair's cluster is the region's own in
everything tenants need of a cluster but its node group, which `cluster.tenant_nodes` sizes (the
platform's node settings where unset): the same settings, subnets (the region's private tier) and
access entries (components.cluster, which also makes its add-ons: the VPC CNI enforcing network
policies, the Pod Identity agent, EBS CSI), and the same admission backstops (components.admission).
The service, its front door and its controller stay on the region's own cluster (pair 0): a tenant's
data path is its pod's own identity, and the service reads each cell's tenant file there.

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.admission import TenantAdmission
from components.cluster import Cluster
from components.naming import cluster_name
from components.region import TENANT_ADMISSION
from components.regionbase import RegionBase, Role, cluster_args
from stackconfig import ClusterSettings

TenantPairs = Mapping[int, Mapping[Role, Cluster]]
"""Pair k (>= 1) -> its cluster in each region role."""


def compose_tenant_pairs(
    stack: str,
    pairs: int,
    bases: Mapping[Role, RegionBase],
    *,
    cluster: ClusterSettings,
    node_tags: Mapping[Role, Mapping[str, str]],
) -> dict[int, dict[Role, Cluster]]:
    """Pairs 1..`pairs`: in each region a cluster on the region's private subnets, with the region's
    tenant admission backstops."""
    out: dict[int, dict[Role, Cluster]] = {}
    for k in range(1, pairs + 1):
        out[k] = {}
        for role, base in bases.items():
            eks = Cluster(
                cluster_name(stack, base.region, k),
                # no IAM OIDC provider: nothing on a pair uses IRSA (tenants and the EBS CSI driver use Pod Identity)
                cluster_args(base.spec, base.network, cluster, node_tags[role], cluster.pair_nodes, iam_oidc_provider=False),
                opts=pulumi.ResourceOptions(providers={"aws": base.provider}),
            )
            # the cluster holds its tenant namespaces to the pack's Kubernetes rules at runtime, as the region's own
            TenantAdmission(
                f"{stack}-{base.region}-admission-{k}",
                TENANT_ADMISSION,
                opts=pulumi.ResourceOptions(providers={"kubernetes": eks.k8s_provider}),
            )
            out[k][role] = eks
    return out


def pair_clusters(pairs: TenantPairs, role: Role) -> list[Cluster]:
    """The region's tenant pair clusters, in pair order."""
    return [pairs[k][role] for k in sorted(pairs)]
