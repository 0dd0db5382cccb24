"""How the pair survives a region: Route 53 failover between the regions' front doors, and disaster
recovery (backups copied across, object replication, FIS experiments) of what the regions hold.

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from components.apidomain import ApiDomain
from components.dr import BucketPair, DisasterRecovery, DisasterRecoveryArgs, DrRegion, ReplicaRoute
from components.failover import METRICS_REGION, Failover, FailoverArgs, FailoverTarget
from components.region import Region
from components.regionbase import Role
from components.tagging import regional_provider
from components.tenancy import RegionTenancy
from components.tenant import tenant_prefix
from stackconfig import DrSettings, FailoverSettings, TenantSpec


def compose_failover(stack: str, settings: FailoverSettings, domain: ApiDomain, regions: Mapping[Role, Region]) -> Failover:
    """Health checks on each region's ALB and the API name answering PRIMARY, else SECONDARY."""

    def target(region: Region) -> FailoverTarget:
        return FailoverTarget(
            region=region.region, dns_name=region.ingress.dns_name, regional_fqdn=domain.regional_fqdns[region.region]
        )

    return Failover(
        f"{stack}-failover",
        FailoverArgs(
            zone_id=domain.zone_id,
            fqdn=domain.fqdn,
            primary=target(regions["primary"]),
            secondary=target(regions["dr"]),
            health_check_interval_s=settings.health_check_interval_s,
            failure_threshold=settings.failure_threshold,
            dns_ttl_s=settings.dns_ttl_s,
            detection_bound_s=settings.detection_bound_s,
            dns_provider=regions["primary"].provider,
            metrics_provider=regional_provider(METRICS_REGION),
        ),
    )


def replicated_buckets(tenants: Sequence[TenantSpec], primary: RegionTenancy, dr: RegionTenancy) -> list[BucketPair]:
    """What replicates to the dr region: the pool bucket per pool tenant's prefix, each silo bucket
    whole; every object to its tenant's key in the dr region."""

    def route(prefix: str, tenant_id: str) -> ReplicaRoute:
        return ReplicaRoute(
            prefix=prefix, source_key_arn=primary.tenants[tenant_id].key_arn, replica_key_arn=dr.tenants[tenant_id].key_arn
        )

    pairs: list[BucketPair] = []
    pool_tenants = [t.id for t in tenants if t.data_tier == "pool"]
    if pool_tenants:
        pairs.append(
            BucketPair(
                role="pool",
                source_bucket_arn=primary.pool.bucket_arn,
                replica_bucket_arn=dr.pool.bucket_arn,
                routes=[route(tenant_prefix(tenant_id), tenant_id) for tenant_id in pool_tenants],
                depends_on=[primary.pool, dr.pool],
            )
        )
    for t in tenants:
        if t.data_tier == "silo":
            source, replica = primary.tenants[t.id], dr.tenants[t.id]
            pairs.append(
                BucketPair(
                    role=f"t-{t.id}",
                    source_bucket_arn=source.bucket_arn,
                    replica_bucket_arn=replica.bucket_arn,
                    routes=[route("", t.id)],
                    depends_on=[source, replica],
                )
            )
    return pairs


def compose_disaster_recovery(
    stack: str,
    settings: DrSettings,
    *,
    database_engine: Literal["aurora-postgresql", "postgres"],
    tenants: Sequence[TenantSpec],
    regions: Mapping[Role, Region],
    failover: Failover,
    vault_lock_changeable_days: int | None,
) -> DisasterRecovery:
    """Backups copied to the dr region's locked vault, the tenant buckets replicated there, and the
    FIS experiments in the primary region, stopped by the failover alarms."""
    primary, dr = regions["primary"], regions["dr"]
    return DisasterRecovery(
        f"{stack}-dr",
        DisasterRecoveryArgs(
            stack=stack,
            primary=DrRegion(region=primary.region, provider=primary.provider),
            dr=DrRegion(region=dr.region, provider=dr.provider),
            database_engine=database_engine,
            bucket_pairs=replicated_buckets(tenants, primary.tenancy, dr.tenancy),
            backup_retention_days=settings.backup_retention_days,
            backup_schedule=settings.backup_schedule,
            vault_lock_changeable_days=vault_lock_changeable_days,
            replicate_delete_markers=settings.replicate_delete_markers,
            replication_time_control=settings.replication_time_control,
            cluster_name=primary.cluster.cluster_name,
            stop_alarm_arns=failover.alarm_arns,
            fis_duration_minutes=settings.fis_duration_minutes,
        ),
    )
