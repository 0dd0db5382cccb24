"""How the pair survives a region: Route 53 failover between the regions' front doors, and disaster
recovery (backups copied across, object replication, FIS experiments) of what the regions hold.

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import pulumi

from components.apidomain import ApiDomain
from components.dr import (
    BucketPair,
    DisasterRecovery,
    DisasterRecoveryArgs,
    DrRegion,
    ReplicaRoute,
    SharedReplicationRole,
    TenantKeysByTag,
)
from components.failover import METRICS_REGION, Failover, FailoverArgs, FailoverTarget
from components.naming import NAMESPACE_PREFIX, TENANT_ROOT
from components.region import Region
from components.regionbase import Role
from components.tagging import regional_provider
from components.tenancy import RegionTenancy
from components.tenant import Tenant
from components.tenantidentity import TAG_NAMESPACE
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


SILOS = "silos"  # the shared replication role of every silo bucket


def tenant_keys(stack: str) -> TenantKeysByTag:
    """The stack's tenant keys (either region), by their namespace tag."""
    return TenantKeysByTag(stack=stack, tag_key=TAG_NAMESPACE, namespace_pattern=f"{NAMESPACE_PREFIX}*")


def silo_replication_role(
    stack: str, tenants: Sequence[TenantSpec], primary: RegionTenancy, dr: RegionTenancy, *, serves_cells: bool = False
) -> list[SharedReplicationRole]:
    """One role for every silo bucket of the zone (none without silo tenants, here or in a cell the
    platform serves): the silo buckets by their name prefix in each region, the keys by tag (a
    cell's carry the platform's stack tag). IAM roles stay constant in the tenant count."""
    if not serves_cells and not any(t.data_tier == "silo" for t in tenants):
        return []
    return [
        SharedReplicationRole(
            name=SILOS,
            source_bucket_prefix=primary.silo_bucket_prefix,
            replica_bucket_prefix=dr.silo_bucket_prefix,
            keys=tenant_keys(stack),
        )
    ]


def replicated_buckets(stack: str, tenants: Sequence[TenantSpec], primary: RegionTenancy, dr: RegionTenancy) -> list[BucketPair]:
    """What replicates to the dr region: the pool's tenant root under one rule (replicas under the dr
    pool key, the tenants' source keys reached by tag: the same documents for 1 pool tenant or 1,000),
    and each silo bucket whole under its tenant's dr key, all silo buckets through one role
    (`silo_replication_role`)."""
    pairs: list[BucketPair] = []
    if any(t.data_tier == "pool" for t in tenants):
        pairs.append(
            BucketPair(
                role="pool",
                source_bucket_arn=primary.pool.bucket_arn,
                replica_bucket_arn=dr.pool.bucket_arn,
                source_keys=tenant_keys(stack),
                routes=[ReplicaRoute(prefix=TENANT_ROOT, replica_key_arn=dr.pool.key_arn)],
                depends_on=[primary.pool, dr.pool, primary.pool.versioning, dr.pool.versioning],
            )
        )
    return pairs + silo_pairs(tenants, primary.tenants, dr.tenants)


def silo_pairs(tenants: Sequence[TenantSpec], primary: Mapping[str, Tenant], dr: Mapping[str, Tenant]) -> list[BucketPair]:
    """Each silo tenant's bucket whole to its dr counterpart under its dr key, through the shared
    silo role (`SILOS`): the platform's inline tenants and a cell's alike."""
    pairs = []
    for t in tenants:
        if t.data_tier == "silo":
            source, replica = primary[t.id], dr[t.id]
            pairs.append(
                BucketPair(
                    role=f"t-{t.id}",
                    source_bucket_arn=source.bucket_arn,
                    replica_bucket_arn=replica.bucket_arn,
                    source_keys=[source.key_arn],
                    routes=[ReplicaRoute(prefix="", replica_key_arn=replica.key_arn)],
                    shared_role=SILOS,
                    depends_on=[source, replica, *[t.versioning for t in (source, replica) if t.versioning is not None]],
                )
            )
    return pairs


def disaster_recovery_name(stack: str) -> str:
    """The platform's DisasterRecovery: its silo tenants' replication is named under it, a cell's too."""
    return f"{stack}-dr"


def compose_disaster_recovery(
    stack: str,
    settings: DrSettings,
    *,
    database_engine: Literal["aurora-postgresql", "postgres"],
    database_arn: pulumi.Input[str],
    tenants: Sequence[TenantSpec],
    regions: Mapping[Role, Region],
    failover: Failover,
    vault_lock_changeable_days: int | None,
    serves_cells: bool = False,
) -> DisasterRecovery:
    """Backups copied to the dr region's locked vault, the tenant buckets replicated there, and the
    FIS experiments in the primary region, stopped by the failover alarms."""
    primary, dr = regions["primary"], regions["dr"]
    return DisasterRecovery(
        disaster_recovery_name(stack),
        DisasterRecoveryArgs(
            stack=stack,
            primary=DrRegion(region=primary.region, provider=primary.provider),
            dr=DrRegion(region=dr.region, provider=dr.provider),
            database_engine=database_engine,
            database_arn=database_arn,
            bucket_pairs=replicated_buckets(stack, tenants, primary.tenancy, dr.tenancy),
            shared_replication_roles=silo_replication_role(
                stack, tenants, primary.tenancy, dr.tenancy, serves_cells=serves_cells
            ),
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
