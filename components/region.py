"""One region of the pair, composed: plain functions over the components, no component of their own.

A region comes together in two phases, because the database spans both regions and stands between
them: `compose_base` lays the network and the cluster (what the database needs of each region);
`compose_region` then adds what runs on them, which needs the pair's shared parts (database,
domain, registry, API keys): the tenant pool, the tenant identity, each tenant's slice, the ALB
with its controller, and the workload. Each returns a frozen record of the region's parts, which
the program keys by role (`primary`, `dr`).

No parent is added here: every component keeps the name, parent and options it had when the
program created it inline, so the rendered plan does not move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.apikeys import TenantApiKeys
from components.cluster import Cluster, ClusterArgs
from components.config import ClusterSettings, NetworkSettings, RegionSpec, StackConfig
from components.database import ReplicatedDatabase
from components.ingress import RegionIngress, RegionIngressArgs
from components.lbcontroller import LoadBalancerController, LoadBalancerControllerArgs
from components.naming import elb_prefix, silo_bucket_prefix
from components.network import RegionNetwork, RegionNetworkArgs
from components.registry import ImageRegistry
from components.tenant import Tenant, TenantArgs
from components.tenantidentity import TenantIdentity, TenantIdentityArgs
from components.tenantpool import TenantPool, TenantPoolArgs
from components.workload import NAMESPACE as WORKLOAD_NAMESPACE
from components.workload import SERVICE_ACCOUNT, DatabaseAccess, TenantDataAccess, Workload, WorkloadArgs, WorkloadTenant

Role = Literal["primary", "dr"]
"""A region's part in the pair: `primary` serves and takes writes; `dr` takes over on failover."""
ROLES: tuple[Role, ...] = ("primary", "dr")


@dataclass(frozen=True, kw_only=True)
class RegionBase:
    """A region's network and cluster, and the provider they were made with."""

    role: Role
    spec: RegionSpec
    provider: aws.Provider
    network: RegionNetwork
    cluster: Cluster

    @property
    def region(self) -> str:
        return self.spec.region


@dataclass(frozen=True, kw_only=True)
class Region(RegionBase):
    """A whole region: its base and everything the program runs on it."""

    pool: TenantPool
    identity: TenantIdentity
    tenants: Mapping[str, Tenant]
    """Tenant id -> the tenant's slice of this region, in the config's order."""
    ingress: RegionIngress
    controller: LoadBalancerController
    workload: Workload


def compose_base(
    stack: str,
    role: Role,
    spec: RegionSpec,
    *,
    provider: aws.Provider,
    network: NetworkSettings,
    cluster: ClusterSettings,
    node_tags: Mapping[str, str],
) -> RegionBase:
    """The region's VPC and its EKS cluster on the private subnets."""
    regional = pulumi.ResourceOptions(providers={"aws": provider})
    net = RegionNetwork(
        f"{stack}-{spec.region}-net",
        RegionNetworkArgs(
            region=spec.region,
            cidr=str(spec.cidr),
            az_count=network.az_count,
            nat_gateways=network.nat_gateways,
            flow_log_retention_days=network.flow_log_retention_days,
        ),
        opts=regional,
    )
    eks = Cluster(
        f"{stack}-{spec.region}-eks",
        ClusterArgs(
            region=spec.region,
            private_subnet_ids=net.private_subnet_ids,
            version=cluster.version,
            node_instance_types=cluster.node_instance_types,
            node_ami_type=cluster.node_ami_type,
            node_min=cluster.node_min,
            node_desired=cluster.node_desired,
            node_max=cluster.node_max,
            vpc_id=net.vpc_id,
            api_access=cluster.api_access,
            public_access_cidrs=[str(c) for c in cluster.public_access_cidrs],
            runner_cidrs=[str(c) for c in cluster.runner_cidrs],
            deploy_role_arn=cluster.deploy_role_arn,
            operator_role_arns=cluster.operator_role_arns,
            node_tags=node_tags,
        ),
        opts=regional,
    )
    return RegionBase(role=role, spec=spec, provider=provider, network=net, cluster=eks)


