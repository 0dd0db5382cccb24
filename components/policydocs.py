"""IAM and KMS policy documents the components share (plain functions, JSON strings)."""

from __future__ import annotations

import json
from collections.abc import Sequence


def service_key_policy(account_id: str, service_principals: Sequence[str] = (), guards: Sequence[dict] = ()) -> str:
    """KMS key policy: the account administers the key (IAM decides who else may use it);
    the named AWS service principals may use it too, on behalf of this account only; `guards`
    (Deny statements) hold whatever IAM grants."""
    statements: list[dict] = [
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if service_principals:
        statements.append(
            {
                "Sid": "ServicesUseKey",
                "Effect": "Allow",
                "Principal": {"Service": list(service_principals)},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        )
    statements += guards
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def assume_role_policy(service: str, account_id: str | None = None) -> str:
    """Trust policy letting one AWS service assume the role (for this account only, when given)."""
    statement: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account_id:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def managed_policy_arn(name: str) -> str:
    return f"arn:aws:iam::aws:policy/{name}"


# The cluster a pod runs in, as EKS Pod Identity names it on every AssumeRole/TagSession it makes: the
# request tag `eks-cluster-arn` (one of its six session tags). The EKS user guide restricts a Pod Identity
# role to clusters through these request tags ("Setting Conditions",
# https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html; the tags:
# https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html). No AWS page says Pod Identity's
# request carries `aws:SourceArn`, and an `ArnEquals` on a key the request lacks denies every pod.
POD_CLUSTER_TAG_KEY = "aws:RequestTag/eks-cluster-arn"


def pod_identity_trust(account_id: str, cluster_arn: str | list[str]) -> dict:
    """The trust statement: EKS Pod Identity, for this account and this cluster (or these: any of a
    list, by exact ARN), may assume (and tag) the role."""
    return {
        "Sid": "EksPodIdentity",
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id, POD_CLUSTER_TAG_KEY: cluster_arn}},
    }


def pod_identity_trust_policy(account_id: str, cluster_arn: str) -> str:
    """A trust policy admitting only EKS Pod Identity, for this account and this cluster."""
    return json.dumps({"Version": "2012-10-17", "Statement": [pod_identity_trust(account_id, cluster_arn)]})
