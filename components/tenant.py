"""Tenant: one tenant's isolated slice of one region.

Kubernetes: a namespace `t-<id>` with a default-deny NetworkPolicy (ingress and egress) plus only
the allows the tenant needs (ingress from the platform namespace; egress to cluster DNS, to the
EKS Pod Identity agent for credentials, to the database subnets on 5432 and to AWS APIs on 443:
the VPC's interface endpoints and the public ranges), a ResourceQuota and LimitRange sized by plan,
and a service account bound by an EKS Pod Identity association to the region's tenant role
(components.tenantidentity: one role for all tenants, access by session tags). The association
carries no session policy: EKS accepts one only with session tags off, and the tags are what
tells tenants apart.
AWS: the tenant's own KMS key (tagged with its namespace, usable by no other tenant's session:
its key policy says so); its data under `tenants/t-<id>/` in the region's pool bucket (pool tier)
or in a bucket of its own named `<silo prefix>t-<id>` (silo tier), every object encrypted under
the tenant's key (the bucket policies refuse anything else, and refuse every tenant session each
object outside its own prefix: components.bucket). The reference service reaches the tenant's data
through a brokered session of the same role, naming the tenant (service/objects.py).
The tenant's quotas reach the service only through its settings (components.workload): one source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.bucket import SecureBucket, SecureBucketArgs, TenantDataRules
from components.keys import customer_key
from components.naming import silo_bucket_name, tenant_data_prefix, tenant_namespace
from components.podnetwork import essential_egress
from components.tagging import TAG_TENANT
from components.tenantidentity import TAG_NAMESPACE, tenant_key_statements
from stackconfig.planning import tenant_sizing

TENANT_LABEL = "meridian.io/tenant"


def namespace_of(tenant_id: str) -> str:
    return tenant_namespace(tenant_id)


def service_account_of(tenant_id: str) -> str:
    return f"{tenant_id}-app"


def tenant_prefix(tenant_id: str) -> str:
    """The tenant's prefix in the pool bucket: named by namespace, as the ABAC role sees the caller."""
    return tenant_data_prefix(tenant_id)


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
    pool_bucket_name: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    identity_role_arn: pulumi.Input[str]
    """The region's tenant role (components.tenantidentity) the association binds the service account to."""
    silo_bucket_prefix: pulumi.Input[str]
    database_cidrs: Sequence[str]
    """Data subnet CIDRs: tenant pods reach PostgreSQL there."""
    vpc_cidr: str
    """The region's VPC: its interface endpoints (STS, Secrets Manager, ...) answer on private addresses in it."""
    platform_namespace: str
    """The reference service's namespace: the only one whose pods may reach the tenant's."""
    force_destroy: bool = False
    """Silo: `pulumi destroy` deletes the tenant's bucket with every object version (outside production only)."""

    def __post_init__(self) -> None:
        if self.data_tier not in ("pool", "silo"):
            raise ValueError(f"data_tier must be 'pool' or 'silo', got {self.data_tier!r}")
        if min(self.gql_qps, self.ingest_eps, self.storage_gb) <= 0:
            raise ValueError(f"tenant {self.tenant_id}: quotas must be positive")


class Tenant(pulumi.ComponentResource):
    namespace: str
    prefix: str
    key_arn: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str]
    versioning: aws.s3.BucketVersioning | None
    """Silo: its bucket's versioning, which replication waits for. Pool: None (the pool's)."""

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
            f"{name}-key",
            f"tenant {tid} data in {args.region}",
            parent=self,
            tags={**tags, TAG_NAMESPACE: self.namespace},
            guards=tenant_key_statements(self.namespace),
        )
        # the tenant's key by name, for operators (`aws kms describe-key --key-id alias/meridian/<name>`,
        # offboarding) and for the policy pack, which ties each tenant's key to its ARN through it
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/meridian/{name}", target_key_id=key.arn, opts=child
        )  # not a child of the key: it would inherit the key's protection, and offboarding needs no second unprotect
        if args.data_tier == "silo":
            bucket_name = pulumi.Output.from_input(args.silo_bucket_prefix).apply(lambda p: silo_bucket_name(p, self.namespace))
            silo = SecureBucket(
                f"{name}-silo",
                SecureBucketArgs(
                    kms_key_arn=key.arn,
                    tags=tags,
                    bucket_name=bucket_name,
                    tenant_data=TenantDataRules(key_arn=key.arn),
                    force_destroy=args.force_destroy,
                ),
                opts=child,
            )
            bucket_arn, bucket_name = silo.arn, silo.bucket_name
            self.versioning = silo.versioning
        else:
            self.versioning = None
            bucket_arn = pulumi.Output.from_input(args.pool_bucket_arn)
            bucket_name = pulumi.Output.from_input(args.pool_bucket_name)

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
                    {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.platform_namespace}}}]}
                ],
                "egress": [
                    *essential_egress(args.vpc_cidr),
                    {"to": [{"ipBlock": {"cidr": c}} for c in args.database_cidrs], "ports": [{"protocol": "TCP", "port": 5432}]},
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
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]),
        )
        self.prefix = tenant_prefix(tid)
        self.key_arn = key.arn
        self.bucket_arn = bucket_arn
        self.bucket_name = bucket_name
        self.register_outputs(
            {"namespace": self.namespace, "key_arn": self.key_arn, "bucket_arn": self.bucket_arn, "bucket_name": self.bucket_name}
        )
