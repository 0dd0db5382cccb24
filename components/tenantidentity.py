"""TenantIdentity: the one IAM role all tenant workloads of a region assume, through EKS Pod Identity.

Per-tenant roles do not scale: 1,000 tenants x 2 regions is 2,000 roles per stack against an
account quota of 1,000 (5,000 at most) that three stacks may share. Instead, one role per region
and attribute-based access: EKS Pod Identity tags every session with the pod's
`kubernetes-namespace` and `eks-cluster-arn`, and the role's policy names resources through
`${aws:PrincipalTag/kubernetes-namespace}`: a pod in `t-acme` reaches `tenants/t-acme/*` in the
pool bucket or in the silo bucket `<silo prefix>t-acme`, and KMS keys tagged `meridian:namespace=t-acme`,
and nothing of any other tenant, however many tenants there are. Every statement also requires the
session to come from this region's cluster (or one of its tenant cluster pairs', components.tenantclusters:
by name patterns that admit no other stack's cluster and keep the policy's size constant in the pairs,
`pair_cluster_patterns`; the trust admits exactly the clusters' ARNs) and a tenant namespace (`t-*`).

No association carries a session policy: pulumi-aws (and EKS) accept `policy` only with
`disable_session_tags = true`, which would remove the very tags this role tells tenants apart by.
The second wall is on the resources instead, and holds for any number of tenants in a constant
size: the pool and silo bucket policies deny every tenant session each object outside its own
prefix (one statement per kind of session, through the same policy variables, components.bucket),
and each tenant key's policy denies its use to any tenant session whose tenant is another
(`tenant_key_statements`). A mistake in the role's policy alone does not open another tenant's data.

The reference service serves every tenant from the platform namespace, so it cannot be one tenant's
pod. It gets its own Pod Identity role, the broker, which may do two things: read the database
user's secret (its region's copy, decrypted only through Secrets Manager), and assume this tenant
role for one tenant. Pod Identity's session tags are transitive: the broker's session already
carries `kubernetes-namespace` (= the service's namespace) and `eks-cluster-arn`, and STS refuses a
request tag whose key an inherited transitive tag has. So the broker names the tenant with a key of
its own, `meridian-tenant` (= the tenant's namespace), and nothing else; the tenant role trusts the
broker for exactly that (`sts:AssumeRole` + `sts:TagSession`, `aws:RequestTag/meridian-tenant` like
`t-*`, no other request tag key). The role's policy has a second set of statements for these
brokered sessions: inherited `kubernetes-namespace` = the service's namespace, this cluster, data
named through `${aws:PrincipalTag/meridian-tenant}`. The service also passes the tenant's literal
session policy on every AssumeRole (plain STS, where a session policy and tags go together:
service/objects.py), and the bucket and key guards cover brokered sessions too. The broker is
associated with the service's service account only, outside every tenant namespace.

Two more statements keep the same size for any number of tenants: a pool tenant decrypts the
replicas of its objects that arrived from the other region under this region's pool key (S3 takes
one replica key per replication rule, components.dr), only through S3 here and for the pool bucket
or its own prefix (`replica_contexts`); no tenant session encrypts or makes data keys with any key
but its own tenant's (`own_keys_only_statements`: not `aws/s3`, not the pool key, not another
tenant's), nor with a key the cap enforcer has tagged over budget (`over_budget_statement`,
components.cost): so every tenant write is under the tenant's key, and the cap holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.functions.cap_enforcer import OVER_BUDGET_TAG
from components.naming import NAMESPACE_PREFIX as TENANT_NAMESPACE_PREFIX
from components.policydocs import pod_identity_trust, pod_identity_trust_policy

TENANT_ROLE_PATH = "/meridian/tenants/"  # lets the budget action target tenant roles, and only them
TENANT_ROLES = f"arn:aws:iam::*:role{TENANT_ROLE_PATH}*"  # every tenant role's sessions (aws:PrincipalArn)
TAG_NAMESPACE = "meridian:namespace"  # on tenant KMS keys: the namespace whose sessions may use them
POD_NAMESPACE_TAG = "kubernetes-namespace"  # set by EKS Pod Identity on every session, transitive
BROKER_TENANT_TAG = "meridian-tenant"  # set by the broker on a tenant's session: the tenant's namespace
NAMESPACE_KEY = f"aws:PrincipalTag/{POD_NAMESPACE_TAG}"
NAMESPACE_TAG = "${" + NAMESPACE_KEY + "}"  # the policy variable
BROKERED_KEY = f"aws:PrincipalTag/{BROKER_TENANT_TAG}"
CLUSTER_TAG_KEY = "aws:PrincipalTag/eks-cluster-arn"  # set by EKS Pod Identity: the pod's cluster
BROKERED_TAG = "${" + BROKERED_KEY + "}"
SESSION_TAG_KEYS = [BROKER_TENANT_TAG]  # what the broker may (and must) set
TENANT_KEY_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]


def broker_tag_conditions() -> dict:
    """A brokered tenant session's request tags: `meridian-tenant` = a tenant namespace, and no other key
    (the Pod Identity keys arrive inherited, and STS refuses them as request tags)."""
    return {
        "StringLike": {f"aws:RequestTag/{BROKER_TENANT_TAG}": f"{TENANT_NAMESPACE_PREFIX}*"},
        "ForAllValues:StringEquals": {"aws:TagKeys": SESSION_TAG_KEYS},
    }


def one_or_all(first: str, others: Sequence[str]) -> str | list[str]:
    """A condition value naming `first` alone as a string (as a region of one cluster always has), or
    every one of a list (IAM matches any of them)."""
    return [first, *others] if others else first


def pair_cluster_patterns(cluster_arn: str, tenant_cluster_arns: Sequence[str]) -> list[str]:
    """`StringLike` values admitting the region's own cluster and its tenant pairs' in a size that does not
    grow with the pairs: the own ARN exactly, and `<own ARN>-?`, `<own ARN>-??`, ... for as many digits as
    the highest pair has (components.naming.cluster_name: pair k is `<stack>-<region>-eks-<k>`). A name
    another stack gives a cluster (`<other>-<region>-eks[-<k>]`) never matches: after `<stack>-<region>-eks-`
    the pattern takes exactly one or two characters, where a cluster of another stack would have to end in
    `-eks` or `-<its digits>` right there (tests/test_tenant_pair_patterns.py proves it over stack names).
    The trust (`trust_policy`) keeps exact ARNs: it decides which clusters' pods get a session at all."""
    suffixes = [arn.removeprefix(f"{cluster_arn}-") for arn in tenant_cluster_arns]
    for arn, suffix in zip(tenant_cluster_arns, suffixes, strict=True):
        if arn == suffix or not suffix.isdigit():
            raise ValueError(f"tenant cluster {arn} is not named `{cluster_arn}-<pair>` (components.naming.cluster_name)")
    digits = max(map(len, suffixes), default=0)
    return [cluster_arn, *(f"{cluster_arn}-{'?' * d}" for d in range(1, digits + 1))]


