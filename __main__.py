"""meridian: one residency zone's region pair. Composition only: config -> providers -> regions
(keyed by role) -> shared parts -> exports; how each part is wired lives in components/.

A platform stack (`us`) holds the pair and its inline tenants; a cell stack (`us-cell-001`, whose
file names `meridian:platform`) holds tenants only, on its platform's parts (components.cell)."""

from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.apikeys import TenantApiKeys, TenantApiKeysArgs
from components.cell import CELL_HANDLES, compose_cell, platform_reference
from components.handles import CellHandles, ClusterHandles
from components.oversight import compose_alerts, compose_cost_caps, compose_guardrails
from components.recovery import SILOS, compose_disaster_recovery, compose_failover
from components.region import Region, compose_region, region_outputs
from components.regionbase import RegionBase, Role, compose_base
from components.shared import compose_database, compose_domain, compose_registry, schedule_rotation
from components.tagging import ProviderSettings, configure_providers, regional_provider
from components.tenantclusters import compose_tenant_pairs, pair_clusters
from stackconfig import ConfigError, from_engine

stack = pulumi.get_stack()
try:
    cfg = from_engine(stack, Path(__file__).resolve().parent)  # a cell reads its platform's file beside its own
except ConfigError as exc:
    raise pulumi.RunError(f"invalid stack config:\n{exc}") from None


def platform_stack() -> None:
    """The platform: networks, clusters, database, failover, DR, the shared tenant parts, the workload;
    its own tenants inline, and `cell_handles` for the cells it serves."""
    provider_settings = ProviderSettings(
        stack=stack, zone=cfg.zone, cost_center=cfg.cost.cost_center, account_id=cfg.aws_account_id
    )
    configure_providers(provider_settings)
    providers = {role: regional_provider(spec.region) for role, spec in cfg.regions.both}

    # Each region's network and cluster first: the database spans both and stands on them.
    bases: dict[Role, RegionBase] = {
        role: compose_base(
            stack,
            role,
            spec,
            provider=providers[role],
            network=cfg.network,
            cluster=cfg.cluster,
            node_tags=provider_settings.tags(spec.region),
        )
        for role, spec in cfg.regions.both
    }
    # The tenant cluster pairs' clusters (none unless cells.cluster_pairs lists some): their cells' tenants run there.
    pairs = compose_tenant_pairs(
        stack,
        len(cfg.cells.cluster_pairs),
        bases,
        cluster=cfg.cluster,
        node_tags={role: provider_settings.tags(spec.region) for role, spec in cfg.regions.both},
    )
    tenant_clusters = {role: pair_clusters(pairs, role) for role in bases}
    database = compose_database(
        stack,
        cfg.database,
        bases,
        backup_retention_days=cfg.dr.backup_retention_days,
        tenant_clusters=tenant_clusters,
    )
    domain = compose_domain(stack, cfg.failover, bases)
    registry = compose_registry(stack, cfg.workload.repository, bases, force_delete=cfg.force_delete)
    api_keys = TenantApiKeys(f"{stack}-api-keys", TenantApiKeysArgs(tenant_ids=[t.id for t in cfg.tenants]))
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=providers["primary"])).account_id

    # Then what runs in each region: tenancy, the front door and the workload.
    regions: dict[Role, Region] = {
        role: compose_region(
            stack,
            cfg,
            base,
            database=database,
            certificate_arn=domain.certificate_arns[base.region],
            registry=registry,
            api_keys=api_keys,
            account_id=account_id,
            tenant_clusters=tenant_clusters[role],
        )
        for role, base in bases.items()
    }

    schedule_rotation(stack, database, migrated_by=regions["primary"].workload.migration)
    cost_caps = compose_cost_caps(stack, cfg.cost, cfg.tenants, regions)
    failover = compose_failover(stack, cfg.failover, domain, regions)
    compose_alerts(stack, cfg.alerts, failover=failover, cost_caps=cost_caps, regions=regions)
    compose_guardrails(
        stack, cfg.owns_account_guardrails, regions, cfg.guardrails
    )  # the runtime backstops behind the policy pack
    disaster_recovery = compose_disaster_recovery(
        stack,
        cfg.dr,
        database_engine=cfg.database.engine,
        database_arn=database.primary_arn,  # what the backup plan selects (not the replicas)
        tenants=cfg.tenants,
        regions=regions,
        failover=failover,
        vault_lock_changeable_days=cfg.vault_lock_changeable_days,  # None: governance mode
        serves_cells=bool(cfg.cells.names),  # a cell's silo tenants replicate through the platform's role
    )

    pulumi.export("zone", cfg.zone)
    pulumi.export("api_url", f"https://{domain.fqdn}")
    pulumi.export("failover_detection_bound_s", failover.detection_bound_s)
    pulumi.export("failover_bound_s", cfg.failover.failover_bound_s)  # with the margin: what rto_target_s covers
    pulumi.export(
        "regions",
        {role: region_outputs(region, database, domain.regional_fqdns[region.region]) for role, region in regions.items()},
    )
    pulumi.export(
        "tenants",
        {
            t.id: {
                "plan": t.plan,
                "data_tier": t.data_tier,
                "namespace": regions["primary"].tenancy.tenants[t.id].namespace,
                "monthly_budget_usd": t.monthly_budget_usd,
            }
            for t in cfg.tenants
        },
    )
    pulumi.export("stack_budget", cost_caps.stack_budget_name)
    pulumi.export(
        "dr",
        {
            "rpo_minutes": cfg.dr.rpo_minutes,
            "rto_minutes": cfg.dr.rto_minutes,
            "production": cfg.production,
            "backup_vaults": disaster_recovery.vault_arns,
            "backup_plan_id": disaster_recovery.backup_plan_id,
            "experiment_templates": disaster_recovery.experiment_template_ids,
            "health_check_ids": failover.health_check_ids,
        },
    )
    pulumi.export("image_repositories", registry.repository_urls)
    if domain.name_servers is not None:
        pulumi.export("zone_name_servers", domain.name_servers)  # two-phase bring-up: delegate the parent to these
    pulumi.export("tenant_api_keys", api_keys.keys)  # secret: hand each tenant its own
    if cfg.cells.names:  # only then: a stack without cells renders as before
        handles = CellHandles(
            regions={role: region.tenancy.handles for role, region in regions.items()},
            budget_alerts_topic_arn=cost_caps.alert_topic_arn,
            silo_replication_role_arn=disaster_recovery.shared_role_arns[SILOS],
            tenant_clusters={role: {k: ClusterHandles.of(pairs[k][role]) for k in sorted(pairs)} for role in bases},
        )
        pulumi.export(CELL_HANDLES, handles.exported())


