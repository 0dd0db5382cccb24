"""Who hears about the stack and what watches the account: budgets per stack and per tenant, the
subscribers every alert topic delivers to, and the account's runtime guardrails (Access Analyzers,
the S3 public access block).

Plain functions over the components, no component of their own (see components.regionbase).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.alerts import AlertSubscriptions, AlertSubscriptionsArgs, AlertTopic, Subscriber
from components.cost import COST_CAPS_TYPE, CostCaps, CostCapsArgs, TenantBudget, budget_notifications, tenant_budget
from components.failover import METRICS_REGION, Failover
from components.guardrails import AccountGuardrails, AccountGuardrailsArgs
from components.region import Region
from components.regionbase import ROLES, Role
from components.tagging import regional_provider
from stackconfig import AlertSettings, CostSettings, GuardrailSettings, TenantSpec


def cost_caps_name(stack: str) -> str:
    return f"{stack}-cost"


def compose_cost_caps(
    stack: str, settings: CostSettings, tenants: Sequence[TenantSpec], regions: Mapping[Role, Region]
) -> CostCaps:
    """The stack's budget and one per tenant; a tenant over budget gets its keys in both regions tagged
    over budget by the cap enforcer, which the tenant roles deny writes with."""
    return CostCaps(
        cost_caps_name(stack),
        CostCapsArgs(
            stack=stack,
            stack_cap_usd=settings.stack_cap_usd,
            alert_thresholds_pct=settings.alert_thresholds_pct,
            activate_cost_allocation_tags=settings.activates_tags,
            tenants=[TenantBudget(tenant_id=t.id, monthly_budget_usd=t.monthly_budget_usd) for t in tenants],
            home_region=regions["primary"].region,
            regions=[regions[role].region for role in ROLES],
        ),
        # AWS Budgets is a global service; it is managed through the primary region's provider.
        opts=pulumi.ResourceOptions(providers={"aws": regions["primary"].provider}),
    )


def compose_cell_budgets(
    platform: str,
    settings: CostSettings,
    tenants: Sequence[TenantSpec],
    *,
    alerts_topic_arn: pulumi.Input[str],
    provider,
) -> dict[str, pulumi.Output[str]]:
    """A cell's tenant budgets: the platform's CostCaps's per-tenant part, notifying the platform's
    alert topic and named under its enforcer's prefix, so the platform's cap enforcer reconciles them
    (and finds the tenants' keys by the platform's stack tag, which a cell's resources carry). Named
    as the platform names its own; a child of the cell's stack where the platform's are its CostCaps's."""
    notifications = budget_notifications(settings.alert_thresholds_pct, alerts_topic_arn)
    caps = cost_caps_name(platform)
    opts = pulumi.ResourceOptions(
        provider=provider,  # Budgets is global: the primary region's provider
        aliases=[pulumi.Alias(parent=pulumi.create_urn(caps, COST_CAPS_TYPE))],  # a tenant moved in from the platform
    )
    return {
        t.id: tenant_budget(
            caps,
            TenantBudget(tenant_id=t.id, monthly_budget_usd=t.monthly_budget_usd),
            notifications,
            opts=opts,
        ).name
        for t in tenants
    }


def compose_alerts(
    stack: str, settings: AlertSettings, *, failover: Failover, cost_caps: CostCaps, regions: Mapping[Role, Region]
) -> AlertSubscriptions:
    """Alerts go somewhere: every alert topic delivers to the configured subscribers."""
    return AlertSubscriptions(
        f"{stack}-alerts",
        AlertSubscriptionsArgs(
            topics=[
                AlertTopic(role="failover", topic_arn=failover.alarm_topic_arn, provider=regional_provider(METRICS_REGION)),
                AlertTopic(role="budgets", topic_arn=cost_caps.alert_topic_arn, provider=regions["primary"].provider),
            ],
            subscribers=[Subscriber(protocol=s.protocol, endpoint=s.endpoint, region=s.region) for s in settings.subscriptions],
            provider_of=regional_provider,
        ),
    )


def compose_guardrails(
    stack: str, owns: bool, regions: Mapping[Role, Region], settings: GuardrailSettings
) -> list[AccountGuardrails]:
    """The account's guardrails in each region of the pair (the public access block in the primary),
    when this stack owns them; none otherwise (another stack of the account does). The Access
    Analyzers only where the account has none of its own (`settings.access_analyzer`)."""
    if not owns:
        return []
    return [
        AccountGuardrails(
            f"{stack}-{regions[role].region}-guardrails",
            AccountGuardrailsArgs(
                stack=stack,
                region=regions[role].region,
                account_public_access_block=role == "primary",
                create_access_analyzers=settings.access_analyzer == "create",
            ),
            opts=pulumi.ResourceOptions(providers={"aws": regions[role].provider}),
        )
        for role in ROLES
    ]
