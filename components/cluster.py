"""Cluster: one region's EKS cluster on the private subnets, IRSA, and a kubernetes Provider for it.

Secrets are envelope-encrypted with the cluster's own KMS key, all control-plane log types go
to a KMS-encrypted log group, the API endpoint is private unless operator CIDRs are listed, and
the IAM OIDC provider lets tenant service accounts assume their own roles (IRSA).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.keys import customer_key
from components.policydocs import assume_role_policy, managed_policy_arn

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    region: str
    """AWS region; must match the provider passed in `opts.providers`."""
    private_subnet_ids: Sequence[pulumi.Input[str]]
    """Subnets for the control-plane ENIs and the nodes (never public ones)."""
    version: str
    """Kubernetes version, e.g. `1.33`."""
    node_instance_types: Sequence[str]
    node_ami_type: str
    node_min: int
    node_desired: int
    node_max: int
    public_access_cidrs: Sequence[str] = ()
    """CIDRs that may reach the public API endpoint; empty keeps the endpoint private only."""
    log_retention_days: int = 365

    def __post_init__(self) -> None:
        if not self.node_min <= self.node_desired <= self.node_max:
            raise ValueError(f"node sizes must satisfy min <= desired <= max, got {self.node_min}/{self.node_desired}/{self.node_max}")
        if "0.0.0.0/0" in self.public_access_cidrs:
            raise ValueError("public_access_cidrs must not contain 0.0.0.0/0: list operator CIDRs or leave empty")


def kubeconfig(cluster_name: str, region: str, endpoint: str, ca_data: str) -> dict:
    """A kubeconfig that authenticates through `aws eks get-token` (no static credentials)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [{
            "name": cluster_name,
            "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "aws",
                "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
            }},
        }],
    }


class Cluster(pulumi.ComponentResource):
    eks: aws.eks.Cluster
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    k8s_provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # A stable cluster name: the control-plane log group name must be known before the cluster.
        cluster_name = name

        key = customer_key(f"{name}-key", f"{name} secrets envelope encryption and control-plane logs", parent=self,
                           service_principals=[f"logs.{args.region}.amazonaws.com"])
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=key.arn,
            opts=child,
        )

        cluster_role = aws.iam.Role(f"{name}-cluster-role", assume_role_policy=assume_role_policy("eks.amazonaws.com"), opts=child)
        cluster_policies = [
            aws.iam.RolePolicyAttachment(f"{name}-cluster-{policy}", role=cluster_role.name, policy_arn=managed_policy_arn(policy),
                                         opts=pulumi.ResourceOptions(parent=cluster_role))
            for policy in ("AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController")
        ]

        self.eks = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            role_arn=cluster_role.arn,
            version=args.version,
            vpc_config={
                "subnet_ids": list(args.private_subnet_ids),
                "endpoint_private_access": True,
                "endpoint_public_access": bool(args.public_access_cidrs),
                "public_access_cidrs": list(args.public_access_cidrs) or None,
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, *cluster_policies]),
        )

        node_role = aws.iam.Role(f"{name}-node-role", assume_role_policy=assume_role_policy("ec2.amazonaws.com"), opts=child)
        node_policies = [
            aws.iam.RolePolicyAttachment(f"{name}-node-{policy}", role=node_role.name, policy_arn=managed_policy_arn(policy),
                                         opts=pulumi.ResourceOptions(parent=node_role))
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
        ]
        node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.eks.name,
            node_role_arn=node_role.arn,
            subnet_ids=list(args.private_subnet_ids),
            instance_types=list(args.node_instance_types),
            ami_type=args.node_ami_type,
            capacity_type="ON_DEMAND",
            scaling_config={"min_size": args.node_min, "desired_size": args.node_desired, "max_size": args.node_max},
            update_config={"max_unavailable": 1},
            labels={"meridian.io/pool": "general"},
            # The cluster autoscaler owns the desired size once running; Pulumi must not reset it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies, ignore_changes=["scalingConfig.desiredSize"]),
        )

        # Tenant workloads get AWS credentials through EKS Pod Identity (components.tenantidentity).
        aws.eks.Addon(f"{name}-pod-identity-agent", cluster_name=self.eks.name, addon_name="eks-pod-identity-agent",
                      opts=pulumi.ResourceOptions(parent=self.eks, depends_on=[node_group]))

        self.oidc_issuer = self.eks.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.oidc_issuer,
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )

        self.cluster_name = self.eks.name
        self.cluster_arn = self.eks.arn
        self.endpoint = self.eks.endpoint
        # Managed node groups use the EKS-created cluster security group.
        self.node_security_group_id = self.eks.vpc_config.cluster_security_group_id
        self.oidc_provider_arn = oidc.arn
        kubeconfig_json = pulumi.Output.json_dumps(pulumi.Output.all(self.eks.name, self.eks.endpoint, self.eks.certificate_authority.data).apply(
            lambda v: kubeconfig(v[0], args.region, v[1], v[2])
        ))
        self.k8s_provider = k8s.Provider(f"{name}-k8s", kubeconfig=kubeconfig_json, enable_server_side_apply=True, opts=child)
        self.register_outputs({
            "cluster_name": self.cluster_name,
            "cluster_arn": self.cluster_arn,
            "endpoint": self.endpoint,
            "node_security_group_id": self.node_security_group_id,
            "oidc_provider_arn": self.oidc_provider_arn,
            "oidc_issuer": self.oidc_issuer,
        })
