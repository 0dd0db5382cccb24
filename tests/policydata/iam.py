"""IAM: a service role and a scoped deploy policy."""

from __future__ import annotations

import json

from .base import ACCOUNT, PRIMARY, Builder, Mutations, add, add_statement, resource, set_input


def build(b: Builder) -> None:
    eks_role = b.add(
        "aws:iam/role:Role",
        "eks-role",
        {
            "assumeRolePolicy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
                }
            )
        },
    )
    b.add(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "eks-role-cluster",
        {"role": "eks-role-1234567", "policyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"},
        parent=eks_role,
        deps={"role": [eks_role]},
        tags=False,
    )
    b.add(
        "aws:iam/policy:Policy",
        "deploy",
        {
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": f"arn:aws:iam::{ACCOUNT}:role/eks-role-1234567",
                        },
                        {
                            "Effect": "Deny",
                            "Action": "*",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}},
                        },
                    ],
                }
            )
        },
    )


MUTATIONS: Mutations = {
    "iam-policy-no-full-admin": [
        ("a policy allowing * on *", add_statement("deploy", {"Effect": "Allow", "Action": "*", "Resource": "*"})),
        (
            "Action * on one specific resource",
            add_statement("deploy", {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::pool-bucket-1234567"}),
        ),
        (
            "an inline role policy with NotAction on *",
            set_input(
                "eks-role",
                "inlinePolicies",
                [
                    {
                        "name": "wide",
                        "policy": json.dumps({"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}),
                    }
                ],
            ),
        ),
    ],
    "iam-policy-no-passrole-wildcard": [
        ("iam:PassRole on every role", add_statement("deploy", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})),
        (
            "iam:PassRole on a role-ARN wildcard",
            add_statement("deploy", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"}),
        ),
        ("iam:* on every resource", add_statement("deploy", {"Effect": "Allow", "Action": ["iam:*"], "Resource": ["*"]})),
    ],
    "iam-principal-no-admin-policy": [
        (
            "AdministratorAccess attached to a workload role",
            set_input("eks-role-cluster", "policyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        ),
        (
            "PowerUserAccess in a role's managed policy list",
            set_input("t-acme-role", "managedPolicyArns", ["arn:aws:iam::aws:policy/PowerUserAccess"]),
        ),
        (
            "AdministratorAccess attached to a user",
            add(
                resource(
                    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
                    "ci-admin",
                    {"user": "ci", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
                )
            ),
        ),
        (
            "IAMFullAccess attached to a group",
            add(
                resource(
                    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
                    "ops-iam",
                    {"group": "ops", "policyArn": "arn:aws:iam::aws:policy/IAMFullAccess"},
                )
            ),
        ),
    ],
    "iam-policy-no-service-wildcard": [
        (
            "s3:* on one bucket",
            add_statement("deploy", {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::pool-bucket-1234567"}),
        ),
        (
            "secretsmanager:* in a role's inline policy",
            set_input(
                "eks-role",
                "inlinePolicies",
                [
                    {
                        "name": "secrets",
                        "policy": json.dumps(
                            {
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "secretsmanager:*",
                                        "Resource": f"arn:aws:secretsmanager:{PRIMARY}:{ACCOUNT}:secret:x",
                                    }
                                ]
                            }
                        ),
                    }
                ],
            ),
        ),
    ],
    "iam-role-trust-restricted": [
        (
            "a role anyone may assume",
            set_input(
                "eks-role",
                "assumeRolePolicy",
                json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
            ),
        ),
        (
            "a role the whole account may assume",
            set_input(
                "eks-role",
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
            "a web-identity trust without a :sub condition",
            set_input(
                "t-acme-role",
                "assumeRolePolicy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/oidc"},
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Condition": {"StringEquals": {"oidc:aud": "sts.amazonaws.com"}},
                            }
                        ]
                    }
                ),
            ),
        ),
    ],
}
