"""Cost caps: a budget for the stack and one for every tenant."""

from __future__ import annotations

from typing import Any

from ruleutil import (
    HIGH,
    MEDIUM,
    UNKNOWN,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    judge_each,
    labels_of,
    stack_policy,
    tags_of,
)

BUDGET = "aws:budgets/budget:Budget"
NAMESPACE = "kubernetes:core/v1:Namespace"


def _tag_filters(budget: Any) -> list[str]:
    """`user:<key>$<value>` values of a budget's TagKeyValue cost filters."""
    values = []
    for f in as_list(dig(budget.props, "costFilters")):
        if str(dig(f, "name", default="")) == "TagKeyValue":
            values += [str(v) for v in as_list(dig(f, "values"))]
    return values


def _tenants(stack: Stack, tag: str, label: str) -> tuple[dict[str, Any], list[tuple[str | None, str]]]:
    """Tenant id -> the first resource that names it (where a missing budget is reported), and the
    resources whose tenant tag or label is only known after apply."""
    out: dict[str, Any] = {}
    unverifiable: list[tuple[str | None, str]] = []
    for r in stack.resources:
        if r.resource_type == BUDGET:
            continue
        tenant = (
            labels_of(r.props).get(label)
            if r.resource_type == NAMESPACE
            else (tags_of(r.props).get(tag) if r.resource_type.startswith("aws:") else None)
        )
        if tenant is UNKNOWN:
            unverifiable.append(
                (
                    r.urn,
                    Unverifiable.at(
                        f"tags.{tag}" if r.resource_type != NAMESPACE else f"metadata.labels.{label}", "whose budget?"
                    ),
                )
            )
        elif tenant and tenant not in out:
            out[tenant] = r
    return out, unverifiable


def check_tenant_budgets(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    tag, label = config.get("tenantTag", "meridian:tenant"), config.get("tenantLabel", "meridian.io/tenant")
    covered: set[str] = set()

    def index(budget: Any) -> list[tuple[str | None, str]]:
        covered.update(v.split("$", 1)[1] for v in _tag_filters(budget) if v.startswith(f"user:{tag}$"))
        return []

    out = judge_each(stack.of(BUDGET), index)
    tenants, unverifiable = _tenants(stack, tag, label)
    return (
        out
        + unverifiable
        + [
            (
                r.urn,
                f"Tenant {tenant} must have an AWS Budget filtered on tag `{tag}` = {tenant} (cost filter TagKeyValue user:{tag}${tenant})",
            )
            for tenant, r in sorted(tenants.items())
            if tenant not in covered
        ]
    )


tenant_budgets = stack_policy(
    "budgets-tenant-budget-exists",
    what="Checks that every tenant found in the stack (AWS tag `meridian:tenant`, namespace label `meridian.io/tenant`) has an AWS Budget filtered on its tenant tag",
    why="A tenant without a budget has no alert and no hard-cap action: a runaway tenant spends the platform's margin before anyone notices.",
    reads=[BUDGET],
    check=check_tenant_budgets,
    severity=HIGH,
    config={
        "tenantTag": {
            "type": "string",
            "default": "meridian:tenant",
            "description": "cost-allocation tag naming a resource's tenant",
        },
        "tenantLabel": {
            "type": "string",
            "default": "meridian.io/tenant",
            "description": "Kubernetes label naming a namespace's tenant",
        },
    },
    remediation="Add the tenant to `meridian:tenants` with a `monthly_budget_usd`: components.cost.CostCaps creates its budget "
    "(cost filter TagKeyValue `user:meridian:tenant$<id>`), alerts and the hard-cap action.",
    tags=["cost", "tenancy"],
)


def check_stack_budget(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    tag = config.get("stackTag", "meridian:stack")
    names = {
        tags_of(r.props).get(tag) for r in stack.resources if r.resource_type.startswith("aws:") and r.resource_type != BUDGET
    }
    names -= {None, UNKNOWN}
    unverifiable = []
    for budget in stack.of(BUDGET):
        try:
            filters = _tag_filters(budget)
        except UnknownValueError as exc:
            unverifiable.append((budget.urn, Unverifiable.of(exc, "is it the stack budget?")))
            continue
        stack_filters = [v.split("$", 1)[1] for v in filters if v.startswith(f"user:{tag}$")]
        if stack_filters and (not names or set(stack_filters) & names):
            return []
    if unverifiable:
        return unverifiable
    seen = ", ".join(sorted(names)) or "<stack>"
    return [
        (None, f"The stack must have an AWS Budget filtered on tag `{tag}` = {seen} (cost filter TagKeyValue user:{tag}${seen})")
    ]


stack_budget = stack_policy(
    "budgets-stack-budget-exists",
    what="Checks that the stack has an AWS Budget whose cost filter is the stack's own `meridian:stack` tag",
    why="The stack cap is the platform's spending limit per residency zone; without its budget nobody is alerted as the zone's bill approaches it.",
    reads=[BUDGET],
    check=check_stack_budget,
    severity=MEDIUM,
    config={
        "stackTag": {
            "type": "string",
            "default": "meridian:stack",
            "description": "cost-allocation tag naming a resource's stack",
        }
    },
    remediation="Set `meridian:cost.stack_cap_usd`; components.cost.CostCaps creates the stack budget with alerts at the configured thresholds.",
    tags=["cost"],
)

POLICIES = [tenant_budgets, stack_budget]
