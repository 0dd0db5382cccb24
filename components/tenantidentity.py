"""TenantIdentity: the one IAM role all tenant workloads of a region assume, through EKS Pod Identity.

Per-tenant roles do not scale: 1,000 tenants x 2 regions is 2,000 roles per stack against an
account quota of 1,000 (5,000 at most) that three stacks may share. Instead, one role per region
and attribute-based access: EKS Pod Identity tags every session with the pod's
`kubernetes-namespace` and `eks-cluster-arn`, and the role's policy names resources through
`${aws:PrincipalTag/kubernetes-namespace}`: a pod in `t-acme` reaches `tenants/t-acme/*` in the
pool bucket or in the silo bucket `<silo prefix>t-acme`, and KMS keys tagged `meridian:namespace=t-acme`,
and nothing of any other tenant, however many tenants there are. Every statement also requires the
session to come from this region's cluster and a tenant namespace (`t-*`).

Each tenant's Pod Identity association additionally carries a session policy naming only its own
literal prefix, bucket and key (components.tenant), so the effective permissions are the
intersection of both: a mistake in one document alone does not open another tenant's data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.naming import NAMESPACE_PREFIX as TENANT_NAMESPACE_PREFIX

TENANT_ROLE_PATH = "/meridian/tenants/"  # lets the budget action target tenant roles, and only them
TAG_NAMESPACE = "meridian:namespace"  # on tenant KMS keys: the namespace whose sessions may use them
NAMESPACE_KEY = "aws:PrincipalTag/kubernetes-namespace"  # set by EKS Pod Identity on every session
NAMESPACE_TAG = "${" + NAMESPACE_KEY + "}"  # the policy variable


def trust_policy(account_id: str, cluster_arn: str) -> str:
    """Only EKS Pod Identity, for this account and this cluster, may assume (and tag) the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, "ArnEquals": {"aws:SourceArn": cluster_arn}},
                }
            ],
        }
    )


def abac_policy(
    *, account_id: str, region: str, cluster_arn: str, pool_bucket_arn: str, silo_bucket_prefix: str, prefix_root: str
) -> str:
    """Tenant data by session tag: the pool prefix, the silo bucket and the KMS keys of the caller's namespace."""
    session = {
        "StringEquals": {"aws:PrincipalTag/eks-cluster-arn": cluster_arn, "s3:ResourceAccount": account_id},
        "StringLike": {NAMESPACE_KEY: f"{TENANT_NAMESPACE_PREFIX}*"},
    }
    kms_session = {
        "StringEquals": {"aws:PrincipalTag/eks-cluster-arn": cluster_arn, f"aws:ResourceTag/{TAG_NAMESPACE}": NAMESPACE_TAG},
        "StringLike": {NAMESPACE_KEY: f"{TENANT_NAMESPACE_PREFIX}*"},
    }
    own_prefix = f"{prefix_root}{NAMESPACE_TAG}/"
    silo_bucket = f"arn:aws:s3:::{silo_bucket_prefix}{NAMESPACE_TAG}"
    objects = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PoolObjects",
                    "Effect": "Allow",
                    "Action": objects,
                    "Resource": f"{pool_bucket_arn}/{own_prefix}*",
                    "Condition": session,
                },
                {
                    "Sid": "PoolListing",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": pool_bucket_arn,
                    "Condition": {**session, "StringLike": {**session["StringLike"], "s3:prefix": [f"{own_prefix}*"]}},
                },
                # A silo bucket keeps the same layout: the tenant's data under its own prefix.
                {
                    "Sid": "SiloObjects",
                    "Effect": "Allow",
                    "Action": objects,
                    "Resource": f"{silo_bucket}/{own_prefix}*",
                    "Condition": session,
                },
                {
                    "Sid": "SiloListing",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": silo_bucket,
                    "Condition": {**session, "StringLike": {**session["StringLike"], "s3:prefix": [f"{own_prefix}*"]}},
                },
                {
                    "Sid": "OwnKeys",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                    "Resource": f"arn:aws:kms:{region}:{account_id}:key/*",
                    "Condition": kms_session,
                },
            ],
        }
    )


@dataclass(frozen=True, kw_only=True)
class TenantIdentityArgs:
    region: str
    cluster_arn: pulumi.Input[str]
    pool_bucket_arn: pulumi.Input[str]
    silo_bucket_prefix: pulumi.Input[str]
    """Silo buckets are named `<prefix><namespace>` (components.naming.silo_bucket_name)."""
    prefix_root: str = "tenants/"


class TenantIdentity(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: TenantIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:tenant:TenantIdentity", name, None, opts)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        role = aws.iam.Role(
            f"{name}-role",
            description=f"tenant workloads in {args.region} (EKS Pod Identity, access by session tags)",
            assume_role_policy=pulumi.Output.all(account_id, args.cluster_arn).apply(lambda v: trust_policy(v[0], v[1])),
            path=TENANT_ROLE_PATH,
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-data-access",
            role=role.id,
            policy=pulumi.Output.all(account_id, args.cluster_arn, args.pool_bucket_arn, args.silo_bucket_prefix).apply(
                lambda v: abac_policy(
                    account_id=v[0],
                    region=args.region,
                    cluster_arn=v[1],
                    pool_bucket_arn=v[2],
                    silo_bucket_prefix=v[3],
                    prefix_root=args.prefix_root,
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name})
