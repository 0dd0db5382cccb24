"""CostCaps: AWS Budgets for the stack and for every tenant, alerts, and a cap on each tenant's new writes.

The budgets filter on user tags (`meridian:stack`, `meridian:tenant`), which Budgets sees only once
they are activated as cost-allocation tags: this component activates them (and `meridian:cost-center`)
when the stack owns that account-wide setting (`cost.activate_cost_allocation_tags`) and billing has
already seen the keys (`cost.cost_allocation_tags_in_billing`: AWS refuses to activate one it has not).

Alert path: notifications at each configured threshold (actual spend) and at 100 % forecasted,
to a KMS-encrypted SNS topic. Enforcement path: the cap enforcer (components/functions/cap_enforcer.py,
a Lambda function subscribed to that topic and run hourly) tags the KMS keys of every tenant whose
actual spend has reached its budget `meridian:over-budget = true`, in both regions, and removes the
tag once it is under again (a new month). The regions' tenant roles deny data-key generation and
encryption with a key so tagged, and with any key but the tenant's own (components.tenantidentity):
so the capped tenant's new object writes stop (its pods', and the service's on its behalf: 403
`over_budget`), other tenants are untouched. What the cap does not stop: reads and deletes, event
writes (the database), and what keeps costing: stored objects, requests, compute, KMS calls. It
ends new data under the tenant's key, not spend. The same IAM documents for 1 tenant or 1,000: AWS
Budgets actions can only attach an existing managed policy (or an SCP, or stop EC2 / RDS
instances), so a per-tenant cap through them needed a managed policy per tenant, attached to the one
role all tenants share, whose managed-policy quota (10, at most 20) failed the 11th tenant capped at
once. AWS Budgets evaluates spend a few times a day (up to ~24 h behind): the cap comes that late,
which is why the service also enforces plan quotas (429 `quota_exceeded`) on every request. A
failed enforcer run (one key's error does not stop the others) raises at the end, and an alarm on
the function's Errors notifies the alert topic; the providers ignore the enforcer's tag
(components.tagging), so a refresh does not un-cap a tenant.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.functions import cap_enforcer
from components.keys import customer_key
from components.policydocs import assume_role_policy
from components.tagging import TAG_COST_CENTER, TAG_STACK, TAG_TENANT

ENFORCER_SOURCE = Path(cap_enforcer.__file__)
ENFORCER_SCHEDULE = "rate(1 hour)"  # Budgets refreshes spend a few times a day; also the new month's release
ENFORCER_ALARM_PERIOD_S = 3600  # one schedule period: a failed run alarms until a run succeeds
LOG_RETENTION_DAYS = 90
# The tag keys the budgets filter on (and finance reports by): Budgets and Cost Explorer ignore a
# user tag until it is activated as a cost-allocation tag in the (payer) account.
COST_ALLOCATION_TAGS = (TAG_STACK, TAG_TENANT, TAG_COST_CENTER)


def tenant_cost_filter(tenant_id: str) -> dict:
    """Budgets filter on the activated cost-allocation tag `meridian:tenant`."""
    return {"name": "TagKeyValue", "values": [f"user:{TAG_TENANT}${tenant_id}"]}


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
                },
                {
                    "Sid": "EnforcerAlarmPublish",  # the cap enforcer's failure alarm (CostCaps._enforcer)
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "SNS:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
            ],
        }
    )


def enforcer_policy(*, account_id: str, stack: str, regions: Sequence[str], log_group_arn: str) -> str:
    """Read budgets, find the stack's tenant keys by tag, and set or remove only the over-budget tag
    on them (tag keys limited to it, keys limited to this stack's tenant keys); write its own log."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadBudgets",
                    "Effect": "Allow",
                    "Action": "budgets:ViewBudget",
                    "Resource": f"arn:aws:budgets::{account_id}:budget/*",
                },
                {"Sid": "FindTenantKeys", "Effect": "Allow", "Action": "tag:GetResources", "Resource": "*"},  # takes no resource
                {
                    "Sid": "TagTenantKeysOverBudget",
                    "Effect": "Allow",
                    "Action": ["kms:TagResource", "kms:UntagResource"],
                    "Resource": [f"arn:aws:kms:{r}:{account_id}:key/*" for r in regions],
                    "Condition": {
                        "StringEquals": {f"aws:ResourceTag/{TAG_STACK}": stack},
                        "Null": {f"aws:ResourceTag/{TAG_TENANT}": "false"},
                        "ForAllValues:StringEquals": {"aws:TagKeys": [cap_enforcer.OVER_BUDGET_TAG]},
                    },
                },
                {
                    "Sid": "OwnLog",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": f"{log_group_arn}:*",
                },
            ],
        }
    )


