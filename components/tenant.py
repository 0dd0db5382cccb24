"""Tenant: one tenant's isolated slice of one region.

Kubernetes: a namespace `t-<id>` with a default-deny NetworkPolicy (ingress and egress) plus only
the allows the tenant needs (ingress from the platform namespace; egress to cluster DNS, to the
database subnets on 5432 and to AWS APIs on 443), a ResourceQuota and LimitRange sized by plan,
and a service account bound through IRSA to the tenant's IAM role.
AWS: the tenant's own KMS key; its data under `tenants/<id>/` in the region's pool bucket (pool
tier) or in a bucket of its own (silo tier); an IAM role whose policy reaches only that prefix and
that key (no wildcard can reach another tenant's data). The tenant's rate limits are published as
a ConfigMap in the platform namespace, where the service reads them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.bucket import SecureBucket, SecureBucketArgs
from components.planning import tenant_sizing
from components.keys import customer_key
from components.tagging import TAG_TENANT

TENANT_LABEL = "meridian.io/tenant"
PLATFORM_NAMESPACE = "platform"
TENANT_ROLE_PATH = "/meridian/tenants/"  # lets the budget action target tenant roles, and only them


def namespace_of(tenant_id: str) -> str:
    return f"t-{tenant_id}"


def service_account_of(tenant_id: str) -> str:
    return f"{tenant_id}-app"


def tenant_prefix(tenant_id: str) -> str:
    return f"tenants/{tenant_id}/"


def trust_policy(oidc_provider_arn: str, oidc_issuer: str, tenant_id: str) -> str:
    """Only the tenant's own service account, through the cluster's OIDC provider, may assume the role."""
    issuer = oidc_issuer.removeprefix("https://")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{issuer}:sub": f"system:serviceaccount:{namespace_of(tenant_id)}:{service_account_of(tenant_id)}",
                f"{issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    })


def data_policy(bucket_arn: str, key_arn: str, tenant_id: str) -> str:
    """Objects under the tenant's prefix, listing limited to it, and the tenant's key: nothing else."""
    prefix = tenant_prefix(tenant_id)
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TenantObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{bucket_arn}/{prefix}*",
            },
            {
                "Sid": "TenantListing",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
            {
                "Sid": "TenantKey",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": key_arn,
            },
        ],
    })


@dataclass(frozen=True, kw_only=True)
class TenantArgs:
    tenant_id: str
    plan: str
    region: str
    gql_qps: int
    ingest_eps: int
    storage_gb: int
    data_tier: Literal["pool", "silo"]
    pool_bucket_arn: pulumi.Input[str]
    """The region's shared bucket; used by pool-tier tenants."""
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    database_cidrs: Sequence[str]
    """Data subnet CIDRs: the only in-VPC destinations tenant pods may reach (PostgreSQL)."""
    platform_namespace: pulumi.Input[str] = PLATFORM_NAMESPACE
    """The workload's namespace (its output, so the rate-limit ConfigMap waits for that namespace only)."""

    def __post_init__(self) -> None:
        if self.data_tier not in ("pool", "silo"):
            raise ValueError(f"data_tier must be 'pool' or 'silo', got {self.data_tier!r}")
        if min(self.gql_qps, self.ingest_eps, self.storage_gb) <= 0:
            raise ValueError(f"tenant {self.tenant_id}: quotas must be positive")


class Tenant(pulumi.ComponentResource):
    namespace: str
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TenantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:tenant:Tenant", name, None, opts)
        tid = args.tenant_id
        tags = {TAG_TENANT: tid}
        labels = {TENANT_LABEL: tid, "meridian.io/plan": args.plan}
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = namespace_of(tid)

        # --- AWS: key, data, role ---------------------------------------------------------------
        key = customer_key(f"{name}-key", f"tenant {tid} data in {args.region}", parent=self, tags=tags)
        if args.data_tier == "silo":
            bucket_arn = SecureBucket(f"{name}-silo", SecureBucketArgs(kms_key_arn=key.arn, tags=tags), opts=child).arn
        else:
            bucket_arn = pulumi.Output.from_input(args.pool_bucket_arn)
        role = aws.iam.Role(
            f"{name}-role",
            description=f"tenant {tid} workloads in {args.region} (IRSA)",
            assume_role_policy=pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(lambda v: trust_policy(v[0], v[1], tid)),
            path=TENANT_ROLE_PATH,
            max_session_duration=3600,
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-data-access",
            role=role.id,
            policy=pulumi.Output.all(bucket_arn, key.arn).apply(lambda v: data_policy(v[0], v[1], tid)),
            opts=pulumi.ResourceOptions(parent=role),
        )

        # --- Kubernetes: namespace, isolation, quotas, identity ---------------------------------
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={"name": self.namespace, "labels": {**labels, "pod-security.kubernetes.io/enforce": "restricted"}},
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=ns)
        meta = {"namespace": self.namespace, "labels": labels}
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={**meta, "name": "default-deny"},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=in_ns,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-needed",
            metadata={**meta, "name": "allow-needed"},
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": PLATFORM_NAMESPACE}}}]}],
                "egress": [
                    {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                             "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                     "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                    {"to": [{"ipBlock": {"cidr": c}} for c in args.database_cidrs], "ports": [{"protocol": "TCP", "port": 5432}]},
                    # AWS APIs (S3, KMS, STS) over TLS; pod-to-pod traffic stays denied.
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                     "ports": [{"protocol": "TCP", "port": 443}]},
                ],
            },
            opts=in_ns,
        )
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata={**meta, "name": "plan-quota"},
            spec={"hard": tenant_sizing(args.gql_qps, args.ingest_eps, args.storage_gb)},
            opts=in_ns,
        )
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata={**meta, "name": "defaults"},
            spec={"limits": [{
                "type": "Container",
                "default": {"cpu": "500m", "memory": "512Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "max": {"cpu": "4", "memory": "8Gi"},
            }]},
            opts=in_ns,
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={**meta, "name": service_account_of(tid), "annotations": {"eks.amazonaws.com/role-arn": role.arn}},
            automount_service_account_token=True,
            opts=in_ns,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-rate-limits",
            metadata={"namespace": args.platform_namespace, "name": f"tenant-{tid}-limits", "labels": labels},
            data={"plan": args.plan, "gql_qps": str(args.gql_qps), "ingest_eps": str(args.ingest_eps), "storage_gb": str(args.storage_gb)},
            opts=child,
        )

        self.role_arn = role.arn
        self.role_name = role.name
        self.key_arn = key.arn
        self.bucket_arn = bucket_arn
        self.register_outputs({"namespace": self.namespace, "role_arn": self.role_arn, "key_arn": self.key_arn, "bucket_arn": self.bucket_arn})
