"""A cell stack, composed: tenants only, on their platform's parts read through a StackReference.

Per region, the cell builds the kubernetes provider of the platform's cluster (components.cluster's
own function, from the exported name, endpoint and CA), each tenant's slice (the platform's
composition: components.tenancy) and the cell's tenant file for the platform's service. A cell on a
tenant cluster pair (`cells.cluster_pairs`, components.tenantclusters) builds a second provider, of
its pair's cluster, for its tenants' slices; the tenant file stays on the platform's cluster. Once for
the pair, its tenants' API keys, their budgets (the platform's cap enforcer reconciles them) and
each silo tenant's replication through the platform's shared silo role.

A tenant's own resources (its slices, API key, budget, replication) have the names, and the
parents, the platform gives its inline tenants: the same URN, less the stack, whichever stack of the
zone holds the tenant, so `pulumi state move` moves a tenant without a replacement
(docs/operations.md, "Moving a tenant between stacks"). Where the platform parents one to a
component of its own (budget, replication), the cell's carries an alias to that parentage. What is
the cell's own (its tenant file, its providers, the reference) is named after the cell.

The platform's networks, clusters, database, pool, identity, workload, stack budget, cap enforcer,
backups and guardrails stay in the platform stack. Plain functions over the components, no
component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.apikeys import TenantApiKeys, TenantApiKeysArgs
from components.cluster import ClusterAccess, cluster_provider
from components.dr import DISASTER_RECOVERY_TYPE, ReplicationSettings, replicate_bucket
from components.handles import CellHandles, on_cluster
from components.oversight import compose_cell_budgets
from components.recovery import disaster_recovery_name, silo_pairs
from components.regionbase import Role
from components.tenancy import compose_tenant_slices, service_tenants
from components.tenant import Tenant
from components.workload import tenant_file_secret
from stackconfig import StackConfig
from stackconfig.planning import plan_subnets

CELL_HANDLES = "cell_handles"  # the platform's output a cell reads


def platform_reference(stack: str, platform: str) -> pulumi.StackReference:
    """The cell's reference to its platform stack, in the same organization and project."""
    return pulumi.StackReference(f"{stack}-platform", stack_name=f"{pulumi.get_organization()}/{pulumi.get_project()}/{platform}")


@dataclass(frozen=True, kw_only=True)
class CellRegion:
    region: str
    tenants: Mapping[str, Tenant]
    tenant_file: k8s.core.v1.Secret


@dataclass(frozen=True, kw_only=True)
class Cell:
    regions: Mapping[Role, CellRegion]
    api_keys: TenantApiKeys
    budget_names: Mapping[str, pulumi.Output[str]]


def compose_cell(
    stack: str, cfg: StackConfig, handles: CellHandles, providers: Mapping[Role, aws.Provider], *, pair: int = 0
) -> Cell:
    """The cell's tenants in both regions of its platform, on `handles` (its platform's, read): on the
    platform's own clusters (pair 0), or on tenant cluster pair `pair`'s, with the tenant file still on
    the platform's own cluster, where the service mounts it."""
    assert cfg.platform is not None, "a cell's config names its platform"
    platform = cfg.platform
    api_keys = TenantApiKeys(f"{platform}-api-keys", TenantApiKeysArgs(tenant_ids=[t.id for t in cfg.tenants]))
    regions: dict[Role, CellRegion] = {}
    for role, spec in cfg.regions.both:
        region, h = spec.region, handles.regions[role]
        # the service's cluster (the platform's own): its provider keeps its name wherever the tenants run,
        # so moving the cell between pairs never touches the tenant file
        k8s_provider = cluster_provider(
            f"{stack}-{region}-k8s",
            ClusterAccess(region=region, cluster_name=h.cluster_name, endpoint=h.cluster_endpoint, ca_data=h.cluster_ca_data),
            secrets_mutable=True,  # the tenant file is mounted by its fixed name: updated in place, never deleted and created
        )
        tenants_provider = k8s_provider
        if pair:
            h = on_cluster(h, handles.tenant_clusters[role][pair])
            tenants_provider = cluster_provider(
                f"{stack}-{region}-tenants-k8s",
                ClusterAccess(region=region, cluster_name=h.cluster_name, endpoint=h.cluster_endpoint, ca_data=h.cluster_ca_data),
            )
        slices = compose_tenant_slices(
            platform,  # the zone's names: a tenant's slice is the same in any of its stacks
            cfg,
            cfg.tenants,
            region=region,
            handles=h,
            database_cidrs=list(
                plan_subnets(str(spec.cidr), cfg.network.az_count)["data"]
            ),  # as the platform's network carves them
            vpc_cidr=str(spec.cidr),
            opts=pulumi.ResourceOptions(providers={"aws": providers[role], "kubernetes": tenants_provider}),
        )
        tenant_file = tenant_file_secret(
            f"{stack}-{region}-tenant-file",
            stack,
            service_tenants(cfg, cfg.tenants, slices, h, api_keys.digests),
            opts=pulumi.ResourceOptions(provider=k8s_provider),
        )
        regions[role] = CellRegion(region=region, tenants=slices, tenant_file=tenant_file)

    budget_names = compose_cell_budgets(
        platform,
        cfg.cost,
        cfg.tenants,
        alerts_topic_arn=handles.budget_alerts_topic_arn,
        provider=providers["primary"],
    )
    replication = ReplicationSettings(
        time_control=cfg.dr.replication_time_control, delete_markers=cfg.dr.replicate_delete_markers
    )
    for pair in silo_pairs(cfg.tenants, regions["primary"].tenants, regions["dr"].tenants):
        replicate_bucket(
            f"{disaster_recovery_name(platform)}-{pair.role}-replication",  # as the platform's DisasterRecovery names it
            pair,
            handles.silo_replication_role_arn,
            replication=replication,
            opts=pulumi.ResourceOptions(
                provider=providers["primary"],
                depends_on=list(pair.depends_on),
                # a silo tenant moved in from the platform (`pulumi state move`) arrives under its DisasterRecovery
                aliases=[pulumi.Alias(parent=pulumi.create_urn(disaster_recovery_name(platform), DISASTER_RECOVERY_TYPE))],
            ),
        )
    return Cell(regions=regions, api_keys=api_keys, budget_names=budget_names)
