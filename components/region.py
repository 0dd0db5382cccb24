"""A whole region, composed on its base: its tenancy, its front door (the ALB splitting traffic
between the stable and canary tracks, and the controller that registers each track's pods in its
target group) and the workload behind it.

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.admission import TenantAdmission, TenantAdmissionArgs
from components.apikeys import TenantApiKeys
from components.cluster import Cluster
from components.database import ReplicatedDatabase
from components.ingress import RegionIngress, RegionIngressArgs
from components.lbcontroller import LoadBalancerController, LoadBalancerControllerArgs
from components.naming import NAMESPACE_PREFIX, elb_prefix
from components.regionbase import RegionBase
from components.registry import ImageRegistry
from components.tenancy import RegionTenancy, compose_tenancy, service_tenants
from components.tenant import TENANT_LABEL
from components.workload import DatabaseAccess, Workload, WorkloadArgs
from stackconfig import StackConfig

# The cluster's admission backstops; the policy pack's config holds what they render
# (runtime-backstops-enforced.renderedSpecs, generated from these args).
TENANT_ADMISSION = TenantAdmissionArgs(tenant_label=TENANT_LABEL, namespace_prefix=NAMESPACE_PREFIX)


@dataclass(frozen=True, kw_only=True)
class Region(RegionBase):
    """A region's base and everything the program runs on it."""

    tenancy: RegionTenancy
    ingress: RegionIngress
    controller: LoadBalancerController
    workload: Workload


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
    tenant_clusters: Sequence[Cluster] = (),
) -> Region:
    """The region's tenancy, front door and workload; the database, certificate, registry and keys
    are the pair's (components.shared). `tenant_clusters`: the region's tenant cluster pairs' clusters
    (components.tenantclusters), whose pods the tenant role admits."""
    role, region, cluster, network = base.role, base.region, base.cluster, base.network
    tenancy = compose_tenancy(stack, cfg, base, database=database, account_id=account_id, tenant_clusters=tenant_clusters)
    # the cluster holds tenant namespaces to the pack's Kubernetes rules at runtime, whoever applies what
    TenantAdmission(
        f"{stack}-{region}-admission",
        TENANT_ADMISSION,
        opts=pulumi.ResourceOptions(providers={"kubernetes": cluster.k8s_provider}),
    )
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
            access_log_retention_days=cfg.network.flow_log_retention_days,
            deletion_protection=cfg.production,
            force_destroy_logs=cfg.force_delete,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": base.provider}),
    )
    controller = LoadBalancerController(
        f"{stack}-{region}-lb-controller",
        LoadBalancerControllerArgs(
            region=region, cluster_name=cluster.cluster_name, cluster_arn=cluster.cluster_arn, vpc_id=network.vpc_id
        ),
        opts=pulumi.ResourceOptions(providers={"aws": base.provider, "kubernetes": cluster.k8s_provider}),
    )

    endpoints = database.endpoints[role]
    repository_url = registry.repository_urls[region]
    canary_tag = cfg.workload.canary_image_tag or cfg.workload.image_tag
    workload = Workload(
        f"{stack}-{region}-api",
        WorkloadArgs(
            region=region,
            role=role,
            image=pulumi.Output.concat(repository_url, ":", cfg.workload.image_tag),
            replicas=cfg.workload.replicas,
            container_port=cfg.workload.container_port,
            canary_image=pulumi.Output.concat(repository_url, ":", canary_tag),
            canary_replicas=cfg.rollout.canary_replicas,
            version=cfg.workload.image_tag,
            canary_version=canary_tag,
            target_group_arns=ingress.target_group_arns,
            binding_depends_on=[controller.release],
            database=DatabaseAccess(
                writer_host=endpoints.write_hosts,
                reader_host=endpoints.reader,
                port=database.port,
                name=database.database_name,
                user=database.app_username,
                secret_arn=database.app_credential.secret_arns[role],
                admin_user=database.master_username,
                admin_password=database.master_password,
                write_path=endpoints.write_path,
            ),
            tenants=service_tenants(cfg, cfg.tenants, tenancy.tenants, tenancy.handles, api_keys.digests),
            cost_labels={"meridian.io/stack": stack, "meridian.io/cost-center": cfg.cost.cost_center},
            vpc_cidr=str(base.spec.cidr),
            database_cidrs=network.data_subnet_cidrs,
            identity=[tenancy.identity.broker_association],
            cells=cfg.cells.names,  # the cells' tenant files, mounted and followed (empty: none, as before)
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": cluster.k8s_provider}),
    )
    return Region(
        role=role,
        spec=base.spec,
        provider=base.provider,
        network=network,
        cluster=cluster,
        tenancy=tenancy,
        ingress=ingress,
        controller=controller,
        workload=workload,
    )


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
