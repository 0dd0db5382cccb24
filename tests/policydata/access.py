"""Stacks for `tenant-data-access` in both tenant identity designs, and the bypasses it must catch.

`tenancy_stack("session-policy")` is today's plan in small: one ABAC role per region held by every
tenant's pods through EKS Pod Identity (each association with a session policy), the broker
(reference service, namespace `platform`) trusted to assume it with a `kubernetes-namespace`
request tag (which STS refuses, its own pod identity session carrying that transitive tag).
`tenancy_stack("tagged-broker")` is the identity design of issue 24: associations with no session
policy, bucket and key policies that deny tenant sessions outside their own prefix and key by
principal tag, and a broker that passes `meridian-tenant` (inheriting `kubernetes-namespace =
platform`), matched by its own statements in the tenant role.

Both have two tenants (acme, globex), a pool bucket with their prefixes, a key and a secret per
tenant (their ARNs visible in the plan through an alias and a secret version, as the program's
values are), the AWS Load Balancer Controller in `kube-system`, a replication role, and cluster
operators outside the stack with EKS cluster admin.
"""

from __future__ import annotations

import json

from .base import (
    ACCOUNT,
    K8S,
    PRIMARY,
    Builder,
    Mutation,
    Mutations,
    Resources,
    add,
    add_statement,
    find,
    resource,
    set_input,
    stack_and_providers,
    stack_tags,
    urn,
)

CLUSTER = "eks"
CLUSTER_ARN = f"arn:aws:eks:{PRIMARY}:{ACCOUNT}:cluster/{CLUSTER}"
POOL = "pool-bucket-1234567"
POOL_ARN = f"arn:aws:s3:::{POOL}"
TENANT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/tenants-role-1234567"
BROKER_ARN = f"arn:aws:iam::{ACCOUNT}:role/broker-role-1234567"
LB_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lb-controller-role-1234567"
KEY_ARNS = {
    "acme": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/aaaa-acme",
    "globex": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/bbbb-globex",
}
SECRET_ARN = f"arn:aws:secretsmanager:{PRIMARY}:{ACCOUNT}:secret:acme-settings-AbCdEf"
FOREIGN = "444455556666"
CONFIG = {
    "tenant-data-access": {"tenantPrefix": "tenants/t-{tenant}/"},
    "eks-access-platform-roles-only": {"adminPrincipals": [f"arn:aws:iam::{ACCOUNT}:role/meridian-deploy"]},
}
NS = "${aws:PrincipalTag/kubernetes-namespace}"
TENANT_TAG = "${aws:PrincipalTag/meridian-tenant}"
ROLE = "aws:iam/role:Role"
KEY = "aws:kms/key:Key"
DESIGNS = ("session-policy", "tagged-broker")


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _pods_trust() -> dict:
    return {
        "Sid": "EksPodIdentity",
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnEquals": {"aws:SourceArn": CLUSTER_ARN}},
    }