def trust_policy(account_id: str, cluster_arn: str, broker_arn: str, tenant_cluster_arns: Sequence[str] = ()) -> str:
    """Tenant pods through EKS Pod Identity, from the region's cluster or one of its tenant cluster
    pairs' (`tenant_cluster_arns`), and the service's broker role naming one tenant."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                pod_identity_trust(account_id, one_or_all(cluster_arn, tenant_cluster_arns)),
                {
                    "Sid": "ServiceBroker",
                    "Effect": "Allow",
                    "Principal": {"AWS": broker_arn},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": broker_tag_conditions(),
                },
            ],
        }
    )


def secret_read_policy(secret_arn: str, key_arn: str, region: str) -> str:
    """Read one secret's value, and decrypt with its key only on Secrets Manager's behalf in this region."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadDatabaseCredential",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": secret_arn,
                },
                {
                    "Sid": "DecryptItThroughSecretsManager",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": key_arn,
                    "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
                },
            ],
        }
    )


def broker_policy(tenant_role_arn: str) -> str:
    """The broker may assume the tenant role naming one tenant; nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AssumeTenantSessions",
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Resource": tenant_role_arn,
                    "Condition": broker_tag_conditions(),
                }
            ],
        }
    )


def _data_statements(
    kind: str,
    tenant: str,
    session: dict,
    *,
    account_id: str,
    region: str,
    pool_bucket_arn: str,
    pool_key_arn: str,
    silo_bucket_prefix: str,
    prefix_root: str,
) -> list[dict]:
    """The pool prefix, the silo bucket and the KMS keys of the tenant `tenant` (a policy variable) names,
    and the pool key for the replicas under its prefix."""
    own_prefix = f"{prefix_root}{tenant}/"
    silo_bucket = f"arn:aws:s3:::{silo_bucket_prefix}{tenant}"
    objects = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"]
    equals = session.get("StringEquals", {})
    s3_session = {**session, "StringEquals": {**equals, "s3:ResourceAccount": account_id}}
    listing = {**s3_session, "StringLike": {**s3_session.get("StringLike", {}), "s3:prefix": [f"{own_prefix}*"]}}
    return [
        {
            "Sid": f"{kind}PoolObjects",
            "Effect": "Allow",
            "Action": objects,
            "Resource": f"{pool_bucket_arn}/{own_prefix}*",
            "Condition": s3_session,
        },
        {
            "Sid": f"{kind}PoolListing",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": pool_bucket_arn,
            "Condition": listing,
        },
        # A silo bucket keeps the same layout: the tenant's data under its own prefix.
        {
            "Sid": f"{kind}SiloObjects",
            "Effect": "Allow",
            "Action": objects,
            "Resource": f"{silo_bucket}/{own_prefix}*",
            "Condition": s3_session,
        },
        {
            "Sid": f"{kind}SiloListing",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": silo_bucket,
            "Condition": listing,
        },
        {
            "Sid": f"{kind}OwnKeys",
            "Effect": "Allow",
            "Action": TENANT_KEY_ACTIONS,
            "Resource": f"arn:aws:kms:{region}:{account_id}:key/*",
            "Condition": {**session, "StringEquals": {**equals, f"aws:ResourceTag/{TAG_NAMESPACE}": tenant}},
        },
        # Replicas of pool objects arrive in the other region's pool bucket under that pool's key
        # (one replica key per replication rule, components.dr): reading them back decrypts with it.
        {
            "Sid": f"{kind}PoolReplicas",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": pool_key_arn,
            "Condition": {
                **session,
                "StringEquals": {**equals, "kms:ViaService": f"s3.{region}.amazonaws.com"},
                "StringLike": {
                    **session.get("StringLike", {}),
                    REPLICA_CONTEXT_KEY: replica_contexts(pool_bucket_arn, own_prefix),
                },
            },
        },
    ]


REPLICA_CONTEXT_KEY = "kms:EncryptionContext:aws:s3:arn"


def replica_contexts(pool_bucket_arn: str, own_prefix: str) -> list[str]:
    """The S3 encryption contexts of a tenant's replicas: the object's ARN under its own prefix, or,
    as the pool bucket uses S3 Bucket Keys, the bucket's ARN (S3 then names no object to KMS: the
    wall between tenants' replicas is the bucket policy, which S3 applies before it asks KMS, and
    `kms:ViaService`, which keeps the key out of direct KMS calls)."""
    return [pool_bucket_arn, f"{pool_bucket_arn}/{own_prefix}*"]


def abac_policy(
    *,
    account_id: str,
    region: str,
    cluster_arn: str,
    pool_bucket_arn: str,
    pool_key_arn: str,
    silo_bucket_prefix: str,
    prefix_root: str,
    service_namespace: str,
    tenant_cluster_arns: Sequence[str] = (),
) -> str:
    """Tenant data by session tag: the pool prefix, the silo bucket and the KMS keys of the caller's
    tenant, for a tenant pod (its own namespace, on the region's cluster or a tenant cluster pair's)
    and for the broker's session naming one tenant (the service runs on the region's cluster only)."""
    where = dict(
        account_id=account_id,
        region=region,
        pool_bucket_arn=pool_bucket_arn,
        pool_key_arn=pool_key_arn,
        silo_bucket_prefix=silo_bucket_prefix,
        prefix_root=prefix_root,
    )
    # the region's own cluster by exact ARN; with tenant cluster pairs, name patterns of a constant size
    # (the trust admits only the pairs' exact ARNs), so the policy stays within IAM's 10,240 for any pair count
    pod: dict = (
        {"StringLike": {CLUSTER_TAG_KEY: pair_cluster_patterns(cluster_arn, tenant_cluster_arns)}}
        if tenant_cluster_arns
        else {"StringEquals": {CLUSTER_TAG_KEY: cluster_arn}}
    )
    pod["StringLike"] = {**pod.get("StringLike", {}), NAMESPACE_KEY: f"{TENANT_NAMESPACE_PREFIX}*"}
    brokered = {
        "StringEquals": {CLUSTER_TAG_KEY: cluster_arn, NAMESPACE_KEY: service_namespace},
        "StringLike": {BROKERED_KEY: f"{TENANT_NAMESPACE_PREFIX}*"},
    }
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": _data_statements("", NAMESPACE_TAG, pod, **where)
            + _data_statements("Brokered", BROKERED_TAG, brokered, **where)
            + own_keys_only_statements()
            + [over_budget_statement()],
        }
    )


WRITE_KEY_ACTIONS = ["kms:Encrypt", "kms:GenerateDataKey*"]


def own_keys_only_statements() -> list[dict]:
    """No tenant session encrypts or makes data keys under any key but its own tenant's: one whose
    `meridian:namespace` tag is not the session's tenant (another tenant's key, the pool key, the
    AWS-managed `aws/s3` key, any untagged key) is denied. Without it a pool tenant could write
    SSE-KMS under `aws/s3` (whose key policy admits every principal of the account through S3):
    outside its own key, and so outside the hard cap (`over_budget_statement`). Constant in size."""
    tenant_of = {"pod": NAMESPACE_TAG, "brokered": BROKERED_TAG}
    sids = {"pod": "PodsWriteOnlyUnderTheirKey", "brokered": "BrokeredWriteOnlyUnderTheirKey", "untagged": "UntaggedWriteNoKey"}
    out = []
    for kind, condition in tenant_session_guards().items():
        if kind in tenant_of:
            condition = {**condition, "StringNotEquals": {f"aws:ResourceTag/{TAG_NAMESPACE}": tenant_of[kind]}}
        out.append({"Sid": sids[kind], "Effect": "Deny", "Action": WRITE_KEY_ACTIONS, "Resource": "*", "Condition": condition})
    return out


def over_budget_statement() -> dict:
    """The cap on new writes: no new data key and no encryption under a key the cap enforcer has tagged
    over budget (components.cost). Tenant writes are SSE-KMS under the tenant's key (and under no
    other: `own_keys_only_statements`), so they stop; reads (decrypt) keep working; every other
    tenant's keys are untagged and untouched."""
    return {
        "Sid": "TenantOverBudget",
        "Effect": "Deny",
        "Action": WRITE_KEY_ACTIONS,
        "Resource": "*",
        "Condition": {"StringEquals": {f"aws:ResourceTag/{OVER_BUDGET_TAG}": "true"}},
    }


