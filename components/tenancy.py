"""A region's tenancy, composed: the shared pool, the tenant identity, and each tenant's slice.

The slices stand on the region's handles (components.handles): a platform's own pool, identity and
cluster, or a cell's reading of its platform's; `compose_tenant_slices` and `service_tenants` serve both.

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.cluster import Cluster
from components.database import ReplicatedDatabase
from components.handles import RegionHandles
from components.naming import silo_bucket_prefix
from components.regionbase import RegionBase
from components.tenant import Tenant, TenantArgs
from components.tenantidentity import TenantIdentity, TenantIdentityArgs
from components.tenantpool import TenantPool, TenantPoolArgs
from components.workload import NAMESPACE as WORKLOAD_NAMESPACE
from components.workload import SERVICE_ACCOUNT, TenantDataAccess, WorkloadTenant
from stackconfig import StackConfig, TenantSpec


@dataclass(frozen=True, kw_only=True)
class RegionTenancy:
    pool: TenantPool
    """Pool-tier tenants' shared bucket and key."""
    identity: TenantIdentity
    """The tenant role (sessions tagged with one tenant) and the service's broker role."""
    tenants: Mapping[str, Tenant]
    """Tenant id -> the tenant's slice of this region, in the config's order."""
    silo_bucket_prefix: pulumi.Output[str]
    """Every silo bucket of the region is named `<prefix><namespace>` (components.naming)."""
    handles: RegionHandles
    """What the region's tenant slices stand on: the platform's tenants, and its cells' (exported)."""


def compose_tenancy(
    stack: str,
    cfg: StackConfig,
    base: RegionBase,
    *,
    database: ReplicatedDatabase,
    account_id: pulumi.Output[str],
    tenant_clusters: Sequence[Cluster] = (),
) -> RegionTenancy:
    """Every tenant of the config in one region, on the region's cluster and data subnets; the tenant
    role also admits the pods of the region's tenant cluster pairs' `tenant_clusters` (its cells' tenants)."""
    region, cluster = base.region, base.cluster
    in_region = pulumi.ResourceOptions(providers={"aws": base.provider, "kubernetes": cluster.k8s_provider})
    pool = TenantPool(
        f"{stack}-{region}-tenant-pool", TenantPoolArgs(region=region, force_destroy=cfg.force_delete), opts=in_region
    )
    silo_prefix = account_id.apply(lambda acct: silo_bucket_prefix(acct, stack, region))
    identity = TenantIdentity(
        f"{stack}-{region}-tenant-identity",
        TenantIdentityArgs(
            region=region,
            cluster_arn=cluster.cluster_arn,
            pool_bucket_arn=pool.bucket_arn,
            pool_key_arn=pool.key_arn,
            silo_bucket_prefix=silo_prefix,
            cluster_name=cluster.cluster_name,
            service_namespace=WORKLOAD_NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            db_secret_arn=database.app_credential.secret_arns[base.role],
            db_secret_key_arn=database.app_credential.kms_key_arns[base.role],
            tenant_cluster_arns=[c.cluster_arn for c in tenant_clusters],
        ),
        opts=pulumi.ResourceOptions(providers={"aws": base.provider}),
    )
    handles = region_handles(pool, identity, silo_prefix, cluster)
    tenants = compose_tenant_slices(
        stack,
        cfg,
        cfg.tenants,
        region=region,
        handles=handles,
        database_cidrs=base.network.data_subnet_cidrs,
        vpc_cidr=str(base.spec.cidr),
        opts=in_region,
    )
    return RegionTenancy(pool=pool, identity=identity, tenants=tenants, silo_bucket_prefix=silo_prefix, handles=handles)


def region_handles(
    pool: TenantPool, identity: TenantIdentity, silo_prefix: pulumi.Output[str], cluster: Cluster
) -> RegionHandles:
    """The platform's live parts of a region as the handles its tenants (and its cells') stand on."""
    return RegionHandles(
        pool_bucket_name=pool.bucket_name,
        pool_bucket_arn=pool.bucket_arn,
        pool_key_arn=pool.key_arn,
        identity_role_arn=identity.role_arn,
        silo_bucket_prefix=silo_prefix,
        cluster_name=cluster.cluster_name,
        cluster_endpoint=cluster.endpoint,
        cluster_ca_data=cluster.certificate_authority_data,
    )


def compose_tenant_slices(
    stack: str,
    cfg: StackConfig,
    tenants: Sequence[TenantSpec],
    *,
    region: str,
    handles: RegionHandles,
    database_cidrs: Sequence[str],
    vpc_cidr: str,
    opts: pulumi.ResourceOptions,
) -> dict[str, Tenant]:
    """Each tenant's slice of one region, on the region's handles (the platform's live parts, or a
    cell's reading of them): the one composition platform and cells share. `opts` carries the
    region's AWS and kubernetes providers."""
    return {
        t.id: Tenant(
            f"{stack}-{region}-t-{t.id}",
            TenantArgs(
                tenant_id=t.id,
                plan=t.plan,
                region=region,
                **cfg.quota_of(t).model_dump(),
                data_tier=t.data_tier,
                pool_bucket_arn=handles.pool_bucket_arn,
                pool_bucket_name=handles.pool_bucket_name,
                force_destroy=cfg.force_delete,
                cluster_name=handles.cluster_name,
                identity_role_arn=handles.identity_role_arn,
                silo_bucket_prefix=handles.silo_bucket_prefix,
                database_cidrs=database_cidrs,
                vpc_cidr=vpc_cidr,
                platform_namespace=WORKLOAD_NAMESPACE,
            ),
            opts=opts,
        )
        for t in tenants
    }


def service_tenants(
    cfg: StackConfig,
    tenants: Sequence[TenantSpec],
    slices: Mapping[str, Tenant],
    handles: RegionHandles,
    digests: Mapping[str, pulumi.Input[str]],
) -> list[WorkloadTenant]:
    """The service's view of each tenant in one region: quotas (the stack config: their one source),
    key digest, and where its data lives with the role that reaches it."""
    return [
        WorkloadTenant(
            id=t.id,
            plan=t.plan,
            key_digest=digests[t.id],
            data=TenantDataAccess(
                bucket=slices[t.id].bucket_name,
                prefix=slices[t.id].prefix,
                namespace=slices[t.id].namespace,
                kms_key_arn=slices[t.id].key_arn,
                role_arn=handles.identity_role_arn,
                # pool replicas from the other region are under this region's pool key; silo replicas under the tenant's
                replica_key_arn=handles.pool_key_arn if t.data_tier == "pool" else None,
            ),
            **cfg.quota_of(t).model_dump(),
        )
        for t in tenants
    ]
