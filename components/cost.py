"""CostCaps: AWS Budgets for the stack and for every tenant, alerts, and a hard cap per tenant.

The budgets filter on user tags (`meridian:stack`, `meridian:tenant`), which Budgets sees only once
they are activated as cost-allocation tags: this component activates them (and `meridian:cost-center`)
when the stack owns that account-wide setting (`cost.activate_cost_allocation_tags`) and billing has
already seen the keys (`cost.cost_allocation_tags_in_billing`: AWS refuses to activate one it has not).

Alert path: notifications at each configured threshold (actual spend) and at 100 % forecasted,
to a KMS-encrypted SNS topic. Enforcement path: at 100 % of a tenant's budget a budget action
attaches the tenant's deny policy to the regions' tenant roles; the deny matches only the tenant's
sessions (its pods' EKS Pod Identity `kubernetes-namespace` tag, and the service's brokered sessions
naming it in `meridian-tenant`), so other tenants sharing the role keep working (no new writes, no new data keys for the capped one). Each attachment counts against the
role's managed-policy quota (10, at most 20): more tenants capped at once than that fail to attach
(docs/tenancy-and-cost.md). AWS Budgets evaluates spend a few times a day: the cap is not real time, which is why the
service also enforces plan quotas (429 `quota_exceeded`) on every request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.keys import customer_key
from components.policydocs import assume_role_policy
from components.tagging import TAG_COST_CENTER, TAG_STACK, TAG_TENANT
from components.tenant import namespace_of
from components.tenantidentity import BROKERED_KEY, NAMESPACE_KEY, TENANT_ROLE_PATH

HARD_CAP_PATH = "/meridian/hard-caps/"  # the budget actions may attach these policies, and only these
# The tag keys the budgets filter on (and finance reports by): Budgets and Cost Explorer ignore a
# user tag until it is activated as a cost-allocation tag in the (payer) account.
COST_ALLOCATION_TAGS = (TAG_STACK, TAG_TENANT, TAG_COST_CENTER)


def tenant_cost_filter(tenant_id: str) -> dict:
    """Budgets filter on the activated cost-allocation tag `meridian:tenant`."""
    return {"name": "TagKeyValue", "values": [f"user:{TAG_TENANT}${tenant_id}"]}


def hard_cap_policy(tenant_id: str) -> str:
    """Denies the writes and key use that grow a tenant's bill, to its own sessions only (its pods', and
    the service's on its behalf); reads keep working."""
    deny = {"Effect": "Deny", "Action": ["s3:PutObject", "kms:GenerateDataKey*", "kms:Encrypt"], "Resource": "*"}
    namespace = namespace_of(tenant_id)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "TenantOverBudget", **deny, "Condition": {"StringEquals": {NAMESPACE_KEY: namespace}}},
                {"Sid": "TenantOverBudgetThroughTheService", **deny, "Condition": {"StringEquals": {BROKERED_KEY: namespace}}},
            ],
        }
    )


def _topic_policy(topic_arn: str, account_id: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "BudgetsPublish",
                    "Effect": "Allow",
                    "Principal": {"Service": "budgets.amazonaws.com"},
                    "Action": "SNS:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        }
    )


