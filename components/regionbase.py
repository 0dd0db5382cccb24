"""A region's base, composed: its network and its cluster, what the database of the pair stands on.

The program composes a region in two phases, because the database spans both regions and stands
between them: this base first, then what runs on it (components.region). Each phase returns a
frozen record of the region's parts, which the program keys by role.

Composition functions are plain functions over the components, with no component of their own:
every component keeps the name, parent and options it had when the program created it inline, so
the rendered plan (URNs included) does not move.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.cluster import Cluster, ClusterArgs
from components.naming import cluster_name
from components.network import RegionNetwork, RegionNetworkArgs
from stackconfig import ClusterSettings, NetworkSettings, RegionSpec, TenantNodeSettings

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
    eks = Cluster(cluster_name(stack, spec.region), cluster_args(spec, net, cluster, node_tags), opts=regional)
    return RegionBase(role=role, spec=spec, provider=provider, network=net, cluster=eks)


def cluster_args(
    spec: RegionSpec,
    network: RegionNetwork,
    cluster: ClusterSettings,
    node_tags: Mapping[str, str],
    nodes: TenantNodeSettings | None = None,
    *,
    iam_oidc_provider: bool = True,
) -> ClusterArgs:
    """A cluster of the region on its private subnets, as the stack's cluster settings say: the
    region's own and each tenant cluster pair's (components.tenantclusters) alike, but for the node
    group, which `nodes` sizes where given (a pair's: `cluster.tenant_nodes`), and for
    `iam_oidc_provider` (components.cluster: the pairs' clusters take none)."""
    return ClusterArgs(
        region=spec.region,
        private_subnet_ids=network.private_subnet_ids,
        version=cluster.version,
        node_instance_types=cluster.node_instance_types if nodes is None else nodes.instance_types,
        node_ami_type=cluster.node_ami_type if nodes is None else nodes.ami_type,
        node_min=cluster.node_min if nodes is None else nodes.min,
        node_desired=cluster.node_desired if nodes is None else nodes.desired,
        node_max=cluster.node_max if nodes is None else nodes.max,
        vpc_id=network.vpc_id,
        api_access=cluster.api_access,
        public_access_cidrs=[str(c) for c in cluster.public_access_cidrs],
        runner_cidrs=[str(c) for c in cluster.runner_cidrs],
        deploy_role_arn=cluster.deploy_role_arn,
        operator_role_arns=cluster.operator_role_arns,
        viewer_role_arns=cluster.viewer_role_arns,
        pr_viewer_role_arns=cluster.pr_viewer_role_arns,
        node_tags=node_tags,
        iam_oidc_provider=iam_oidc_provider,
    )