@dataclass(frozen=True, kw_only=True)
class TenantBudget:
    tenant_id: str
    monthly_budget_usd: float


def budget_notifications(thresholds_pct: Sequence[int], topic_arn: pulumi.Input[str]) -> list[dict]:
    """Each threshold of actual spend, and 100 % forecasted, to the alert topic (which runs the cap enforcer)."""
    return [
        {
            "comparison_operator": "GREATER_THAN",
            "threshold": t,
            "threshold_type": "PERCENTAGE",
            "notification_type": kind,
            "subscriber_sns_topic_arns": [topic_arn],
        }
        for kind, t in [*(("ACTUAL", t) for t in thresholds_pct), ("FORECASTED", 100)]
    ]


COST_CAPS_TYPE = "meridian:cost:CostCaps"


def tenant_budget_prefix(caps_name: str) -> str:
    """What the cap enforcer of the CostCaps named `caps_name` reads budgets by (its BUDGET_PREFIX)."""
    return f"{caps_name}-tenant-"


def tenant_budget(
    caps_name: str, tenant: TenantBudget, notifications: list[dict], *, opts: pulumi.ResourceOptions
) -> aws.budgets.Budget:
    """A tenant's monthly budget, filtered on its `meridian:tenant` tag. Named after the CostCaps
    `caps_name` (the platform's) whose enforcer reconciles it, whichever stack of the zone holds the
    tenant: the same logical name and inputs in a platform and its cells, so `pulumi state move` moves it."""
    prefix = tenant_budget_prefix(caps_name)
    return aws.budgets.Budget(
        f"{prefix}{tenant.tenant_id}",
        budget_type="COST",
        time_unit="MONTHLY",
        limit_amount=f"{tenant.monthly_budget_usd:.2f}",
        limit_unit="USD",
        cost_filters=[tenant_cost_filter(tenant.tenant_id)],
        notifications=notifications,
        tags={TAG_TENANT: tenant.tenant_id},
        opts=opts,
    )


