"""Cluster access in the valid stack: the deploy role's STANDARD entry with cluster admin; and the
doors into the clusters `eks-access-platform-roles-only` must close (from the security review); and
EKS nodes whose metadata service hands pods the node role (`eks-node-metadata-pods-blocked`)."""

from __future__ import annotations

from .base import ACCOUNT, DELETE, Builder, Mutation, Mutations, add, resource, set_input, stack_tags, together, urn

DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/meridian-deploy"
VIEWER = f"arn:aws:iam::{ACCOUNT}:role/meridian-preview"
TENANT_ROLE = f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/us-us-east-1-tenant-identity-role"
ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
POLICY = "arn:aws:eks::aws:cluster-access-policy/"


def build(b: Builder) -> None:
    for who, principal, policy in (
        ("deploy", DEPLOY, "AmazonEKSClusterAdminPolicy"),
        ("viewer", VIEWER, "AmazonEKSAdminViewPolicy"),
    ):
        b.add(ENTRY, f"eks-access-{who}", {"clusterName": "eks", "principalArn": principal, "type": "STANDARD"})
        b.add(
            ASSOCIATION,
            f"eks-access-{who}-policy",
            {"clusterName": "eks", "principalArn": principal, "policyArn": POLICY + policy, "accessScope": {"type": "cluster"}},
            tags=False,
        )


def _entry(name: str, **inputs) -> dict:
    return resource(ENTRY, name, {"clusterName": "eks", "principalArn": TENANT_ROLE, "type": "STANDARD", **inputs})


LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def nodes(metadata_options: dict | None, *, template: bool = True) -> Mutation:
    """An EKS node group, launched from a launch template with these metadata options (or from none)."""
    lt_inputs = {"imageId": "ami-0123456789abcdef0", "instanceType": "m7i.large", "tags": stack_tags("us-east-1")}
    if metadata_options is not None:
        lt_inputs["metadataOptions"] = metadata_options
    lt = resource(LAUNCH_TEMPLATE, "nodes-lt", lt_inputs)
    group_inputs = {
        "clusterName": "eks",
        "nodeRoleArn": f"arn:aws:iam::{ACCOUNT}:role/eks-node-role",
        "subnetIds": ["subnet-0a"],
        "scalingConfig": {"desiredSize": 1, "maxSize": 1, "minSize": 1},
        "tags": stack_tags("us-east-1"),
    }
    if not template:
        return add(resource(NODE_GROUP, "nodes", group_inputs))
    group = resource(
        NODE_GROUP,
        "nodes",
        {**group_inputs, "launchTemplate": {"id": "lt-0123456789abcdef0", "version": "1"}},
        deps={"launchTemplate": [urn(LAUNCH_TEMPLATE, "nodes-lt")]},
    )
    return together(add(lt), add(group))


MUTATIONS: Mutations = {
    "eks-node-metadata-pods-blocked": [
        (
            "nodes whose launch template lets a token response make two hops",
            nodes({"httpTokens": "required", "httpPutResponseHopLimit": 2}),
        ),
        ("nodes whose launch template leaves IMDSv1 on", nodes({"httpTokens": "optional", "httpPutResponseHopLimit": 1})),
        ("nodes whose launch template sets no metadata options (the AMI decides)", nodes(None)),
        ("a node group without a launch template of the stack", nodes(None, template=False)),
    ],
    "eks-access-platform-roles-only": [
        (
            "an access entry for the tenant role joining system:masters",
            add(_entry("eks-access-tenants", kubernetesGroups=["system:masters"])),
        ),
        ("an EC2_LINUX access entry for the tenant role", add(_entry("eks-access-tenants-node", type="EC2_LINUX"))),
        (
            "a namespace-scoped admin policy for the tenant role in another tenant's namespace",
            add(
                resource(
                    ASSOCIATION,
                    "eks-access-tenants-admin",
                    {
                        "clusterName": "eks",
                        "principalArn": TENANT_ROLE,
                        "policyArn": POLICY + "AmazonEKSAdminPolicy",
                        "accessScope": {"type": "namespace", "namespaces": ["t-globex"]},
                    },
                )
            ),
        ),
        (
            "the deploy role's entry joining system:masters",
            set_input("eks-access-deploy", "kubernetesGroups", ["system:masters"]),
        ),
        (
            "the viewer given cluster admin",
            set_input("eks-access-viewer-policy", "policyArn", POLICY + "AmazonEKSClusterAdminPolicy"),
        ),
        (
            "the cluster making its creator admin",
            set_input("eks", "accessConfig.bootstrapClusterCreatorAdminPermissions", True),
        ),
        (
            "the cluster reading the aws-auth ConfigMap too",
            set_input("eks", "accessConfig.authenticationMode", "API_AND_CONFIG_MAP"),
        ),
        ("the cluster leaving its access config to EKS's defaults", set_input("eks", "accessConfig", DELETE)),
    ],
}