def tenant_session_guards(namespace: str | None = None) -> dict[str, dict]:
    """Conditions for Deny statements that single out tenant sessions whose tenant is not `namespace`
    (every tenant session when None): `pod`, a pod in a tenant namespace; `brokered`, a session the
    broker opened naming a tenant; `untagged`, a session of a tenant role naming no tenant at all."""
    pod: dict = {"StringLike": {NAMESPACE_KEY: f"{TENANT_NAMESPACE_PREFIX}*"}}
    brokered: dict = {"Null": {BROKERED_KEY: "false"}}
    if namespace is not None:
        pod["StringNotEquals"] = {NAMESPACE_KEY: namespace}
        brokered["StringNotEquals"] = {BROKERED_KEY: namespace}
    untagged = {
        "ArnLike": {"aws:PrincipalArn": TENANT_ROLES},
        "StringNotLike": {NAMESPACE_KEY: f"{TENANT_NAMESPACE_PREFIX}*"},
        "Null": {BROKERED_KEY: "true"},
    }
    return {"pod": pod, "brokered": brokered, "untagged": untagged}


def tenant_key_statements(namespace: str) -> list[dict]:
    """A tenant key's own policy: no tenant session but the tenant's own (pod or brokered) may use it.
    Constant in size: one key per tenant, each naming only its own namespace."""
    sids = {
        "pod": "OtherTenantsPodsMayNotUseIt",
        "brokered": "OtherTenantsBrokeredSessionsMayNotUseIt",
        "untagged": "TenantRoleSessionsNameATenant",
    }
    return [
        {
            "Sid": sids[kind],
            "Effect": "Deny",
            "Principal": "*",
            "Action": TENANT_KEY_ACTIONS,
            "Resource": "*",
            "Condition": condition,
        }
        for kind, condition in tenant_session_guards(namespace).items()
    ]


