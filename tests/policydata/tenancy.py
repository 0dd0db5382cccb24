"""Two tenants: acme's namespace fenced and bounded, its IRSA role reaching its prefix and key
only, its workload; globex's namespace and key, so isolation has something to get wrong; the
mutations of the tenancy and workload rules."""

from __future__ import annotations

import json

from .base import (
    ACCOUNT,
    DELETE,
    K8S,
    PRIMARY,
    Builder,
    Mutation,
    Mutations,
    add,
    add_statement,
    drop,
    find,
    resource,
    set_input,
    stack_tags,
    together,
    urn,
)
from .keys import ACME_KEY, ACME_KEY_ARN
from .storage import POOL


def build(b: Builder) -> None:
    ns = b.add(
        "kubernetes:core/v1:Namespace",
        "t-acme-ns",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "t-acme",
                "labels": {
                    "meridian.io/tenant": "acme",
                    "meridian.io/plan": "pro",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            },
        },
        region=None,
        provider=K8S,
    )
    meta = {"namespace": "t-acme", "labels": {"meridian.io/tenant": "acme"}}
    b.add(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "t-acme-default-deny",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {**meta, "name": "default-deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        region=None,
        provider=K8S,
        parent=ns,
    )
    b.add(
        "kubernetes:core/v1:ResourceQuota",
        "t-acme-quota",
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {**meta, "name": "plan-quota"},
            "spec": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "40"}},
        },
        region=None,
        provider=K8S,
        parent=ns,
    )
    oidc = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
    role = b.add(
        "aws:iam/role:Role",
        "t-acme-role",
        {
            "path": "/meridian/tenants/",
            "assumeRolePolicy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc}"},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{oidc}:sub": "system:serviceaccount:t-acme:acme-app",
                                    f"{oidc}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                }
            ),
        },
        tags=stack_tags(PRIMARY, **{"meridian:tenant": "acme"}),
    )
    b.add(
        "aws:iam/rolePolicy:RolePolicy",
        "t-acme-data-access",
        {
            "role": "t-acme-role-1234567",
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "TenantObjects",
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/acme/*",
                        },
                        {
                            "Sid": "TenantListing",
                            "Effect": "Allow",
                            "Action": "s3:ListBucket",
                            "Resource": "arn:aws:s3:::pool-bucket-1234567",
                            "Condition": {"StringLike": {"s3:prefix": ["tenants/acme/*"]}},
                        },
                        {
                            "Sid": "TenantKey",
                            "Effect": "Allow",
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            "Resource": ACME_KEY_ARN,
                        },
                    ],
                }
            ),
        },
        parent=role,
        deps={"role": [role], "policy": [POOL, ACME_KEY]},
        tags=False,
    )
    b.add(
        "kubernetes:core/v1:ServiceAccount",
        "t-acme-sa",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                **meta,
                "name": "acme-app",
                "annotations": {
                    "eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/t-acme-role-1234567"
                },
            },
        },
        region=None,
        provider=K8S,
        parent=ns,
        deps={"metadata": [role]},
    )
    b.add(
        "kubernetes:apps/v1:Deployment",
        "t-acme-app",
        {
            "metadata": {**meta, "name": "app"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "acme"}},
                "template": {
                    "metadata": {"labels": {"app": "acme"}},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "serviceAccountName": "acme-app",
                        "containers": [
                            {
                                "name": "app",
                                "image": "registry.example.com/app:1",
                                "ports": [{"containerPort": 8080}],
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
        region=None,
        provider=K8S,
        parent=ns,
    )
    # a second tenant's key, so isolation has something to get wrong
    b.add(
        "kubernetes:core/v1:Namespace",
        "t-globex-ns",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "t-globex",
                "labels": {"meridian.io/tenant": "globex", "pod-security.kubernetes.io/enforce": "restricted"},
            },
        },
        region=None,
        provider=K8S,
    )
    gmeta = {"namespace": "t-globex", "labels": {"meridian.io/tenant": "globex"}}
    b.add(
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "t-globex-default-deny",
        {"metadata": {**gmeta, "name": "default-deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        region=None,
        provider=K8S,
    )
    b.add(
        "kubernetes:core/v1:ResourceQuota",
        "t-globex-quota",
        {"metadata": {**gmeta, "name": "plan-quota"}, "spec": {"hard": {"pods": "20"}}},
        region=None,
        provider=K8S,
    )


def _add_wide_policy() -> Mutation:
    """An in-stack managed policy `wide` reaching every object of the pool bucket (to attach to a tenant role)."""
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"}
    return add(resource("aws:iam/policy:Policy", "wide", {"policy": json.dumps({"Statement": [statement]})}))


MUTATIONS: Mutations = {
    "tenant-role-isolated": [
        (
            "the tenant role widened to every object in the bucket",
            set_input(
                "t-acme-data-access",
                "policy",
                json.dumps(
                    {
                        "Statement": [
                            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"}
                        ]
                    }
                ),
            ),
        ),
        (
            "the tenant role widened to Resource *",
            add_statement("t-acme-data-access", {"Effect": "Allow", "Action": ["s3:*", "kms:Decrypt"], "Resource": "*"}),
        ),
        (
            "the tenant role reaching another tenant's key",
            lambda rs: find(rs, "t-acme-data-access")["propertyDependencies"]["policy"].append(
                urn("aws:kms/key:Key", "globex-key")
            ),
        ),
        (
            "listing the whole shared bucket",
            add_statement(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::pool-bucket-1234567"},
            ),
        ),
        (
            "the role assumable from another tenant's namespace",
            set_input(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Principal": {"Federated": "x"},
                                "Condition": {"StringLike": {"oidc:sub": "system:serviceaccount:t-*:*"}},
                            }
                        ]
                    }
                ),
            ),
        ),
        ("another tenant's service account using the role", set_input("t-acme-sa", "metadata.namespace", "t-globex")),
        (
            "AmazonS3FullAccess attached to the tenant role",
            add(
                resource(
                    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                    "t-acme-s3full",
                    {"role": "t-acme-role-1234567", "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
                    deps={"role": [urn("aws:iam/role:Role", "t-acme-role")]},
                )
            ),
        ),
        (
            "an inline role policy on every bucket (arn:aws:s3:::*)",
            set_input(
                "t-acme-role",
                "inlinePolicies",
                [
                    {
                        "name": "all",
                        "policy": json.dumps(
                            {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"}]}
                        ),
                    }
                ],
            ),
        ),
        (
            "wildcards in the region and account segments (arn:aws:s3:*:*:*)",
            add_statement("t-acme-data-access", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:*:*:*"}),
        ),
        (
            "a wildcard partition (arn:*:s3:::pool/*)",
            add_statement(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:*:s3:::pool-bucket-1234567/*"},
            ),
        ),
        (
            "a wildcard service (arn:aws:*:*:*:*)",
            add_statement("t-acme-data-access", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:*:*:*:*"}),
        ),
        (
            "another tenant's key named by a literal ARN",
            add_statement(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/4444-globex"},
            ),
        ),
        (
            "a key named by an alias",
            add_statement(
                "t-acme-data-access",
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:alias/globex"},
            ),
        ),
        (
            "listing under a negated prefix condition",
            add_statement(
                "t-acme-data-access",
                {
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::pool-bucket-1234567",
                    "Condition": {"StringNotLike": {"s3:prefix": ["tenants/acme/*"]}},
                },
            ),
        ),
        (
            "secretsmanager:* on *",
            add_statement("t-acme-data-access", {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}),
        ),
        (
            "sts:AssumeRole on *",
            add_statement("t-acme-data-access", {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
        ),
        (
            "a trust policy open to every AWS principal",
            set_input(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
            ),
        ),
        (
            "a web-identity trust without a :sub condition",
            set_input(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc"},
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Condition": {"StringEquals": {"oidc:aud": "sts.amazonaws.com"}},
                            }
                        ]
                    }
                ),
            ),
        ),
        (
            "a PolicyAttachment giving the tenant role an in-stack policy reaching all objects",
            together(
                _add_wide_policy(),
                add(
                    resource(
                        "aws:iam/policyAttachment:PolicyAttachment",
                        "wide-to-acme",
                        {"roles": ["t-acme-role-1234567"], "policyArn": "arn:aws:iam::123456789012:policy/wide"},
                        deps={
                            "roles": [urn("aws:iam/role:Role", "t-acme-role")],
                            "policyArn": [urn("aws:iam/policy:Policy", "wide")],
                        },
                    )
                ),
            ),
        ),
        (
            "a RolePolicyAttachment giving the tenant role an in-stack policy reaching all objects",
            together(
                _add_wide_policy(),
                add(
                    resource(
                        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                        "wide-to-acme",
                        {"role": "t-acme-role-1234567", "policyArn": "arn:aws:iam::123456789012:policy/wide"},
                        deps={
                            "role": [urn("aws:iam/role:Role", "t-acme-role")],
                            "policyArn": [urn("aws:iam/policy:Policy", "wide")],
                        },
                    )
                ),
            ),
        ),
        (
            "AmazonS3FullAccess in the tenant role's managedPolicyArns",
            set_input("t-acme-role", "managedPolicyArns", ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]),
        ),
        ("dynamodb:* on *", add_statement("t-acme-data-access", {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})),
        (
            "an untagged workload role reaching every tenant's prefix",
            together(
                add(
                    resource(
                        "aws:iam/role:Role",
                        "reporting-role",
                        {
                            "assumeRolePolicy": json.dumps(
                                {
                                    "Statement": [
                                        {
                                            "Effect": "Allow",
                                            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc"},
                                            "Action": "sts:AssumeRoleWithWebIdentity",
                                            "Condition": {"StringEquals": {"oidc:sub": "system:serviceaccount:platform:reports"}},
                                        }
                                    ]
                                }
                            ),
                            "tags": stack_tags(PRIMARY),
                        },
                    )
                ),
                add(
                    resource(
                        "aws:iam/rolePolicy:RolePolicy",
                        "reporting-read",
                        {
                            "role": "reporting-role-1234567",
                            "policy": json.dumps(
                                {
                                    "Statement": [
                                        {
                                            "Effect": "Allow",
                                            "Action": "s3:GetObject",
                                            "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/*",
                                        }
                                    ]
                                }
                            ),
                        },
                        deps={"role": [urn("aws:iam/role:Role", "reporting-role")]},
                    )
                ),
            ),
        ),
        (
            "the tenant's service account naming another account's role through IRSA",
            set_input(
                "t-acme-sa", "metadata.annotations", {"eks.amazonaws.com/role-arn": "arn:aws:iam::999988887777:role/reader"}
            ),
        ),
    ],
    "tenant-namespace-guarded": [
        ("a tenant namespace without its default-deny NetworkPolicy", drop("t-acme-default-deny")),
        ("a default deny that only covers ingress", set_input("t-globex-default-deny", "spec.policyTypes", ["Ingress"])),
        ("a tenant namespace without a ResourceQuota", drop("t-globex-quota")),
        (
            "an extra allow-all NetworkPolicy beside the default deny",
            add(
                {
                    "urn": urn("kubernetes:networking.k8s.io/v1:NetworkPolicy", "t-acme-allow-all"),
                    "type": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                    "name": "t-acme-allow-all",
                    "parent": None,
                    "provider": K8S,
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "metadata": {"namespace": "t-acme", "name": "allow-all"},
                        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]},
                    },
                }
            ),
        ),
        (
            "egress to 0.0.0.0/0 without excepting the pods' private ranges",
            add(
                {
                    "urn": urn("kubernetes:networking.k8s.io/v1:NetworkPolicy", "t-acme-egress"),
                    "type": "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                    "name": "t-acme-egress",
                    "parent": None,
                    "provider": K8S,
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "metadata": {"namespace": "t-acme", "name": "egress"},
                        "spec": {
                            "podSelector": {},
                            "policyTypes": ["Egress"],
                            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
                        },
                    },
                }
            ),
        ),
    ],
    "k8s-workload-pod-security-restricted": [
        ("a privileged container", set_input("t-acme-app", "spec.template.spec.containers.0.securityContext.privileged", True)),
        ("host networking", set_input("t-acme-app", "spec.template.spec.hostNetwork", True)),
        (
            "a hostPath volume",
            set_input(
                "t-acme-app", "spec.template.spec.volumes", [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]
            ),
        ),
        (
            "running as root (UID 0, runAsNonRoot dropped)",
            together(
                set_input("t-acme-app", "spec.template.spec.securityContext.runAsNonRoot", DELETE),
                set_input("t-acme-app", "spec.template.spec.securityContext.runAsUser", 0),
            ),
        ),
        (
            "a bare Pod with privilege escalation left on",
            add(
                {
                    "urn": urn("kubernetes:core/v1:Pod", "debug"),
                    "type": "kubernetes:core/v1:Pod",
                    "name": "debug",
                    "parent": None,
                    "provider": K8S,
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "metadata": {"namespace": "platform", "name": "debug"},
                        "spec": {
                            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [
                                {"name": "sh", "image": "busybox", "securityContext": {"capabilities": {"drop": ["ALL"]}}}
                            ],
                        },
                    },
                }
            ),
        ),
    ],
}
