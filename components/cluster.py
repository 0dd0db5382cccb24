"""Cluster: one region's EKS cluster on the private subnets, IRSA, and a kubernetes Provider for it.

Secrets are envelope-encrypted with the cluster's own KMS key, all control-plane log types go
to a KMS-encrypted log group. The region's own cluster has an IAM OIDC provider for IRSA
(`iam_oidc_provider`); nothing of the program uses IRSA (its pods get credentials through EKS Pod
Identity), so a tenant cluster pair's clusters have none: the account holds at most 100.

How `pulumi up` reaches the API (the kubernetes provider calls it from the runner) is explicit:
`public-restricted` opens the public endpoint to the runner's egress CIDRs only; `private-runner`
keeps the endpoint private and admits the runner's network on 443 (the runner must be routed into
the VPC: docs/operations.md). Nobody is admin by having created the cluster: the deploy role and
the operator roles get cluster admin through EKS access entries, and the kubernetes provider is
used only once the deploy role's entry exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.keys import customer_key
from components.naming import stable_hash
from components.policydocs import assume_role_policy, managed_policy_arn

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
# View every object, Secrets included: a refresh reads back the Secrets the program manages
# (AmazonEKSViewPolicy leaves Secrets out). https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html
CLUSTER_VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy"
# View without Secrets, for roles that run pull-request code (whose author chooses what runs with them).
NO_SECRETS_VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


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
    vpc_id: pulumi.Input[str]
    deploy_role_arn: str
    """The role the runner assumes for `pulumi up`: cluster admin by access entry."""
    api_access: Literal["public-restricted", "private-runner"] = "public-restricted"
    public_access_cidrs: Sequence[str] = ()
    """public-restricted: CIDRs that may reach the public API endpoint (the runner's egress)."""
    runner_cidrs: Sequence[str] = ()
    """private-runner: the runner's network, admitted on 443 to the private endpoint."""
    operator_role_arns: Sequence[str] = ()
    viewer_role_arns: Sequence[str] = ()
    """Roles that run trusted `pulumi preview`/refresh in CI: read access to every object, by access entry."""
    pr_viewer_role_arns: Sequence[str] = ()
    """Roles that run pull-request code: read access without Secrets."""
    log_retention_days: int = 365
    iam_oidc_provider: bool = True
    """An IAM OIDC provider for the cluster's issuer (IRSA). IAM allows 100 per account
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), which three zones'
    clusters share: only clusters that may run IRSA workloads should take one."""
    node_tags: Mapping[str, str] = field(default_factory=dict)
    """Tags every node instance, its volumes and network interfaces carry (cost allocation): the
    provider's default tags reach the node group, not what its Auto Scaling group launches."""

    def __post_init__(self) -> None:
        if self.api_access == "public-restricted" and not self.public_access_cidrs:
            raise ValueError(
                "public-restricted API access needs public_access_cidrs (the runner's egress), or pulumi up cannot reach the cluster"
            )
        if self.api_access == "private-runner" and (not self.runner_cidrs or self.public_access_cidrs):
            raise ValueError("private-runner API access needs runner_cidrs and no public_access_cidrs")
        if not self.node_min <= self.node_desired <= self.node_max:
            raise ValueError(
                f"node sizes must satisfy min <= desired <= max, got {self.node_min}/{self.node_desired}/{self.node_max}"
            )
        if "0.0.0.0/0" in self.public_access_cidrs:
            raise ValueError("public_access_cidrs must not contain 0.0.0.0/0: list operator CIDRs or leave empty")


def pod_identity_trust() -> str:
    """Trust policy of a role handed to pods by EKS Pod Identity (it tags the session)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }
    )


def kubeconfig(cluster_name: str, region: str, endpoint: str, ca_data: str) -> dict:
    """A kubeconfig that authenticates through `aws eks get-token` (no static credentials)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
                    }
                },
            }
        ],
    }


@dataclass(frozen=True, kw_only=True)
class ClusterAccess:
    """How `pulumi up` reaches a cluster's Kubernetes API: the cluster's own (components.Cluster)
    or, in a cell stack, its platform's exported cluster name, endpoint and CA."""

    region: str
    cluster_name: pulumi.Input[str]
    endpoint: pulumi.Input[str]
    ca_data: pulumi.Input[str]


def cluster_provider(
    name: str, access: ClusterAccess, opts: pulumi.ResourceOptions | None = None, *, secrets_mutable: bool = False
) -> k8s.Provider:
    """The one kubernetes Provider of a cluster, authenticating through `aws eks get-token`.
    `secrets_mutable`: a change to a Secret's data is an update in place (pulumi-kubernetes'
    `enableSecretMutable`, 4.18+), not a replacement: what a Secret others mount by a fixed name needs,
    since replacing it deletes it first and the pods' volume lacks it until the kubelet's next resync."""
    kubeconfig_json = pulumi.Output.json_dumps(
        pulumi.Output.all(access.cluster_name, access.endpoint, access.ca_data).apply(
            lambda v: kubeconfig(v[0], access.region, v[1], v[2])
        )
    )
    mutable = {"enable_secret_mutable": True} if secrets_mutable else {}  # absent otherwise: the platform's as before
    return k8s.Provider(name, kubeconfig=kubeconfig_json, enable_server_side_apply=True, **mutable, opts=opts)