@dataclass(frozen=True, kw_only=True)
class CostCapsArgs:
    stack: str
    stack_cap_usd: float
    alert_thresholds_pct: Sequence[int]
    tenants: Sequence[TenantBudget]
    home_region: str
    """The provider's region, where the enforcer runs (Budgets is global)."""
    regions: Sequence[str]
    """Where the tenants' keys are: the enforcer tags them in each."""
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
        super().__init__(COST_CAPS_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        key = customer_key(
            f"{name}-alerts-key",
            f"{name}: budget alert notifications",
            parent=self,
            service_principals=["budgets.amazonaws.com", "cloudwatch.amazonaws.com"],
        )
        topic = aws.sns.Topic(f"{name}-alerts", kms_master_key_id=key.id, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account_id).apply(lambda v: _topic_policy(v[0], v[1])),
            opts=pulumi.ResourceOptions(parent=topic),
        )

        # Alert path: each threshold of actual spend, and 100 % forecasted.
        alerts = budget_notifications(args.alert_thresholds_pct, topic.arn)

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
        # A tenant moved in from a cell (`pulumi state move`) arrives with its budget a child of the stack.
        moved_in = pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])
        for tenant in args.tenants:
            self.tenant_budget_names[tenant.tenant_id] = tenant_budget(name, tenant, alerts, opts=moved_in).name

        self._enforcer(name, args, topic, account_id)
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

    def _enforcer(self, name: str, args: CostCapsArgs, topic: aws.sns.Topic, account_id: pulumi.Output[str]) -> None:
        """The cap enforcer: run by every notification of the alert topic (a tenant's budget reaching
        100 % among them) and hourly; it reconciles every tenant budget on each run."""
        child = pulumi.ResourceOptions(parent=self)
        function_name = f"{name}-cap-enforcer"  # the log group must be named after it before it first runs
        log_key = customer_key(
            f"{name}-enforcer-logs-key",
            f"{name}: the cap enforcer's log",
            parent=self,
            service_principals=[f"logs.{args.home_region}.amazonaws.com"],
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-enforcer-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=LOG_RETENTION_DAYS,
            kms_key_id=log_key.arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-enforcer-role",
            description=f"{name}: tags the keys of tenants over budget (components/functions/cap_enforcer.py)",
            assume_role_policy=account_id.apply(lambda a: assume_role_policy("lambda.amazonaws.com", a)),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-enforcer-access",
            role=role.id,
            policy=pulumi.Output.all(account_id, logs.arn).apply(
                lambda v: enforcer_policy(account_id=v[0], stack=args.stack, regions=args.regions, log_group_arn=v[1])
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        function = aws.lambda_.Function(
            f"{name}-enforcer",
            name=function_name,
            description="tenant hard caps: tags the KMS keys of tenants over budget, releases them under it",
            role=role.arn,
            runtime="python3.12",
            architectures=["arm64"],
            handler=f"{ENFORCER_SOURCE.stem}.handler",
            # the source's text, not its path: the plan (and its fingerprint) must not depend on where the checkout is
            code=pulumi.AssetArchive({ENFORCER_SOURCE.name: pulumi.StringAsset(ENFORCER_SOURCE.read_text())}),
            timeout=300,
            memory_size=256,
            # no reserved concurrency: a new account's Lambda concurrency quota can be 10, and AWS refuses any
            # reservation that leaves less than 10 unreserved; reconcile is idempotent, so overlapping runs are harmless
            environment={
                "variables": {"STACK": args.stack, "REGIONS": ",".join(args.regions), "BUDGET_PREFIX": tenant_budget_prefix(name)}
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, policy]),
        )
        aws.lambda_.Permission(
            f"{name}-enforcer-from-alerts",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="sns.amazonaws.com",
            source_arn=topic.arn,
            opts=pulumi.ResourceOptions(parent=function),
        )
        aws.sns.TopicSubscription(
            f"{name}-alerts-to-enforcer",
            topic=topic.arn,
            protocol="lambda",
            endpoint=function.arn,
            opts=pulumi.ResourceOptions(parent=function),
        )
        schedule = aws.cloudwatch.EventRule(
            f"{name}-enforcer-schedule",
            description=f"{name}: reconcile tenant caps hourly (and release them in a new month)",
            schedule_expression=ENFORCER_SCHEDULE,
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-enforcer-from-schedule",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="events.amazonaws.com",
            source_arn=schedule.arn,
            opts=pulumi.ResourceOptions(parent=function),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-enforcer-target", rule=schedule.name, arn=function.arn, opts=pulumi.ResourceOptions(parent=schedule)
        )
        # A run that fails (a key it could not tag, a region it could not list: cap_enforcer.ReconcileIncomplete,
        # or a crash) leaves caps unapplied: the alert topic's subscribers hear of it. (Its notification also
        # runs the enforcer once more, which only reconciles again.)
        aws.cloudwatch.MetricAlarm(
            f"{name}-enforcer-errors",
            alarm_description=f"{name}: the tenant cap enforcer failed; over-budget tenants may be uncapped (see its log)",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": function.name},
            statistic="Sum",
            period=ENFORCER_ALARM_PERIOD_S,
            evaluation_periods=1,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",  # no run in the period is no failure
            alarm_actions=[topic.arn],
            ok_actions=[topic.arn],
            opts=pulumi.ResourceOptions(parent=function),
        )
