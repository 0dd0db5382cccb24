"""Budgets: the stack's and each tenant's."""

from __future__ import annotations

import json

from .base import ACCOUNT, STACK, Builder, Mutations, drop, set_input, urn

TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:budget-alerts"  # the enforcer's topic, by the ARN its subscription carries
# where the budgets capped by an action send their alerts: a topic no function of the stack runs (a budget
# naming TOPIC_ARN is capped by the enforcer by value, whatever its action)
PEOPLE_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:budget-alerts-oncall"
HARD_CAP = urn("aws:iam/policy:Policy", "hard-cap")
TENANT_ROLE = urn("aws:iam/role:Role", "t-acme-role")  # tenancy's tenant role, auto-named `t-acme-role-<7 hex>`
DENY_WRITES = {"Effect": "Deny", "Action": ["s3:PutObject", "kms:GenerateDataKey*"], "Resource": "*"}
ENFORCER_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:cap-enforcer"
TOPIC = urn("aws:sns/topic:Topic", "alerts")  # operations.py's alert topic (KMS-encrypted)
BUDGETS_PUBLISH = {
    "Effect": "Allow",
    "Principal": {"Service": "budgets.amazonaws.com"},
    "Action": "SNS:Publish",
    "Resource": TOPIC_ARN,
    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
}


def build(b: Builder) -> None:
    b.add(
        "aws:iam/policy:Policy",
        "hard-cap",
        {"name": "hard-cap", "policy": json.dumps({"Version": "2012-10-17", "Statement": [DENY_WRITES]})},
    )
    for name, tag in (
        ("stack", f"user:meridian:stack${STACK}"),
        ("tenant-acme", "user:meridian:tenant$acme"),
        ("tenant-globex", "user:meridian:tenant$globex"),
        ("tenant-initech", "user:meridian:tenant$initech"),  # capped by the enforcer, not by a budget action
    ):
        b.add(
            "aws:budgets/budget:Budget",
            f"budget-{name}",
            {
                "budgetType": "COST",
                "timeUnit": "MONTHLY",
                "limitAmount": "1000.00",
                "limitUnit": "USD",
                "costFilters": [{"name": "TagKeyValue", "values": [tag]}],
                "notifications": [
                    {
                        "comparisonOperator": "GREATER_THAN",
                        "threshold": t,
                        "thresholdType": "PERCENTAGE",
                        "notificationType": "ACTUAL",
                        "subscriberSnsTopicArns": [TOPIC_ARN if name in ("stack", "tenant-initech") else PEOPLE_ARN],
                    }
                    for t in (50, 80, 100)
                ],
            },
            deps={"notifications": [TOPIC]} if name == "tenant-initech" else None,
        )
        if name.startswith("tenant-") and name != "tenant-initech":
            b.add(
                "aws:budgets/budgetAction:BudgetAction",
                f"budget-{name}-cap",
                {
                    "budgetName": f"budget-{name}",
                    "actionType": "APPLY_IAM_POLICY",
                    "approvalModel": "AUTOMATIC",
                    "notificationType": "ACTUAL",
                    "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/budget-actions",
                    "actionThreshold": {"actionThresholdType": "PERCENTAGE", "actionThresholdValue": 100},
                    "definition": {
                        "iamActionDefinition": {
                            "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/meridian/hard-cap",
                            "roles": ["t-acme-role-1a2b3c4"],
                        }
                    },
                    "subscribers": [{"address": TOPIC_ARN, "subscriptionType": "SNS"}],
                },
                deps={"budgetName": [urn("aws:budgets/budget:Budget", f"budget-{name}")], "definition": [HARD_CAP, TENANT_ROLE]},
            )

    function = b.add(
        "aws:lambda/function:Function",
        "cap-enforcer",
        {
            "name": "cap-enforcer",
            "runtime": "python3.12",
            "handler": "cap_enforcer.handler",
            "role": f"arn:aws:iam::{ACCOUNT}:role/x",
        },
    )
    b.add(
        "aws:sns/topicSubscription:TopicSubscription",
        "alerts-to-enforcer",
        {"topic": TOPIC_ARN, "protocol": "lambda", "endpoint": ENFORCER_ARN},
        deps={"topic": [TOPIC], "endpoint": [function]},
    )
    # what lets a budget's notification pass: Budgets may publish to the topic, SNS may invoke the function
    b.add(
        "aws:sns/topicPolicy:TopicPolicy",
        "alerts-policy",
        {"arn": TOPIC_ARN, "policy": json.dumps({"Version": "2012-10-17", "Statement": [BUDGETS_PUBLISH]})},
        deps={"arn": [TOPIC]},
        tags=False,
    )
    b.add(
        "aws:lambda/permission:Permission",
        "enforcer-from-alerts",
        {"action": "lambda:InvokeFunction", "function": "cap-enforcer", "principal": "sns.amazonaws.com", "sourceArn": TOPIC_ARN},
        deps={"function": [function], "sourceArn": [TOPIC]},
        tags=False,
    )


MUTATIONS: Mutations = {
    "budgets-tenant-budget-exists": [
        ("a tenant without a budget", drop("budget-tenant-globex")),
    ],
    "budgets-limit-and-cap-enforced": [
        ("a tenant budget of 1e9", set_input("budget-tenant-acme", "limitAmount", "1000000000.00")),
        ("a tenant budget without its enforcing action", drop("budget-tenant-globex-cap")),
        ("a hard cap that waits for manual approval", set_input("budget-tenant-acme-cap", "approvalModel", "MANUAL")),
        ("a stack budget that alerts nobody", set_input("budget-stack", "notifications", [])),
        ("a budget counted per year", set_input("budget-stack", "timeUnit", "ANNUALLY")),
        ("a tenant budget whose topic runs no enforcer", drop("alerts-to-enforcer")),
        ("an enforcer reached by e-mail, which runs nothing", set_input("alerts-to-enforcer", "protocol", "email")),
        ("an enforcer SNS may not invoke", drop("enforcer-from-alerts")),
        ("a topic AWS Budgets may not publish to", drop("alerts-policy")),
        (
            "an enforcer notified only past the limit",
            set_input(
                "budget-tenant-initech",
                "notifications",
                [
                    {
                        "comparisonOperator": "GREATER_THAN",
                        "threshold": 150,
                        "thresholdType": "PERCENTAGE",
                        "notificationType": "ACTUAL",
                        "subscriberSnsTopicArns": [TOPIC_ARN],
                    }
                ],
            ),
        ),
        (
            "a hard cap attached to nobody",
            set_input("budget-tenant-acme-cap", "definition.iamActionDefinition.roles", []),
        ),
        (
            "a hard cap attached to a role the stack does not have",
            set_input("budget-tenant-acme-cap", "definition.iamActionDefinition.roles", ["someone-else"]),
        ),
        (
            "a hard cap whose policy allows instead of denying",
            set_input(
                "hard-cap",
                "policy",
                json.dumps({"Version": "2012-10-17", "Statement": [{**DENY_WRITES, "Effect": "Allow"}]}),
            ),
        ),
        (
            "a hard cap applying an AWS managed policy that grants (ReadOnlyAccess)",
            set_input(
                "budget-tenant-acme-cap", "definition.iamActionDefinition.policyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess"
            ),
        ),
    ],
    "budgets-stack-budget-exists": [
        ("the stack budget removed", drop("budget-stack")),
    ],
}