def access_key(kind: str, principal_arn: str) -> str:
    """An access entry's name part for a principal: `<kind>-<8 hex of its ARN>`, the same wherever the
    principal is listed."""
    return f"{kind}-{stable_hash(principal_arn, n=8)}"


def _named(old_name: str | None) -> list[pulumi.Alias] | None:
    return [pulumi.Alias(name=old_name)] if old_name else None


class Cluster(pulumi.ComponentResource):
    eks: aws.eks.Cluster
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority_data: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str] | None
    """None where `iam_oidc_provider` is off."""
    oidc_issuer: pulumi.Output[str]
    k8s_provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # A stable cluster name: the control-plane log group name must be known before the cluster.
        cluster_name = name

        key = customer_key(
            f"{name}-key",
            f"{name} secrets envelope encryption and control-plane logs",
            parent=self,
            service_principals=[f"logs.{args.region}.amazonaws.com"],
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=key.arn,
            opts=child,
        )

        cluster_role = aws.iam.Role(
            f"{name}-cluster-role", assume_role_policy=assume_role_policy("eks.amazonaws.com"), opts=child
        )
        cluster_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-{policy}",
                role=cluster_role.name,
                policy_arn=managed_policy_arn(policy),
                opts=pulumi.ResourceOptions(parent=cluster_role),
            )
            for policy in ("AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController")
        ]

        public = args.api_access == "public-restricted"
        api_security_groups = []
        if not public:
            runner_sg = aws.ec2.SecurityGroup(
                f"{name}-api-runner",
                description=f"{name}: Kubernetes API (private endpoint) from the deploy runner's network",
                vpc_id=args.vpc_id,
                ingress=[
                    {
                        "description": "Kubernetes API from the runner",
                        "protocol": "tcp",
                        "from_port": 443,
                        "to_port": 443,
                        "cidr_blocks": list(args.runner_cidrs),
                    }
                ],
                egress=[],
                opts=child,
            )
            api_security_groups.append(runner_sg.id)
        self.eks = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            role_arn=cluster_role.arn,
            version=args.version,
            vpc_config={
                "subnet_ids": list(args.private_subnet_ids),
                "endpoint_private_access": True,
                "endpoint_public_access": public,
                "public_access_cidrs": list(args.public_access_cidrs) if public else None,
                "security_group_ids": api_security_groups or None,
            },
            encryption_config={"provider": {"key_arn": key.arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            # Admins come from access entries below, not from whoever happened to create the cluster.
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, *cluster_policies]),
        )

        node_role = aws.iam.Role(f"{name}-node-role", assume_role_policy=assume_role_policy("ec2.amazonaws.com"), opts=child)
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=node_role.name,
                policy_arn=managed_policy_arn(policy),
                opts=pulumi.ResourceOptions(parent=node_role),
            )
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
        ]
        # What the node group launches is tagged only through its launch template (cost allocation of
        # the shared EC2 and EBS spend). IMDSv2 only, hop limit 1 (EKS security best practices): a
        # pod's IMDSv2 token answer dies at the extra hop, so no pod in any namespace, with or before
        # its Pod Identity credentials, falls back to the node role. A NetworkPolicy cannot do this:
        # it only allows, and namespaces without one (kube-system, the add-ons') would still reach IMDS.
        node_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes-lt",
            description=f"{name} managed nodes: tags for what they launch, IMDSv2",
            update_default_version=True,
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            tag_specifications=[
                {"resource_type": kind, "tags": dict(args.node_tags)} for kind in ("instance", "volume", "network-interface")
            ],
            opts=child,
        )
        node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.eks.name,
            launch_template={"id": node_template.id, "version": node_template.latest_version.apply(lambda v: str(int(v)))},
            node_role_arn=node_role.arn,
            subnet_ids=list(args.private_subnet_ids),
            instance_types=list(args.node_instance_types),
            ami_type=args.node_ami_type,
            capacity_type="ON_DEMAND",
            scaling_config={"min_size": args.node_min, "desired_size": args.node_desired, "max_size": args.node_max},
            update_config={"max_unavailable": 1},
            labels={"meridian.io/pool": "general"},
            # No autoscaler runs (docs/operations.md, "Sizing a pair's nodes"): the desired size is set at creation
            # and then an operator's (`aws eks update-nodegroup-config`, within min..max); Pulumi must not reset it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies, ignore_changes=["scalingConfig.desiredSize"]),
        )

        # Core add-ons managed here, not left at whatever EKS installed: the VPC CNI enforces the tenants'
        # NetworkPolicies only with its network policy agent on; the Pod Identity agent hands tenant
        # workloads their credentials (components.tenantidentity); EBS CSI serves the PVCs quotas allow.
        addon_opts = pulumi.ResourceOptions(parent=self.eks, depends_on=[node_group])
        aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=self.eks.name,
            addon_name="vpc-cni",
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            resolve_conflicts_on_update="OVERWRITE",
            opts=addon_opts,
        )
        for addon in ("coredns", "kube-proxy", "eks-pod-identity-agent"):
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=self.eks.name,
                addon_name=addon,
                resolve_conflicts_on_update="OVERWRITE",
                opts=addon_opts,
            )
        ebs_role = aws.iam.Role(f"{name}-ebs-csi-role", assume_role_policy=pod_identity_trust(), opts=child)
        ebs_policy = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=ebs_role.name,
            policy_arn=managed_policy_arn("service-role/AmazonEBSCSIDriverPolicy"),
            opts=pulumi.ResourceOptions(parent=ebs_role),
        )
        aws.eks.Addon(
            f"{name}-aws-ebs-csi-driver",
            cluster_name=self.eks.name,
            addon_name="aws-ebs-csi-driver",
            pod_identity_associations=[{"role_arn": ebs_role.arn, "service_account": "ebs-csi-controller-sa"}],
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self.eks, depends_on=[node_group, ebs_policy]),
        )

        self.oidc_issuer = self.eks.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        oidc = (
            aws.iam.OpenIdConnectProvider(
                f"{name}-oidc",
                url=self.oidc_issuer,
                client_id_lists=["sts.amazonaws.com"],
                opts=child,
            )
            if args.iam_oidc_provider
            else None
        )

        self.cluster_name = self.eks.name
        self.cluster_arn = self.eks.arn
        self.endpoint = self.eks.endpoint
        # Managed node groups use the EKS-created cluster security group.
        self.node_security_group_id = self.eks.vpc_config.cluster_security_group_id
        self.oidc_provider_arn = oidc.arn if oidc is not None else None
        # Access entries are named by their principal, not by list position: EKS allows one entry per principal
        # and cluster, and a renamed entry is created before the old one is deleted, so reordering the role lists
        # must leave every principal's entry where it is. The names these had by position are aliases: a stack
        # brought up before keeps its entries (renamed in state, nothing replaced), as long as the lists keep the
        # order they had at its last `up` until then.
        admin_grants = []
        for i, principal in enumerate(dict.fromkeys([args.deploy_role_arn, *args.operator_role_arns])):
            role = "deploy" if i == 0 else access_key("operator", principal)
            was = None if i == 0 else f"{name}-access-operator-{i - 1}"
            entry = aws.eks.AccessEntry(
                f"{name}-access-{role}",
                cluster_name=self.eks.name,
                principal_arn=principal,
                type="STANDARD",
                opts=pulumi.ResourceOptions(parent=self.eks, aliases=_named(was)),
            )
            admin_grants.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-access-{role}-admin",
                    cluster_name=self.eks.name,
                    principal_arn=principal,
                    policy_arn=CLUSTER_ADMIN_POLICY,
                    access_scope={"type": "cluster"},
                    opts=pulumi.ResourceOptions(parent=entry, depends_on=[entry], aliases=_named(was and f"{was}-admin")),
                )
            )
        # One access entry per principal and cluster (EKS refuses a second): an admin needs no view grant.
        admins = (args.deploy_role_arn, *args.operator_role_arns)
        # pull-request viewers first, as when entries were named by position (the aliases below follow that order)
        viewers = [(arn, NO_SECRETS_VIEW_POLICY) for arn in dict.fromkeys(args.pr_viewer_role_arns) if arn not in admins]
        viewers += [
            (arn, CLUSTER_VIEW_POLICY)
            for arn in dict.fromkeys(args.viewer_role_arns)
            if arn not in admins and arn not in args.pr_viewer_role_arns
        ]
        for i, (principal, view_policy) in enumerate(viewers):
            entry_name, was = f"{name}-access-{access_key('viewer', principal)}", f"{name}-access-viewer-{i}"
            entry = aws.eks.AccessEntry(
                entry_name,
                cluster_name=self.eks.name,
                principal_arn=principal,
                type="STANDARD",
                opts=pulumi.ResourceOptions(parent=self.eks, aliases=_named(was)),
            )
            aws.eks.AccessPolicyAssociation(
                f"{entry_name}-view",
                cluster_name=self.eks.name,
                principal_arn=principal,
                policy_arn=view_policy,
                access_scope={"type": "cluster"},
                opts=pulumi.ResourceOptions(parent=entry, depends_on=[entry], aliases=_named(f"{was}-view")),
            )

        self.certificate_authority_data = self.eks.certificate_authority.data
        # The runner's calls are authorised only once the deploy role's access entry is in place.
        self.k8s_provider = cluster_provider(
            f"{name}-k8s",
            ClusterAccess(
                region=args.region,
                cluster_name=self.eks.name,
                endpoint=self.eks.endpoint,
                ca_data=self.certificate_authority_data,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=admin_grants[:1]),
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_arn": self.cluster_arn,
                "endpoint": self.endpoint,
                "node_security_group_id": self.node_security_group_id,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
            }
        )