def tenancy_stack(design: str = "tagged-broker", more_tenants: int = 0) -> Resources:
    """`more_tenants` adds tenants t-0000, t-0001, ... shaped like acme (for scale measurements)."""
    assert design in DESIGNS, design
    b = Builder()
    stack_and_providers(b)
    keys = {}
    tenants = ("acme", "globex", *(f"{i:04d}" for i in range(more_tenants)))
    key_arns = {**KEY_ARNS, **{t: f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/cccc-{t}" for t in tenants[2:]}}
    for tenant in tenants:
        b.add(
            "kubernetes:core/v1:Namespace",
            f"t-{tenant}-ns",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": f"t-{tenant}",
                    "labels": {"meridian.io/tenant": tenant, "pod-security.kubernetes.io/enforce": "restricted"},
                },
            },
            region=None,
            provider=K8S,
        )
        keys[tenant] = b.add(
            KEY,
            f"t-{tenant}-key",
            {"enableKeyRotation": True},
            tags=stack_tags(PRIMARY, **{"meridian:tenant": tenant, "meridian:namespace": f"t-{tenant}"}),
        )
        b.add(
            "aws:kms/alias:Alias",
            f"t-{tenant}-key-alias",
            {"name": f"alias/t-{tenant}", "targetKeyId": key_arns[tenant]},
            deps={"targetKeyId": [keys[tenant]]},
            tags=False,
        )
    b.add(
        "kubernetes:core/v1:Namespace",
        "platform-ns",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "platform", "labels": {"meridian.io/platform": "true"}}},
        region=None,
        provider=K8S,
    )
    secret = b.add(
        "aws:secretsmanager/secret:Secret",
        "t-acme-settings",
        {"kmsKeyId": KEY_ARNS["acme"]},
        deps={"kmsKeyId": [keys["acme"]]},
        tags=stack_tags(PRIMARY, **{"meridian:tenant": "acme"}),
    )
    b.add(
        "aws:secretsmanager/secretVersion:SecretVersion",
        "t-acme-settings-v1",
        {"secretId": SECRET_ARN, "secretString": "[secret]"},
        deps={"secretId": [secret]},
        tags=False,
    )
    pool = b.add("aws:s3/bucket:Bucket", "pool-bucket", {"bucket": POOL})
    deny_tls = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [POOL_ARN, f"{POOL_ARN}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    statements = [deny_tls]
    if design == "tagged-broker":
        statements.append(
            {
                "Sid": "TenantSessionsStayInTheirPrefix",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "NotResource": f"{POOL_ARN}/tenants/{NS}/*",
                "Condition": {"StringLike": {"aws:PrincipalTag/kubernetes-namespace": "t-*"}},
            }
        )
    b.add(
        "aws:s3/bucketPolicy:BucketPolicy",
        "pool-policy",
        {"bucket": POOL, "policy": _doc(*statements)},
        deps={"bucket": [pool], "policy": [pool]},
        tags=False,
    )

    # the tenant role: pods of every tenant namespace, and the broker acting for one tenant
    request = "kubernetes-namespace" if design == "session-policy" else "meridian-tenant"
    broker_trust = {
        "Sid": "ServiceBroker",
        "Effect": "Allow",
        "Principal": {"AWS": BROKER_ARN},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {
            "StringLike": {f"aws:RequestTag/{request}": "t-*"},
            "ForAllValues:StringEquals": {"aws:TagKeys": [request]},
        },
    }
    tenant_role = b.add(
        "aws:iam/role:Role", "tenants-role", {"path": "/meridian/tenants/", "assumeRolePolicy": _doc(_pods_trust(), broker_trust)}
    )
    pod_only = {
        "StringEquals": {"aws:PrincipalTag/eks-cluster-arn": CLUSTER_ARN},
        "StringLike": {"aws:PrincipalTag/kubernetes-namespace": "t-*"},
    }
    abac = [
        {
            "Sid": "PodObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"{POOL_ARN}/tenants/{NS}/*",
            "Condition": pod_only,
        },
        {
            "Sid": "PodListing",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": POOL_ARN,
            "Condition": {**pod_only, "StringLike": {**pod_only["StringLike"], "s3:prefix": [f"tenants/{NS}/*"]}},
        },
        {
            "Sid": "PodKeys",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/meridian:namespace": NS}},
        },
    ]
    if design == "tagged-broker":
        broker_only = {
            "StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "platform"},
            "StringLike": {"aws:PrincipalTag/meridian-tenant": "t-*"},
        }
        abac += [
            {
                "Sid": "BrokerObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{POOL_ARN}/tenants/{TENANT_TAG}/*",
                "Condition": broker_only,
            },
            {
                "Sid": "BrokerKeys",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*",
                "Condition": {"StringEquals": {"aws:ResourceTag/meridian:namespace": TENANT_TAG, **broker_only["StringEquals"]}},
            },
        ]
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "tenants-data-access",
        {"role": "tenants-role-1234567", "policy": _doc(*abac)},
        deps={"role": [tenant_role], "policy": [pool]},
        tags=False,
    )
    for tenant in tenants:
        inputs = {
            "clusterName": CLUSTER,
            "namespace": f"t-{tenant}",
            "serviceAccount": f"{tenant}-app",
            "roleArn": TENANT_ROLE_ARN,
        }
        deps = {"roleArn": [tenant_role]}
        if design == "session-policy":
            inputs["policy"] = _doc(
                {
                    "Sid": "TenantObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"{POOL_ARN}/tenants/t-{tenant}/*",
                },
                {
                    "Sid": "TenantKey",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": key_arns[tenant],
                },
            )
            deps["policy"] = [pool, keys[tenant]]
        b.add(
            "aws:eks/podIdentityAssociation:PodIdentityAssociation",
            f"t-{tenant}-identity",
            inputs,
            deps=deps,
            tags=stack_tags(PRIMARY, **{"meridian:tenant": tenant}),
        )

    broker = b.add("aws:iam/role:Role", "broker-role", {"assumeRolePolicy": _doc(_pods_trust())})
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "broker-assume",
        {
            "role": "broker-role-1234567",
            "policy": _doc(
                {
                    "Sid": "AssumeTenantSessions",
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Resource": TENANT_ROLE_ARN,
                    "Condition": {"StringLike": {f"aws:RequestTag/{request}": "t-*"}},
                }
            ),
        },
        deps={"role": [broker], "policy": [tenant_role]},
        tags=False,
    )
    b.add(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "broker-identity",
        {"clusterName": CLUSTER, "namespace": "platform", "serviceAccount": "meridian-api", "roleArn": BROKER_ARN},
        deps={"roleArn": [broker]},
    )
    lb = b.add("aws:iam/role:Role", "lb-controller-role", {"assumeRolePolicy": _doc(_pods_trust())})
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "lb-controller-access",
        {
            "role": "lb-controller-role-1234567",
            "policy": _doc(
                {"Effect": "Allow", "Action": ["ec2:Describe*", "elasticloadbalancing:*"], "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Action": "iam:CreateServiceLinkedRole",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
                },
            ),
        },
        deps={"role": [lb]},
        tags=False,
    )
    b.add(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "lb-controller-identity",
        {
            "clusterName": CLUSTER,
            "namespace": "kube-system",
            "serviceAccount": "aws-load-balancer-controller",
            "roleArn": LB_ROLE_ARN,
        },
        deps={"roleArn": [lb]},
    )
    repl = b.add(
        "aws:iam/role:Role",
        "pool-repl-role",
        {"assumeRolePolicy": _doc({"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"})},
    )
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "pool-repl-access",
        {
            "role": "pool-repl-role-1234567",
            "policy": _doc(
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObjectVersionForReplication", "s3:ListBucket"],
                    "Resource": [POOL_ARN, f"{POOL_ARN}/*"],
                }
            ),
        },
        deps={"role": [repl], "policy": [pool]},
        tags=False,
    )
    operator = f"arn:aws:iam::{ACCOUNT}:role/meridian-deploy"
    b.add(
        "aws:eks/accessEntry:AccessEntry",
        "eks-access-deploy",
        {"clusterName": CLUSTER, "principalArn": operator, "type": "STANDARD"},
    )
    b.add(
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "eks-access-deploy-admin",
        {
            "clusterName": CLUSTER,
            "principalArn": operator,
            "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            "accessScope": {"type": "cluster"},
        },
        tags=False,
    )
    return b.resources


# --- the issue's misses: each one way in that the rule must report -----------------------------


def _set_policy(name: str, *statements: dict, field: str = "policy") -> Mutation:
    return set_input(name, field, _doc(*statements))


def _key_policy(tenant: str, *statements: dict) -> Mutation:
    return set_input(
        f"t-{tenant}-key",
        "policy",
        _doc(
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            *statements,
        ),
    )


def _acme_irsa_role(
    policy: dict, sub: str = "system:serviceaccount:t-acme:acme-app", op: str = "StringEquals", trust: dict | None = None
) -> Mutation:
    """An acme-tagged role (IRSA, as the pack's other rules know tenant roles) with `policy`."""
    oidc = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
    trust = trust or {
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {op: {f"{oidc}:sub": sub, f"{oidc}:aud": "sts.amazonaws.com"}},
    }
    role = resource(
        ROLE,
        "t-acme-irsa-role",
        {"name": "t-acme-irsa", "assumeRolePolicy": _doc(trust), "tags": stack_tags(PRIMARY, **{"meridian:tenant": "acme"})},
    )
    deps = {"role": [role["urn"]]}
    if "globex" in json.dumps(policy):
        deps["policy"] = [urn(KEY, "t-globex-key")]
    rp = resource(
        "aws:iam/rolePolicy:RolePolicy", "t-acme-irsa-access", {"role": "t-acme-irsa", "policy": _doc(policy)}, deps=deps
    )

    def mutate(resources: Resources) -> None:
        add(role)(resources)
        add(rp)(resources)

    return mutate


def _platform_pod_role(name: str, namespace: str, *statements: dict, attach: str | None = None) -> Mutation:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    role = resource(ROLE, name, {"name": name, "assumeRolePolicy": _doc(_pods_trust())})
    extra = (
        [
            resource(
                "aws:iam/rolePolicy:RolePolicy",
                f"{name}-inline",
                {"role": name, "policy": _doc(*statements)},
                deps={"role": [role["urn"]]},
            )
        ]
        if statements
        else []
    )
    if attach:
        extra.append(
            resource(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                f"{name}-attach",
                {"role": name, "policyArn": attach},
                deps={"role": [role["urn"]]},
            )
        )
    assoc = resource(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        f"{name}-identity",
        {"clusterName": CLUSTER, "namespace": namespace, "serviceAccount": name, "roleArn": role_arn},
        deps={"roleArn": [role["urn"]]},
    )

    def mutate(resources: Resources) -> None:
        for r in (role, *extra, assoc):
            add(r)(resources)

    return mutate


def _service_role(name: str, service: str, *statements: dict, attach: str | None = None) -> Mutation:
    """A role only `service` assumes, with inline `statements` and/or an attached managed policy."""
    trust = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    role = resource(ROLE, name, {"name": name, "assumeRolePolicy": _doc(trust)})
    extra = []
    if statements:
        extra.append(
            resource(
                "aws:iam/rolePolicy:RolePolicy",
                f"{name}-inline",
                {"role": name, "policy": _doc(*statements)},
                deps={"role": [role["urn"]]},
            )
        )
    if attach:
        extra.append(
            resource(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                f"{name}-attach",
                {"role": name, "policyArn": attach},
                deps={"role": [role["urn"]]},
            )
        )

    def mutate(resources: Resources) -> None:
        for r in (role, *extra):
            add(r)(resources)

    return mutate


def _k8s(type_: str, name: str, body: dict) -> Mutation:
    def mutate(resources: Resources) -> None:
        resources.append({**resource(type_, name, body), "provider": K8S})

    return mutate


GET_ALL = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{POOL_ARN}/*"}

MISSES: list[tuple[str, Mutation]] = [
    (
        "acme-tagged role with kms:Decrypt on globex's key ARN",
        _acme_irsa_role({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARNS["globex"]}),
    ),
    (
        "untagged pod-identity role with AmazonS3ReadOnlyAccess + kms:Decrypt on *",
        _platform_pod_role(
            "reports-role",
            "platform",
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
            attach="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        ),
    ),
    (
        "trust StringLike :sub = system:serviceaccount:*:*",
        _acme_irsa_role(
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{POOL_ARN}/tenants/t-acme/*"},
            sub="system:serviceaccount:*:*",
            op="StringLike",
        ),
    ),
    (
        "lb-controller association into t-acme",
        add(
            resource(
                "aws:eks/podIdentityAssociation:PodIdentityAssociation",
                "lb-controller-in-acme",
                {"clusterName": CLUSTER, "namespace": "t-acme", "serviceAccount": "acme-app", "roleArn": LB_ROLE_ARN},
                deps={"roleArn": [urn(ROLE, "lb-controller-role")]},
            )
        ),
    ),
    (
        "EKS ClusterAdmin access for the tenant role",
        add(
            resource(
                "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
                "eks-access-tenants-admin",
                {
                    "clusterName": CLUSTER,
                    "principalArn": TENANT_ROLE_ARN,
                    "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    "accessScope": {"type": "cluster"},
                },
                deps={"principalArn": [urn(ROLE, "tenants-role")]},
            )
        ),
    ),
    (
        "ClusterRoleBinding cluster-admin to system:serviceaccounts:t-acme",
        _k8s(
            "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
            "acme-cluster-admin",
            {
                "metadata": {"name": "acme-cluster-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "Group", "name": "system:serviceaccounts:t-acme", "apiGroup": "rbac.authorization.k8s.io"}],
            },
        ),
    ),
    (
        "pool bucket policy allowing a foreign account s3:GetObject",
        add_statement("pool-policy", {**GET_ALL, "Sid": "Partner", "Principal": {"AWS": f"arn:aws:iam::{FOREIGN}:root"}}),
    ),
    (
        "key policy with a foreign account",
        _key_policy(
            "acme",
            {
                "Sid": "Partner",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{FOREIGN}:root"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ),
    ),
    (
        "key policy Principal:* with only kms:ViaService",
        _key_policy(
            "acme",
            {
                "Sid": "ViaS3",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{PRIMARY}.amazonaws.com"}},
            },
        ),
    ),
    (
        "key policy Allow + NotPrincipal",
        _key_policy(
            "acme",
            {
                "Sid": "AllButOne",
                "Effect": "Allow",
                "NotPrincipal": {"AWS": BROKER_ARN},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
        ),
    ),
    (
        "aws:kms/keyPolicy with *",
        add(
            resource(
                "aws:kms/keyPolicy:KeyPolicy",
                "acme-key-policy",
                {
                    "keyId": KEY_ARNS["acme"],
                    "policy": _doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}),
                },
                deps={"keyId": [urn(KEY, "t-acme-key")]},
            )
        ),
    ),
    (
        "aws:kms/grant to a foreign role",
        add(
            resource(
                "aws:kms/grant:Grant",
                "acme-key-partner-grant",
                {
                    "keyId": KEY_ARNS["acme"],
                    "granteePrincipal": f"arn:aws:iam::{FOREIGN}:role/partner",
                    "operations": ["Decrypt", "GenerateDataKey"],
                },
                deps={"keyId": [urn(KEY, "t-acme-key")]},
            )
        ),
    ),
    (
        "secret policy Principal:*",
        add(
            resource(
                "aws:secretsmanager/secretPolicy:SecretPolicy",
                "acme-settings-policy",
                {
                    "secretArn": SECRET_ARN,
                    "policy": _doc(
                        {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
                    ),
                },
                deps={"secretArn": [urn("aws:secretsmanager/secret:Secret", "t-acme-settings")]},
            )
        ),
    ),
    (
        'Action "s*:*" on a platform role',
        _platform_pod_role("jobs-role", "platform", {"Effect": "Allow", "Action": "s*:*", "Resource": "*"}),
    ),
    (
        "iam:AttachRolePolicy / PutRolePolicy on * for a platform role",
        _platform_pod_role(
            "ops-role", "platform", {"Effect": "Allow", "Action": ["iam:AttachRolePolicy", "iam:PutRolePolicy"], "Resource": "*"}
        ),
    ),
    (
        "user-group membership into an admin group",
        lambda resources: [
            add(r)(resources)
            for r in (
                resource("aws:iam/user:User", "contractor", {"name": "contractor"}),
                resource("aws:iam/group:Group", "admins", {"name": "admins"}, deps={}),
                resource(
                    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
                    "admins-admin",
                    {"group": "admins", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
                    deps={"group": [urn("aws:iam/group:Group", "admins")]},
                ),
                resource(
                    "aws:iam/userGroupMembership:UserGroupMembership",
                    "contractor-admins",
                    {"user": "contractor", "groups": ["admins"]},
                    deps={"user": [urn("aws:iam/user:User", "contractor")]},
                ),
            )
        ],
    ),
    (
        "trust :root with only aws:SecureTransport (a tenant's own role)",
        _acme_irsa_role(
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{POOL_ARN}/tenants/t-acme/*"},
            trust={
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            },
        ),
    ),
    # a service that runs code is a workload: its role is no "AWS service acting for the platform"
    (
        "an EC2 instance role with AmazonS3ReadOnlyAccess",
        _service_role("batch-node", "ec2.amazonaws.com", attach="arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"),
    ),
    ("a Lambda role reading the pool bucket", _service_role("etl-fn", "lambda.amazonaws.com", GET_ALL)),
    (
        "a Lambda role with kms:Decrypt on every key and GetObject on the pool",
        _service_role("etl-fn", "lambda.amazonaws.com", GET_ALL, {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
    ),
    ("a CodeBuild role reading the pool bucket", _service_role("ci-build", "codebuild.amazonaws.com", GET_ALL)),
    (
        "trust :root with only aws:SecureTransport (the shared ABAC role, tags left to the caller)",
        add_statement(
            "tenants-role",
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            },
            field="assumeRolePolicy",
        ),
    ),
]

# --- legitimate setups the rule must not report --------------------------------------------------

LEGITIMATE: list[tuple[str, Mutation]] = [
    (
        "Principal:* + aws:PrincipalOrgID on a platform key",
        add(
            resource(
                KEY,
                "platform-shared-key",
                {
                    "policy": _doc(
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": ["kms:Decrypt"],
                            "Resource": "*",
                            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
                        }
                    )
                },
            )
        ),
    ),
    (
        "Principal:* + aws:PrincipalOrgID reading the silo of no tenant (an org-wide artifacts bucket)",
        lambda resources: [
            add(r)(resources)
            for r in (
                resource("aws:s3/bucket:Bucket", "artifacts", {"bucket": "org-artifacts-1234567"}),
                resource(
                    "aws:s3/bucketPolicy:BucketPolicy",
                    "artifacts-org-read",
                    {
                        "bucket": "org-artifacts-1234567",
                        "policy": _doc(
                            {
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::org-artifacts-1234567/*",
                                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
                            }
                        ),
                    },
                    deps={"bucket": [urn("aws:s3/bucket:Bucket", "artifacts")]},
                ),
            )
        ],
    ),
    (
        "an untagged role trusted by one named role",
        lambda resources: [
            add(r)(resources)
            for r in (
                resource(
                    ROLE,
                    "reporting-role",
                    {
                        "name": "reporting",
                        "assumeRolePolicy": _doc(
                            {"Effect": "Allow", "Principal": {"AWS": BROKER_ARN}, "Action": "sts:AssumeRole"}
                        ),
                    },
                    deps={"assumeRolePolicy": [urn(ROLE, "broker-role")]},
                ),
                resource(
                    "aws:iam/rolePolicy:RolePolicy",
                    "reporting-access",
                    {
                        "role": "reporting",
                        "policy": _doc({"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}),
                    },
                    deps={"role": [urn(ROLE, "reporting-role")]},
                ),
            )
        ],
    ),
]


# on the pack's valid stack (tests/policydata/stack.py), as every rule's cases are run there too
MUTATIONS: Mutations = {
    "tenant-data-access": [
        (
            "the tenant role widened to every object in the pool bucket",
            set_input(
                "t-acme-data-access",
                "policy",
                _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"}),
            ),
        ),
        (
            "the tenant role's trust open to every AWS principal",
            add_statement(
                "t-acme-role",
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
                field="assumeRolePolicy",
            ),
        ),
    ]
}


def mutated(design: str, mutation: Mutation) -> Resources:
    resources = tenancy_stack(design)
    mutation(resources)
    return resources


def acme_session_policy_widened() -> Mutation:
    """Only in the session-policy design: the session policy is not what isolates (the role's tag does)."""
    return set_input("t-acme-identity", "policy", _doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))


__all__ = ["CONFIG", "DESIGNS", "LEGITIMATE", "MISSES", "MUTATIONS", "find", "mutated", "tenancy_stack"]