def cell_stack(platform: str) -> None:
    """A cell: its tenants only, on the platform's parts read through a StackReference."""
    configure_providers(
        ProviderSettings(
            stack=platform, zone=cfg.zone, cost_center=cfg.cost.cost_center, account_id=cfg.aws_account_id, cell=stack
        )
    )
    providers = {role: regional_provider(spec.region) for role, spec in cfg.regions.both}
    pair = cfg.cells.pair_of(stack)  # the tenant cluster pair its tenants run on (0: the platform's own clusters)
    handles = CellHandles.read(platform_reference(stack, platform).require_output(CELL_HANDLES), [pair] if pair else [])
    cell = compose_cell(stack, cfg, handles, providers, pair=pair)
    pulumi.export("zone", cfg.zone)
    pulumi.export("platform", platform)
    pulumi.export(
        "tenants",
        {
            t.id: {
                "plan": t.plan,
                "data_tier": t.data_tier,
                "namespace": cell.regions["primary"].tenants[t.id].namespace,
                "monthly_budget_usd": t.monthly_budget_usd,
            }
            for t in cfg.tenants
        },
    )
    pulumi.export("tenant_files", {role: r.tenant_file.metadata.name for role, r in cell.regions.items()})
    pulumi.export("tenant_api_keys", cell.api_keys.keys)  # secret: hand each tenant its own


if cfg.platform is None:
    platform_stack()
else:
    cell_stack(cfg.platform)
