"""Cluster access in the valid stack: the deploy role's STANDARD entry with cluster admin; and the
doors into the clusters `eks-access-platform-roles-only` must close (from the security review)."""

from __future__ import annotations

from .base import ACCOUNT, Builder, Mutations, add, resource, set_input

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


MUTATIONS: Mutations = {
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
    ]
}
