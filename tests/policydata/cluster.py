"""EKS: a private cluster with secrets encryption and control-plane logs."""

from __future__ import annotations

from .base import ACCOUNT, DELETE, Builder, Mutations, set_input, together
from .keys import KEY_ARN, PLATFORM_KEY


def build(b: Builder) -> None:
    b.add(
        "aws:eks/cluster:Cluster",
        "eks",
        {
            "name": "eks",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks",
            "vpcConfig": {"subnetIds": ["subnet-1", "subnet-2"], "endpointPrivateAccess": True, "endpointPublicAccess": False},
            "encryptionConfig": {"provider": {"keyArn": KEY_ARN}, "resources": ["secrets"]},
            "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
            "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
        },
        deps={"encryptionConfig": [PLATFORM_KEY]},
    )
    # the group EKS writes the control-plane logs to (`/aws/eks/<cluster name>/cluster`), the stack's own
    b.add(
        "aws:cloudwatch/logGroup:LogGroup",
        "eks-logs",
        {"name": "/aws/eks/eks/cluster", "retentionInDays": 365, "kmsKeyId": KEY_ARN},
    )


MUTATIONS: Mutations = {
    "eks-cluster-secrets-encrypted": [
        ("a cluster without secrets encryption", set_input("eks", "encryptionConfig", DELETE)),
    ],
    "eks-cluster-endpoint-restricted": [
        (
            "the public endpoint left at the provider default (on, 0.0.0.0/0)",
            set_input("eks", "vpcConfig.endpointPublicAccess", DELETE),
        ),
        (
            "the public endpoint open to 0.0.0.0/0",
            together(
                set_input("eks", "vpcConfig.endpointPublicAccess", True),
                set_input("eks", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]),
            ),
        ),
    ],
    "eks-control-plane-logging": [
        ("the audit log switched off", set_input("eks", "enabledClusterLogTypes", ["api", "authenticator"])),
        # review 18 X64: EKS keeps writing to /aws/eks/eks/cluster, which it creates without retention or key
        ("the control-plane log group renamed", set_input("eks-logs", "name", "/aws/eks/eks/cluster-v2")),
    ],
}
