"""The other tenant identity design: one role per region through EKS Pod Identity (ABAC), tenants
told apart by the `kubernetes-namespace` session tag, associations without a session policy (EKS
takes one only with session tags off); and the reference service's broker, which assumes that
shared role naming one tenant in its own `meridian-tenant` tag (its Pod Identity tags are
inherited, transitively). Each with the bypasses the tenancy rule must catch."""

from __future__ import annotations

import json

from .base import (
    ACCOUNT,
    CONFIG,
    PRIMARY,
    Builder,
    Mutation,
    Resources,
    add,
    add_statement,
    find,
    resource,
    set_input,
    stack_tags,
    together,
    urn,
)
from .stack import valid_stack

NS_VARIABLE = "${aws:PrincipalTag/kubernetes-namespace}"
TENANT_VARIABLE = "${aws:PrincipalTag/meridian-tenant}"
POOL = "arn:aws:s3:::pool-bucket-1234567"
# EKS Pod Identity pinned to the valid stack's cluster (policydata.cluster): tenant-role-isolated requires it
CLUSTER_ARN = f"arn:aws:eks:{PRIMARY}:{ACCOUNT}:cluster/eks"
ABAC_CONFIG = {**CONFIG, "tenant-role-isolated": {"tenantPrefix": "tenants/t-{tenant}/"}}


