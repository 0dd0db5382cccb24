"""Tenant: one tenant's isolated slice of one region.

Kubernetes: a namespace `t-<id>` with a default-deny NetworkPolicy (ingress and egress) plus only
the allows the tenant needs (ingress from the platform namespace; egress to cluster DNS, to the
database subnets on 5432 and to AWS APIs on 443), a ResourceQuota and LimitRange sized by plan,
and a service account bound by an EKS Pod Identity association to the region's tenant role
(components.tenantidentity: one role for all tenants, access by session tags).
AWS: the tenant's own KMS key (tagged with its namespace); its data under `tenants/t-<id>/` in the
region's pool bucket (pool tier) or in a bucket of its own named `<silo prefix>t-<id>` (silo
tier). The association's session policy names only that prefix or bucket and that key, so the
session can reach nothing else even if the role's policy were wrong. The tenant's rate limits are
published as a ConfigMap in the platform namespace.
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
from components.keys import customer_key
from components.naming import NAMESPACE_PREFIX, silo_bucket_name
from components.planning import tenant_sizing
from components.tagging import TAG_TENANT
from components.tenantidentity import TAG_NAMESPACE

TENANT_LABEL = "meridian.io/tenant"
PLATFORM_NAMESPACE = "platform"


def namespace_of(tenant_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{tenant_id}"


def service_account_of(tenant_id: str) -> str:
    return f"{tenant_id}-app"


def tenant_prefix(tenant_id: str) -> str:
    """The tenant's prefix in the pool bucket: named by namespace, as the ABAC role sees the caller."""
    return f"tenants/{namespace_of(tenant_id)}/"


def data_policy(bucket_arn: str, key_arn: str, tenant_id: str) -> str:
    """Objects under the tenant's prefix, listing limited to it, and the tenant's key: nothing else.
    The session policy of the tenant's Pod Identity association (at most 2,048 characters packed)."""
    prefix = tenant_prefix(tenant_id)
    return json.dumps(
        {
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
        }
    )


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
    cluster_name: pulumi.Input[str]
    identity_role_arn: pulumi.Input[str]
    """The region's tenant role (components.tenantidentity) the association binds the service account to."""
    silo_bucket_prefix: pulumi.Input[str]
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
        # The namespace tag is what the region's ABAC role matches the caller's session against.
        key = customer_key(
            f"{name}-key", f"tenant {tid} data in {args.region}", parent=self, tags={**tags, TAG_NAMESPACE: self.namespace}
        )
        if args.data_tier == "silo":
            bucket_name = pulumi.Output.from_input(args.silo_bucket_prefix).apply(lambda p: silo_bucket_name(p, self.namespace))
            bucket_arn = SecureBucket(
                f"{name}-silo", SecureBucketArgs(kms_key_arn=key.arn, tags=tags, bucket_name=bucket_name), opts=child
            ).arn
        else:
            bucket_arn = pulumi.Output.from_input(args.pool_bucket_arn)

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
                "ingress": [
                    {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": PLATFORM_NAMESPACE}}}]}
                ],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                    {"to": [{"ipBlock": {"cidr": c}} for c in args.database_cidrs], "ports": [{"protocol": "TCP", "port": 5432}]},
                    # AWS APIs (S3, KMS, STS) over TLS; pod-to-pod traffic stays denied.
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}],
                        "ports": [{"protocol": "TCP", "port": 443}],
                    },
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
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                        "max": {"cpu": "4", "memory": "8Gi"},
                    }
                ]
            },
            opts=in_ns,
        )
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={**meta, "name": service_account_of(tid)},
            automount_service_account_token=True,
            opts=in_ns,
        )
        aws.eks.PodIdentityAssociation(
            f"{name}-identity",
            cluster_name=args.cluster_name,
            namespace=self.namespace,
            service_account=service_account_of(tid),
            role_arn=args.identity_role_arn,
            policy=pulumi.Output.all(bucket_arn, key.arn).apply(lambda v: data_policy(v[0], v[1], tid)),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]),
        )
        k8s.core.v1.ConfigMap(
            f"{name}-rate-limits",
            metadata={"namespace": args.platform_namespace, "name": f"tenant-{tid}-limits", "labels": labels},
            data={
                "plan": args.plan,
                "gql_qps": str(args.gql_qps),
                "ingest_eps": str(args.ingest_eps),
                "storage_gb": str(args.storage_gb),
            },
            opts=child,
        )

        self.key_arn = key.arn
        self.bucket_arn = bucket_arn
        self.register_outputs({"namespace": self.namespace, "key_arn": self.key_arn, "bucket_arn": self.bucket_arn})
