"""What a zone's tenants stand on, as one typed set of handles: in the platform stack they are its
live resources' outputs; a cell stack reads the same set from the platform's `cell_handles` output
through a `pulumi.StackReference`. The tenant composition (components.tenancy, components.cell)
takes the set and never asks where it came from, so platform and cells render tenants alike.

Region names and roles are not handles: resource names and providers are made from them before
any output resolves, so a cell takes them from its platform's config (the same file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import pulumi

from components.cluster import Cluster
from components.regionbase import ROLES, Role


@dataclass(frozen=True, kw_only=True)
class RegionHandles:
    """One region's platform parts a tenant slice uses."""

    pool_bucket_name: pulumi.Input[str]
    pool_bucket_arn: pulumi.Input[str]
    pool_key_arn: pulumi.Input[str]
    """Pool tenants' replicas from the other region arrive under it (the service is told)."""
    identity_role_arn: pulumi.Input[str]
    """The region's tenant role (components.tenantidentity) every tenant's pods assume."""
    silo_bucket_prefix: pulumi.Input[str]
    """Every silo bucket of the zone is `<prefix><namespace>`: the tenant role and the silo
    replication role name them by it."""
    cluster_name: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_ca_data: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class ClusterHandles:
    """How a stack reaches one cluster's Kubernetes API (components.cluster.ClusterAccess)."""

    cluster_name: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    cluster_ca_data: pulumi.Input[str]

    @classmethod
    def of(cls, cluster: Cluster) -> ClusterHandles:
        return cls(
            cluster_name=cluster.cluster_name,
            cluster_endpoint=cluster.endpoint,
            cluster_ca_data=cluster.certificate_authority_data,
        )


def on_cluster(handles: RegionHandles, cluster: ClusterHandles) -> RegionHandles:
    """The region's handles with its tenants on `cluster` (a tenant cluster pair's): the same pool,
    identity and silo prefix, another cluster."""
    return replace(handles, **{f.name: getattr(cluster, f.name) for f in fields(ClusterHandles)})


@dataclass(frozen=True, kw_only=True)
class CellHandles:
    """The platform's handles for its cells: per region role, and the zone's own."""

    regions: Mapping[Role, RegionHandles]
    budget_alerts_topic_arn: pulumi.Input[str]
    """The platform's budget alert topic: cell tenant budgets notify it, which runs the cap enforcer."""
    silo_replication_role_arn: pulumi.Input[str]
    """The platform's one replication role for every silo bucket of the zone (components.dr)."""
    tenant_clusters: Mapping[Role, Mapping[int, ClusterHandles]] = field(default_factory=dict)
    """Per region role, the clusters of the tenant cluster pairs (pair k >= 1; the region's own cluster
    is pair 0): a cell on pair k runs its tenants there. Empty: exported as before pairs existed."""

    def exported(self) -> dict[str, Any]:
        """The `cell_handles` stack output (`regions.<role>.tenant_clusters.<k>` only where pairs exist)."""

        def region(role: Role, h: RegionHandles) -> dict[str, Any]:
            out = {f.name: getattr(h, f.name) for f in fields(RegionHandles)}
            pairs = self.tenant_clusters.get(role)
            if pairs:
                out["tenant_clusters"] = {
                    str(k): {f.name: getattr(c, f.name) for f in fields(ClusterHandles)} for k, c in sorted(pairs.items())
                }
            return out

        return {
            "regions": {role: region(role, h) for role, h in self.regions.items()},
            "budget_alerts_topic_arn": self.budget_alerts_topic_arn,
            "silo_replication_role_arn": self.silo_replication_role_arn,
        }

    @classmethod
    def read(cls, exported: pulumi.Output[Any], pairs: Sequence[int] = ()) -> CellHandles:
        """The set from a `StackReference.require_output("cell_handles")`: each handle its own output
        (unknown where the platform's is), with the clusters of the tenant cluster `pairs` asked for."""

        def pick(*path: str) -> pulumi.Output[str]:
            def walk(value: Any) -> Any:
                for part in path:
                    if not isinstance(value, Mapping) or part not in value:
                        raise KeyError(
                            f"the platform's cell_handles output has no {'.'.join(path)}: `pulumi up` the platform first"
                        )
                    value = value[part]
                return value

            return exported.apply(walk)

        return cls(
            regions={
                role: RegionHandles(**{f.name: pick("regions", role, f.name) for f in fields(RegionHandles)}) for role in ROLES
            },
            budget_alerts_topic_arn=pick("budget_alerts_topic_arn"),
            silo_replication_role_arn=pick("silo_replication_role_arn"),
            tenant_clusters={
                role: {
                    k: ClusterHandles(
                        **{f.name: pick("regions", role, "tenant_clusters", str(k), f.name) for f in fields(ClusterHandles)}
                    )
                    for k in pairs
                }
                for role in ROLES
            }
            if pairs
            else {},
        )