@dataclass(frozen=True, kw_only=True)
class TenantIdentityArgs:
    region: str
    cluster_arn: pulumi.Input[str]
    pool_bucket_arn: pulumi.Input[str]
    pool_key_arn: pulumi.Input[str]
    """The region's pool key: replicas of pool objects from the other region are encrypted with it."""
    silo_bucket_prefix: pulumi.Input[str]
    """Silo buckets are named `<prefix><namespace>` (components.naming.silo_bucket_name)."""
    cluster_name: pulumi.Input[str]
    service_namespace: str
    """The reference service's namespace and service account: the broker's only holder (and the
    `kubernetes-namespace` its sessions carry into every tenant session it opens)."""
    service_account: str
    db_secret_arn: pulumi.Input[str]
    """The region's copy of the application user's secret: the broker (the service) reads it, nothing more."""
    db_secret_key_arn: pulumi.Input[str]
    prefix_root: str = "tenants/"
    tenant_cluster_arns: Sequence[pulumi.Input[str]] = ()
    """The region's clusters of the tenant cluster pairs (components.tenantclusters): their tenant pods
    assume the tenant role too (the broker stays on `cluster_arn`, where the service runs)."""


class TenantIdentity(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    broker_role_arn: pulumi.Output[str]
    broker_association: aws.eks.PodIdentityAssociation
    """What the service's pods must wait for: without it they start with no identity of their own."""

    def __init__(self, name: str, args: TenantIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:tenant:TenantIdentity", name, None, opts)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        broker = aws.iam.Role(
            f"{name}-broker",
            description=f"the reference service in {args.region}: assumes the tenant role with one tenant's session tags",
            assume_role_policy=pulumi.Output.all(account_id, args.cluster_arn).apply(
                lambda v: pod_identity_trust_policy(v[0], v[1])
            ),
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"tenant workloads in {args.region} (EKS Pod Identity, access by session tags)",
            assume_role_policy=pulumi.Output.all(account_id, args.cluster_arn, broker.arn, *args.tenant_cluster_arns).apply(
                lambda v: trust_policy(v[0], v[1], v[2], v[3:])
            ),
            path=TENANT_ROLE_PATH,
            max_session_duration=3600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicy(
            f"{name}-data-access",
            role=role.id,
            policy=pulumi.Output.all(
                account_id,
                args.cluster_arn,
                args.pool_bucket_arn,
                args.silo_bucket_prefix,
                args.pool_key_arn,
                *args.tenant_cluster_arns,
            ).apply(
                lambda v: abac_policy(
                    account_id=v[0],
                    region=args.region,
                    cluster_arn=v[1],
                    pool_bucket_arn=v[2],
                    pool_key_arn=v[4],
                    silo_bucket_prefix=v[3],
                    prefix_root=args.prefix_root,
                    service_namespace=args.service_namespace,
                    tenant_cluster_arns=v[5:],
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        aws.iam.RolePolicy(
            f"{name}-broker-assume",
            role=broker.id,
            policy=role.arn.apply(broker_policy),
            opts=pulumi.ResourceOptions(parent=broker),
        )
        aws.iam.RolePolicy(
            f"{name}-broker-db-credential",
            role=broker.id,
            policy=pulumi.Output.all(args.db_secret_arn, args.db_secret_key_arn).apply(
                lambda v: secret_read_policy(v[0], v[1], args.region)
            ),
            opts=pulumi.ResourceOptions(parent=broker),
        )
        self.broker_association = aws.eks.PodIdentityAssociation(
            f"{name}-broker-identity",
            cluster_name=args.cluster_name,
            namespace=args.service_namespace,
            service_account=args.service_account,
            role_arn=broker.arn,
            opts=pulumi.ResourceOptions(parent=broker),
        )
        self.role_arn = role.arn
        self.role_name = role.name
        self.broker_role_arn = broker.arn
        self.register_outputs({"role_arn": self.role_arn, "role_name": self.role_name, "broker_role_arn": self.broker_role_arn})