def _action_role_policy(account_id: str) -> str:
    """The budget actions may attach and detach the hard-cap policies, on tenant roles only
    (both by IAM path: listing every ARN would outgrow the inline-policy size limit)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                    "Resource": f"arn:aws:iam::{account_id}:role{TENANT_ROLE_PATH}*",
                    "Condition": {"ArnLike": {"iam:PolicyARN": f"arn:aws:iam::{account_id}:policy{HARD_CAP_PATH}*"}},
                }
            ],
        }
    )


@dataclass(frozen=True, kw_only=True)
class TenantBudget:
    tenant_id: str
    monthly_budget_usd: float
    role_names: Sequence[pulumi.Input[str]]


@dataclass(frozen=True, kw_only=True)
class CostCapsArgs:
    stack: str
    stack_cap_usd: float
    alert_thresholds_pct: Sequence[int]
    tenants: Sequence[TenantBudget]
    activate_cost_allocation_tags: bool = False
    """Account-wide: exactly one stack per account owns the activation (a second would fight it, and
    destroying either would deactivate the tags under the other's budgets), and only once billing
    has seen the keys (a new account's first `up` would fail on them)."""

    def __post_init__(self) -> None:
        if any(not 0 < t <= 100 for t in self.alert_thresholds_pct):
            raise ValueError(f"alert thresholds must be percentages in (0, 100], got {list(self.alert_thresholds_pct)}")
        total = sum(t.monthly_budget_usd for t in self.tenants)
        if total > self.stack_cap_usd:
            raise ValueError(f"tenant budgets sum to {total:.2f}, over the stack cap {self.stack_cap_usd:.2f}")


class CostCaps(pulumi.ComponentResource):
    activated_tags: list[pulumi.Output[str]]
    alert_topic_arn: pulumi.Output[str]
    stack_budget_name: pulumi.Output[str]
    tenant_budget_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: CostCapsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:cost:CostCaps", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        key = customer_key(
            f"{name}-alerts-key", f"{name}: budget alert notifications", parent=self, service_principals=["budgets.amazonaws.com"]
        )
        topic = aws.sns.Topic(f"{name}-alerts", kms_master_key_id=key.id, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account_id).apply(lambda v: _topic_policy(v[0], v[1])),
            opts=pulumi.ResourceOptions(parent=topic),
        )

        # Alert path: each threshold of actual spend, and 100 % forecasted.
        alerts = [
            {
                "comparison_operator": "GREATER_THAN",
                "threshold": t,
                "threshold_type": "PERCENTAGE",
                "notification_type": kind,
                "subscriber_sns_topic_arns": [topic.arn],
            }
            for kind, t in [*(("ACTUAL", t) for t in args.alert_thresholds_pct), ("FORECASTED", 100)]
        ]

        stack_budget = aws.budgets.Budget(
            f"{name}-stack",
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=f"{args.stack_cap_usd:.2f}",
            limit_unit="USD",
            cost_filters=[{"name": "TagKeyValue", "values": [f"user:{TAG_STACK}${args.stack}"]}],
            notifications=alerts,
            opts=child,
        )

        action_role = aws.iam.Role(
            f"{name}-budget-actions",
            assume_role_policy=account_id.apply(lambda a: assume_role_policy("budgets.amazonaws.com", a)),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-budget-actions-policy",
            role=action_role.id,
            policy=account_id.apply(_action_role_policy),
            opts=pulumi.ResourceOptions(parent=action_role),
        )

        # Without these the tag-filtered budgets below see $0 and never alert or act.
        self.activated_tags = []
        if args.activate_cost_allocation_tags:
            for key in COST_ALLOCATION_TAGS:
                self.activated_tags.append(
                    aws.costexplorer.CostAllocationTag(
                        f"{name}-tag-{key.replace(':', '-')}",
                        tag_key=key,
                        status="Active",
                        opts=child,
                    ).tag_key
                )

        self.tenant_budget_names = {}
        for tenant in args.tenants:
            budget = aws.budgets.Budget(
                f"{name}-tenant-{tenant.tenant_id}",
                budget_type="COST",
                time_unit="MONTHLY",
                limit_amount=f"{tenant.monthly_budget_usd:.2f}",
                limit_unit="USD",
                cost_filters=[tenant_cost_filter(tenant.tenant_id)],
                notifications=alerts,
                tags={TAG_TENANT: tenant.tenant_id},
                opts=child,
            )
            deny = aws.iam.Policy(
                f"{name}-tenant-{tenant.tenant_id}-hard-cap",
                path=HARD_CAP_PATH,
                description=f"attached by a budget action when tenant {tenant.tenant_id} is over budget",
                policy=hard_cap_policy(tenant.tenant_id),
                tags={TAG_TENANT: tenant.tenant_id},
                opts=pulumi.ResourceOptions(parent=budget),
            )
            aws.budgets.BudgetAction(
                f"{name}-tenant-{tenant.tenant_id}-cap",
                budget_name=budget.name,
                action_type="APPLY_IAM_POLICY",
                approval_model="AUTOMATIC",
                notification_type="ACTUAL",
                execution_role_arn=action_role.arn,
                action_threshold={"action_threshold_type": "PERCENTAGE", "action_threshold_value": 100},
                definition={"iam_action_definition": {"policy_arn": deny.arn, "roles": list(tenant.role_names)}},
                subscribers=[{"address": topic.arn, "subscription_type": "SNS"}],
                tags={TAG_TENANT: tenant.tenant_id},
                opts=pulumi.ResourceOptions(parent=budget),
            )
            self.tenant_budget_names[tenant.tenant_id] = budget.name

        self.alert_topic_arn = topic.arn
        self.stack_budget_name = stack_budget.name
        self.register_outputs(
            {
                "alert_topic_arn": self.alert_topic_arn,
                "stack_budget_name": self.stack_budget_name,
                "tenant_budget_names": self.tenant_budget_names,
                "activated_tags": self.activated_tags,
            }
        )
