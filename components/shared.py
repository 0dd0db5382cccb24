"""What both regions' services share, composed on the regions' bases: the database that spans the
pair, the API's domain with a certificate per region, and the image registry replicated inside the zone.

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.apidomain import ApiDomain, ApiDomainArgs
from components.cluster import Cluster
from components.database import DatabaseRegion, ReplicatedDatabase, ReplicatedDatabaseArgs
from components.regionbase import RegionBase, Role
from components.registry import ImageRegistry, ImageRegistryArgs, RegionRegistry
from components.rotation import CredentialRotation, CredentialRotationArgs
from stackconfig import DatabaseSettings, FailoverSettings


def compose_database(
    stack: str,
    settings: DatabaseSettings,
    bases: Mapping[Role, RegionBase],
    *,
    backup_retention_days: int,
    tenant_clusters: Mapping[Role, Sequence[Cluster]] | None = None,
) -> ReplicatedDatabase:
    """The platform database: writer and readers in the primary region, a member in the dr region,
    each on its region's data subnets and open to its cluster's nodes. Its backup retention is AWS
    Backup's continuous-backup retention (`dr.backup_retention_days`): continuous backup takes the
    automated backups over and sets their retention, so a second value would be drift every `up` fights."""

    def side(base: RegionBase) -> DatabaseRegion:
        return DatabaseRegion(
            region=base.region,
            provider=base.provider,
            vpc_id=base.network.vpc_id,
            data_subnet_ids=base.network.data_subnet_ids,
            client_security_group_id=base.cluster.node_security_group_id,
            tenant_client_security_group_ids=[c.node_security_group_id for c in (tenant_clusters or {}).get(base.role, ())],
            cidr=str(base.spec.cidr),
        )

    return ReplicatedDatabase(
        f"{stack}-db",
        ReplicatedDatabaseArgs(
            engine=settings.engine,
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            readers=settings.readers,
            backup_retention_days=backup_retention_days,
            allocated_storage_gb=settings.allocated_storage_gb,
            primary=side(bases["primary"]),
            dr=side(bases["dr"]),
        ),
    )


def schedule_rotation(stack: str, database: ReplicatedDatabase, migrated_by: pulumi.Resource | None) -> CredentialRotation:
    """The application user's password rotation, enabled once `migrated_by` (the primary region's
    migration Job, which creates the user) has completed."""
    if migrated_by is None:
        raise ValueError("the primary region's workload has no migration Job: nothing creates the user rotation needs")
    return CredentialRotation(
        f"{stack}-db-app-rotation",
        CredentialRotationArgs(target=database.app_credential.rotation, after=[migrated_by]),
    )


def compose_domain(stack: str, settings: FailoverSettings, bases: Mapping[Role, RegionBase]) -> ApiDomain:
    """The API's hosted zone (managed through the primary region's provider) and a certificate per region."""
    return ApiDomain(
        f"{stack}-api-domain",
        ApiDomainArgs(
            zone_name=settings.api_zone,
            record=settings.api_record,
            providers={base.region: base.provider for base in (bases["primary"], bases["dr"])},
            zone_provider=bases["primary"].provider,
            existing_zone_id=settings.hosted_zone_id,  # None only with create_zone (two-phase bring-up)
        ),
    )


def compose_registry(stack: str, repository: str, bases: Mapping[Role, RegionBase], *, force_delete: bool) -> ImageRegistry:
    """The service's image repository in both regions; the primary's replicates to the dr region's."""
    return ImageRegistry(
        f"{stack}-images",
        ImageRegistryArgs(
            repository=repository,
            primary=RegionRegistry(region=bases["primary"].region, provider=bases["primary"].provider),
            dr=RegionRegistry(region=bases["dr"].region, provider=bases["dr"].provider),
            force_delete=force_delete,
        ),
    )
