"""A region's tenancy, composed: the shared pool, the tenant identity, and each tenant's slice.

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.apikeys import TenantApiKeys
from components.database import ReplicatedDatabase
from components.naming import silo_bucket_prefix
from components.regionbase import RegionBase
from components.tenant import Tenant, TenantArgs
from components.tenantidentity import TenantIdentity, TenantIdentityArgs
from components.tenantpool import TenantPool, TenantPoolArgs
from components.workload import NAMESPACE as WORKLOAD_NAMESPACE
from components.workload import SERVICE_ACCOUNT, TenantDataAccess, WorkloadTenant
from stackconfig import StackConfig


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


def compose_tenancy(
    stack: str, cfg: StackConfig, base: RegionBase, *, database: ReplicatedDatabase, account_id: pulumi.Output[str]
) -> RegionTenancy:
    """Every tenant of the config in one region, on the region's cluster and data subnets."""
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
        ),
        opts=pulumi.ResourceOptions(providers={"aws": base.provider}),
    )
    tenants = {
        t.id: Tenant(
            f"{stack}-{region}-t-{t.id}",
            TenantArgs(
                tenant_id=t.id,
                plan=t.plan,
                region=region,
                **cfg.quota_of(t).model_dump(),
                data_tier=t.data_tier,
                pool_bucket_arn=pool.bucket_arn,
                pool_bucket_name=pool.bucket_name,
                force_destroy=cfg.force_delete,
                cluster_name=cluster.cluster_name,
                identity_role_arn=identity.role_arn,
                silo_bucket_prefix=silo_prefix,
                database_cidrs=base.network.data_subnet_cidrs,
                vpc_cidr=str(base.spec.cidr),
                platform_namespace=WORKLOAD_NAMESPACE,
            ),
            opts=in_region,
        )
        for t in cfg.tenants
    }
    return RegionTenancy(pool=pool, identity=identity, tenants=tenants, silo_bucket_prefix=silo_prefix)


def service_tenants(cfg: StackConfig, tenancy: RegionTenancy, api_keys: TenantApiKeys) -> list[WorkloadTenant]:
    """The service's view of each tenant in one region: quotas (the stack config: their one source),
    key digest, and where its data lives with the role that reaches it."""
    return [
        WorkloadTenant(
            id=t.id,
            plan=t.plan,
            key_digest=api_keys.digests[t.id],
            data=TenantDataAccess(
                bucket=tenancy.tenants[t.id].bucket_name,
                prefix=tenancy.tenants[t.id].prefix,
                namespace=tenancy.tenants[t.id].namespace,
                kms_key_arn=tenancy.tenants[t.id].key_arn,
                role_arn=tenancy.identity.role_arn,
                # pool replicas from the other region are under this region's pool key; silo replicas under the tenant's
                replica_key_arn=tenancy.pool.key_arn if t.data_tier == "pool" else None,
            ),
            **cfg.quota_of(t).model_dump(),
        )
        for t in cfg.tenants
    ]
