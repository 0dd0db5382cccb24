"""Secrets, images, queues and their resource policies: customer keys, principals of the stack's
own account only (services named, `*` pinned to the account or organisation)."""

from __future__ import annotations

import json

from .base import ACCOUNT, DR, PRIMARY, Builder, Mutations, arn, set_input
from .keys import DR_KEY_ARN, KEY_ARN, PLATFORM_KEY

ORG = "o-meridian123"
FOREIGN = "999999999999"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


KEY_POLICY = doc(
    {
        "Sid": "Account",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    },
    {
        "Sid": "Services",
        "Effect": "Allow",
        "Principal": {"Service": ["logs.us-east-1.amazonaws.com"]},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    },
)


def build(b: Builder) -> None:
    b.add(
        "aws:kms/keyPolicy:KeyPolicy",
        "platform-key-policy",
        {"keyId": "1111-platform", "policy": KEY_POLICY},
        deps={"keyId": [PLATFORM_KEY]},
        tags=False,
    )
    b.add(
        "aws:kms/grant:Grant",
        "platform-key-grant",
        {"keyId": "1111-platform", "granteePrincipal": f"arn:aws:iam::{ACCOUNT}:role/backup", "operations": ["Decrypt"]},
        deps={"keyId": [PLATFORM_KEY]},
        tags=False,
    )
    b.add(
        "aws:secretsmanager/secret:Secret",
        "db-credential",
        {"kmsKeyId": KEY_ARN, "replicas": [{"region": DR, "kmsKeyId": DR_KEY_ARN}]},
    )
    b.add(
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        "db-credential-policy",
        {
            "secretArn": arn("secretsmanager", PRIMARY, "secret:db-credential"),
            "policy": doc(
                {
                    "Sid": "OrgReadersOnly",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}},
                }
            ),
        },
        tags=False,
    )
    b.add("aws:ecr/repository:Repository", "images", {"encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}]})
    b.add("aws:sqs/queue:Queue", "events", {"kmsMasterKeyId": KEY_ARN})
    b.add(
        "aws:sqs/queuePolicy:QueuePolicy",
        "events-policy",
        {
            "queueUrl": f"https://sqs.{PRIMARY}.amazonaws.com/{ACCOUNT}/events",
            "policy": doc(
                {
                    "Sid": "TopicDelivers",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn("sqs", PRIMARY, "events"),
                    "Condition": {"ArnEquals": {"aws:SourceArn": arn("sns", PRIMARY, "alerts")}},
                }
            ),
        },
        tags=False,
    )


MUTATIONS: Mutations = {
    "data-store-customer-key": [
        ("a secret without `kmsKeyId` (the aws/secretsmanager key)", set_input("db-credential", "kmsKeyId", None)),
        ("an ECR repository on AES256", set_input("images", "encryptionConfigurations", [{"encryptionType": "AES256"}])),
        (
            "an SQS queue on SQS-managed SSE",
            lambda rs: [set_input("events", "kmsMasterKeyId", None)(rs), set_input("events", "sqsManagedSseEnabled", True)(rs)],
        ),
        ("a secret replica on the default key", set_input("db-credential", "replicas.0.kmsKeyId", None)),
    ],
    "resource-policy-principals-in-account": [
        (
            "a key policy granting a foreign account",
            set_input(
                "platform-key-policy",
                "policy",
                doc(
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{FOREIGN}:root"},
                        "Action": "kms:Decrypt",
                        "Resource": "*",
                    }
                ),
            ),
        ),
        ("a grant to a foreign role", set_input("platform-key-grant", "granteePrincipal", f"arn:aws:iam::{FOREIGN}:role/x")),
        (
            "a secret policy with `Principal: *`",
            set_input(
                "db-credential-policy",
                "policy",
                doc({"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}),
            ),
        ),
    ],
}