def compose_region(
    stack: str,
    cfg: StackConfig,
    base: RegionBase,
    *,
    database: ReplicatedDatabase,
    certificate_arn: pulumi.Input[str],
    registry: ImageRegistry,
    api_keys: TenantApiKeys,
    account_id: pulumi.Output[str],
) -> Region:
    """Everything on the region's base: tenancy (pool, identity, one slice per tenant), the front
    door (the ALB splitting traffic between the stable and canary tracks, and the controller that
    registers each track's pods in its target group) and the workload behind it."""
    role, region, cluster, network = base.role, base.region, base.cluster, base.network
    aws_only = pulumi.ResourceOptions(providers={"aws": base.provider})
    in_region = pulumi.ResourceOptions(providers={"aws": base.provider, "kubernetes": cluster.k8s_provider})

    pool = TenantPool(f"{stack}-{region}-tenant-pool", TenantPoolArgs(region=region), opts=in_region)
    silo_prefix = account_id.apply(lambda acct: silo_bucket_prefix(acct, stack, region))
    identity = TenantIdentity(
        f"{stack}-{region}-tenant-identity",
        TenantIdentityArgs(
            region=region,
            cluster_arn=cluster.cluster_arn,
            pool_bucket_arn=pool.bucket_arn,
            silo_bucket_prefix=silo_prefix,
            cluster_name=cluster.cluster_name,
            service_namespace=WORKLOAD_NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            db_secret_arn=database.app_credential.secret_arns[role],
            db_secret_key_arn=database.app_credential.kms_key_arns[role],
        ),
        opts=aws_only,
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
                cluster_name=cluster.cluster_name,
                identity_role_arn=identity.role_arn,
                silo_bucket_prefix=silo_prefix,
                database_cidrs=network.data_subnet_cidrs,
                platform_namespace=WORKLOAD_NAMESPACE,
            ),
            opts=in_region,
        )
        for t in cfg.tenants
    }

    ingress = RegionIngress(
        elb_prefix(stack, region),  # short: ELB names are 32 characters (`us-use1-lb`)
        RegionIngressArgs(
            region=region,
            vpc_id=network.vpc_id,
            vpc_cidr=str(base.spec.cidr),
            public_subnet_ids=network.public_subnet_ids,
            pod_security_group_id=cluster.node_security_group_id,
            certificate_arn=certificate_arn,
            container_port=cfg.workload.container_port,
            deletion_protection=cfg.production,
        ),
        opts=aws_only,
    )
    controller = LoadBalancerController(
        f"{stack}-{region}-lb-controller",
        LoadBalancerControllerArgs(
            region=region, cluster_name=cluster.cluster_name, cluster_arn=cluster.cluster_arn, vpc_id=network.vpc_id
        ),
        opts=in_region,
    )

    endpoints = database.endpoints[role]
    image_of = registry.repository_urls[region]
    canary_tag = cfg.workload.canary_image_tag or cfg.workload.image_tag
    workload = Workload(
        f"{stack}-{region}-api",
        WorkloadArgs(
            region=region,
            role=role,
            image=pulumi.Output.concat(image_of, ":", cfg.workload.image_tag),
            replicas=cfg.workload.replicas,
            container_port=cfg.workload.container_port,
            canary_image=pulumi.Output.concat(image_of, ":", canary_tag),
            canary_replicas=cfg.rollout.canary_replicas,
            version=cfg.workload.image_tag,
            canary_version=canary_tag,
            target_group_arns=ingress.target_group_arns,
            binding_depends_on=[controller.release],
            database=DatabaseAccess(
                writer_host=endpoints.writer,
                reader_host=endpoints.reader,
                port=database.port,
                name=database.database_name,
                user=database.app_username,
                secret_arn=database.app_credential.secret_arns[role],
                admin_user=database.master_username,
                admin_password=database.master_password,
                writer_forwards=endpoints.forwards_writes,
            ),
            tenants=service_tenants(cfg, tenants, identity, api_keys),
            cost_labels={"meridian.io/stack": stack, "meridian.io/cost-center": cfg.cost.cost_center},
            cluster_arn=cluster.cluster_arn,
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": cluster.k8s_provider}),
    )
    return Region(
        role=role,
        spec=base.spec,
        provider=base.provider,
        network=network,
        cluster=cluster,
        pool=pool,
        identity=identity,
        tenants=tenants,
        ingress=ingress,
        controller=controller,
        workload=workload,
    )


def service_tenants(
    cfg: StackConfig, tenants: Mapping[str, Tenant], identity: TenantIdentity, api_keys: TenantApiKeys
) -> list[WorkloadTenant]:
    """The service's view of each tenant in one region: quotas (the stack config: their one source),
    key digest, and where its data lives with the role that reaches it."""
    return [
        WorkloadTenant(
            id=t.id,
            plan=t.plan,
            key_digest=api_keys.digests[t.id],
            data=TenantDataAccess(
                bucket=tenants[t.id].bucket_name,
                prefix=tenants[t.id].prefix,
                namespace=tenants[t.id].namespace,
                kms_key_arn=tenants[t.id].key_arn,
                role_arn=identity.role_arn,
            ),
            **cfg.quota_of(t).model_dump(),
        )
        for t in cfg.tenants
    ]


def region_outputs(region: Region, database: ReplicatedDatabase, regional_fqdn: str) -> dict:
    """What the stack exports of one region: where its parts are and what `meridian` reaches them by."""
    return {
        "region": region.region,
        "vpc_id": region.network.vpc_id,
        "cluster_name": region.cluster.cluster_name,
        "cluster_endpoint": region.cluster.endpoint,
        "db_writer_endpoint": database.endpoints[region.role].writer,
        "db_reader_endpoint": database.endpoints[region.role].reader,
        "api_hostname": region.ingress.dns_name,
        # the region's own name, on its certificate: load and probes for one region (a rollout's)
        "api_url": f"https://{regional_fqdn}",
        # what `meridian rollout` moves on AWS (meridian.targets.aws.set_canary_weight)
        "listener_arn": region.ingress.listener_arn,
        "target_group_arns": region.ingress.target_group_arns,
    }