def abac_stack() -> Resources:
    """The valid stack with acme's IRSA role replaced by a shared pod-identity role that tells
    tenants apart by the `kubernetes-namespace` session tag, and acme's association to it (session
    tags on, no session policy)."""
    resources = [r for r in valid_stack() if r["name"] not in ("t-acme-role", "t-acme-data-access")]
    sa = find(resources, "t-acme-sa")
    sa["inputs"]["metadata"].pop("annotations")
    sa["propertyDependencies"], sa["dependencies"] = {}, []
    for key, ns in (("acme-key", "t-acme"), ("globex-key", "t-globex")):
        find(resources, key)["inputs"]["tags"]["meridian:namespace"] = ns
    b = Builder()
    b.providers = {PRIMARY: urn("pulumi:providers:aws", PRIMARY)}
    pool = POOL
    session = {
        "StringEquals": {"aws:PrincipalTag/eks-cluster-arn": f"arn:aws:eks:{PRIMARY}:{ACCOUNT}:cluster/eks"},
        "StringLike": {"aws:PrincipalTag/kubernetes-namespace": "t-*"},
    }
    role = b.add(
        "aws:iam/role:Role",
        "tenants-role",
        {
            "path": "/meridian/tenants/",
            "assumeRolePolicy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "pods.eks.amazonaws.com"},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                                "ArnEquals": {"aws:SourceArn": CLUSTER_ARN},
                            },
                        }
                    ]
                }
            ),
        },
    )
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "tenants-abac",
        {
            "role": "tenants-role-1234567",
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Sid": "PoolObjects",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": f"{pool}/tenants/{NS_VARIABLE}/*",
                            "Condition": session,
                        },
                        {
                            "Sid": "PoolListing",
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": pool,
                            "Condition": {
                                **session,
                                "StringLike": {**session["StringLike"], "s3:prefix": [f"tenants/{NS_VARIABLE}/*"]},
                            },
                        },
                        {
                            "Sid": "SiloObjects",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": f"arn:aws:s3:::silo-{NS_VARIABLE}/*",
                            "Condition": session,
                        },
                        {
                            "Sid": "OwnKeys",
                            "Effect": "Allow",
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*",
                            "Condition": {"StringEquals": {"aws:ResourceTag/meridian:namespace": NS_VARIABLE}},
                        },
                    ]
                }
            ),
        },
        parent=role,
        deps={"role": [role], "policy": [urn("aws:s3/bucket:Bucket", "pool-bucket")]},
        tags=False,
    )
    b.add(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "t-acme-identity",
        {
            "clusterName": "eks",
            "namespace": "t-acme",
            "serviceAccount": "acme-app",
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/tenants-role-1234567",
        },
        deps={"roleArn": [role]},
        tags=stack_tags(PRIMARY, **{"meridian:tenant": "acme"}),
    )
    return resources + b.resources


def _abac_doc(statement: dict) -> Mutation:
    return add_statement("tenants-abac", statement)


def _session_policy(objects: str) -> str:
    return json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": objects}]})


ABAC_MUTATIONS: list[tuple[str, Mutation]] = [
    (
        "the shared role also trusting an AWS account (which could choose its own session tags)",
        set_input(
            "tenants-role",
            "assumeRolePolicy",
            json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "pods.eks.amazonaws.com", "AWS": f"arn:aws:iam::{ACCOUNT}:role/ci"},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                        }
                    ]
                }
            ),
        ),
    ),
    ("an association with session tags turned off", set_input("t-acme-identity", "disableSessionTags", True)),
    (
        "an association chaining to another role",
        set_input("t-acme-identity", "targetRoleArn", f"arn:aws:iam::{ACCOUNT}:role/other"),
    ),
    (
        "the namespace variable not a whole path segment",
        _abac_doc(
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::pool-bucket-1234567/tenants/*{NS_VARIABLE}/*",
            }
        ),
    ),
    (
        "a tenant prefix wildcard beside the variable",
        _abac_doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/*"}),
    ),
    (
        "every key of the region without the namespace tag condition",
        _abac_doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*"}),
    ),
    ("acme's key tagged with globex's namespace", set_input("acme-key", "tags.meridian:namespace", "t-globex")),
    (
        "acme's session policy reaching globex's prefix, session tags off as EKS demands for a session policy",
        together(
            set_input("t-acme-identity", "disableSessionTags", True),
            set_input("t-acme-identity", "policy", _session_policy(f"{POOL}/tenants/t-globex/*")),
        ),
    ),
    (
        "a session policy on acme's association with session tags left on (EKS refuses it; tags off would erase the tenant)",
        set_input("t-acme-identity", "policy", _session_policy(f"{POOL}/tenants/t-acme/*")),
    ),
    (
        "the shared role carrying the IAM tag meridian-tenant (a pod session would take it as its tenant)",
        set_input("tenants-role", "tags.meridian-tenant", "t-acme"),
    ),
    ("acme's association in globex's namespace", set_input("t-acme-identity", "namespace", "t-globex")),
    (
        "a platform bucket whose name a namespace fills in (silo-t-acme)",
        add(resource("aws:s3/bucket:Bucket", "platform-logs", {"bucket": "silo-t-acme", "tags": stack_tags(PRIMARY)})),
    ),
]


# --- the reference service's broker: assumes the shared tenant role with one tenant's session tags --------

BROKER_ARN = f"arn:aws:iam::{ACCOUNT}:role/service-broker-1234567"
_BROKER_TAGS = {
    "StringLike": {"aws:RequestTag/meridian-tenant": "t-*"},
    "ForAllValues:StringEquals": {"aws:TagKeys": ["meridian-tenant"]},
}
# the broker passing the tags a tenant pod's session carries: STS refuses them (its own Pod Identity
# session has those keys, transitively), and a trust keyed on them names no tenant the broker can set
_POD_TAGS_FROM_BROKER = {
    "StringLike": {"aws:RequestTag/kubernetes-namespace": "t-*"},
    "StringEquals": {"aws:RequestTag/eks-cluster-arn": f"arn:aws:eks:{PRIMARY}:{ACCOUNT}:cluster/eks"},
    "ForAllValues:StringEquals": {"aws:TagKeys": ["kubernetes-namespace", "eks-cluster-arn"]},
}
_BROKERED = {
    "StringEquals": {
        "aws:PrincipalTag/eks-cluster-arn": f"arn:aws:eks:{PRIMARY}:{ACCOUNT}:cluster/eks",
        "aws:PrincipalTag/kubernetes-namespace": "platform",
    },
    "StringLike": {"aws:PrincipalTag/meridian-tenant": "t-*"},
}


def _brokered(statement: dict) -> Mutation:
    """A statement for the broker's sessions: the brokered conditions, plus the statement's own."""
    own = statement.get("Condition", {})
    condition = {op: {**_BROKERED.get(op, {}), **own.get(op, {})} for op in {*_BROKERED, *own}}
    return add_statement("tenants-abac", {**statement, "Condition": condition})


def _brokered_statements() -> list[dict]:
    """The shared role's statements for the broker's sessions: the tenant named by `meridian-tenant`."""
    return [
        {
            "Sid": "BrokeredPoolObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"{POOL}/tenants/{TENANT_VARIABLE}/*",
            "Condition": _BROKERED,
        },
        {
            "Sid": "BrokeredPoolListing",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": POOL,
            "Condition": {**_BROKERED, "StringLike": {**_BROKERED["StringLike"], "s3:prefix": [f"tenants/{TENANT_VARIABLE}/*"]}},
        },
        {
            "Sid": "BrokeredSiloObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:aws:s3:::silo-{TENANT_VARIABLE}/*",
            "Condition": _BROKERED,
        },
        {
            "Sid": "BrokeredOwnKeys",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*",
            "Condition": {
                **_BROKERED,
                "StringEquals": {**_BROKERED["StringEquals"], "aws:ResourceTag/meridian:namespace": TENANT_VARIABLE},
            },
        },
    ]


def _broker_trust(statement: dict | None = None) -> str:
    return json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnEquals": {"aws:SourceArn": CLUSTER_ARN}},
                },
                statement
                or {
                    "Effect": "Allow",
                    "Principal": {"AWS": BROKER_ARN},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": _BROKER_TAGS,
                },
            ]
        }
    )


_DB_SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-app-credential-1234567-AbCdEf"
_DB_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0000aaaa-1111-2222-3333-444455556666"


def broker_stack() -> Resources:
    """The ABAC stack whose shared tenant role also trusts the service's broker role (a pod-identity
    role held only by the service's account in the platform namespace, allowed only sts) naming the
    tenant in `meridian-tenant`, with the role's statements for those brokered sessions."""
    resources = abac_stack()
    b = Builder()
    b.providers = {PRIMARY: urn("pulumi:providers:aws", PRIMARY)}
    broker = b.add(
        "aws:iam/role:Role",
        "service-broker",
        {
            "assumeRolePolicy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "pods.eks.amazonaws.com"},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                            "Condition": {
                                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                                "ArnEquals": {"aws:SourceArn": CLUSTER_ARN},
                            },
                        }
                    ]
                }
            )
        },
    )
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/tenants-role-1234567"
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "service-broker-assume",
        {
            "role": "service-broker-1234567",
            "policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                            "Resource": role_arn,
                            "Condition": _BROKER_TAGS,
                        },
                        # the service's database password (components.tenantidentity.secret_read_policy)
                        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": _DB_SECRET_ARN},
                        {
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": _DB_KEY_ARN,
                            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
                        },
                    ]
                }
            ),
        },
        parent=broker,
        deps={"role": [broker], "policy": [urn("aws:iam/role:Role", "tenants-role")]},
        tags=False,
    )
    b.add(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "service-broker-identity",
        {"clusterName": "eks", "namespace": "platform", "serviceAccount": "meridian-api", "roleArn": BROKER_ARN},
        deps={"roleArn": [broker]},
    )
    for statement in _brokered_statements():
        add_statement("tenants-abac", statement)(resources)
    role = find(resources, "tenants-role")
    role["inputs"]["assumeRolePolicy"] = _broker_trust()
    role["propertyDependencies"] = {**role.get("propertyDependencies", {}), "assumeRolePolicy": [broker]}
    role["dependencies"] = sorted({*role.get("dependencies", []), broker})
    return resources + b.resources


_TENANT_SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:acme-token-1234567-GhIjKl"


def _broker_reads_tenant_secret(resources: Resources) -> None:
    """The broker granted a secret the stack tags as a tenant's, by its exact ARN."""
    secret = resource(
        "aws:secretsmanager/secret:Secret", "acme-token", {"tags": stack_tags(PRIMARY, **{"meridian:tenant": "acme"})}
    )
    resources.append(secret)
    add_statement(
        "service-broker-assume", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": _TENANT_SECRET_ARN}
    )(resources)
    policy = find(resources, "service-broker-assume")
    policy["propertyDependencies"]["policy"] = [*policy["propertyDependencies"]["policy"], secret["urn"]]
    policy["dependencies"] = sorted({*policy["dependencies"], secret["urn"]})


BROKER_MUTATIONS: list[tuple[str, Mutation]] = [
    ("the broker reading a tenant's secret by its exact ARN", _broker_reads_tenant_secret),
    ("the broker associated with a tenant's namespace", set_input("service-broker-identity", "namespace", "t-acme")),
    (
        "the broker allowed tenant data itself",
        add_statement(
            "service-broker-assume",
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"},
        ),
    ),
    (
        "the broker reading every secret",
        add_statement("service-broker-assume", {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}),
    ),
    (
        "the broker reading secrets by a wildcard ARN",
        add_statement(
            "service-broker-assume",
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:*",
            },
        ),
    ),
    (
        "the broker allowed every Secrets Manager action on its secret",
        add_statement("service-broker-assume", {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": _DB_SECRET_ARN}),
    ),
    (
        "the broker reading secrets through NotResource",
        add_statement(
            "service-broker-assume",
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "NotResource": _DB_SECRET_ARN},
        ),
    ),
    (
        "the broker decrypting without kms:ViaService",
        add_statement("service-broker-assume", {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": _DB_KEY_ARN}),
    ),
    (
        "the broker decrypting on S3's behalf",
        add_statement(
            "service-broker-assume",
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": _DB_KEY_ARN,
                "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
            },
        ),
    ),
    (
        "the broker decrypting with every key via Secrets Manager",
        add_statement(
            "service-broker-assume",
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
            },
        ),
    ),
    (
        "the broker trusting an AWS account besides pod identity",
        set_input(
            "service-broker",
            "assumeRolePolicy",
            json.dumps(
                {
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
                    ]
                }
            ),
        ),
    ),
    (
        "the tenant role trusting the broker to pass a tenant pod's own tags (transitive: STS refuses them; no tenant named)",
        set_input(
            "tenants-role",
            "assumeRolePolicy",
            _broker_trust(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": BROKER_ARN},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": _POD_TAGS_FROM_BROKER,
                }
            ),
        ),
    ),
    (
        "a brokered statement reaching every tenant prefix instead of the one its tag names",
        _brokered({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{POOL}/tenants/*"}),
    ),
    (
        "a brokered statement with the tenant variable inside a longer segment (tenants/x<tenant>/)",
        _brokered({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{POOL}/tenants/x{TENANT_VARIABLE}/*"}),
    ),
    (
        "a brokered statement reaching every key of the region, one tenant's tag fixed",
        _brokered(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/*",
                "Condition": {"StringEquals": {"aws:ResourceTag/meridian:namespace": "t-acme"}},
            }
        ),
    ),
    (
        "the tenant role trusting the broker without a meridian-tenant session tag condition",
        set_input(
            "tenants-role",
            "assumeRolePolicy",
            _broker_trust({"Effect": "Allow", "Principal": {"AWS": BROKER_ARN}, "Action": ["sts:AssumeRole", "sts:TagSession"]}),
        ),
    ),
    (
        "the tenant role trusting a principal that is no broker of the stack",
        set_input(
            "tenants-role",
            "assumeRolePolicy",
            _broker_trust(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [BROKER_ARN, f"arn:aws:iam::{ACCOUNT}:role/ci"]},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                    "Condition": _BROKER_TAGS,
                }
            ),
        ),
    ),
]
