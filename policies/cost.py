"""Cost caps: a budget for the stack and one for every tenant."""

from __future__ import annotations

import re
from typing import Any

from iamdoc import parse
from ruleutil import (
    HIGH,
    MEDIUM,
    UNKNOWN,
    InPlatform,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    judge_each,
    labels_of,
    peek,
    platform_stack_setting,
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
    limits="A budget's limit, alerts and enforcement are judged by budgets-limit-and-cap-enforced; a tenant known only at runtime has no resource to find.",
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
        (
            None,
            InPlatform.note(
                config,
                f"The stack must have an AWS Budget filtered on tag `{tag}` = {seen} (cost filter TagKeyValue user:{tag}${seen})",
            ),
        )
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
        },
        **platform_stack_setting(),
    },
    remediation="Set `meridian:cost.stack_cap_usd`; components.cost.CostCaps creates the stack budget with alerts at the configured thresholds.",
    limits="The budget's limit against the cap is judged by budgets-limit-and-cap-enforced.",
    tags=["cost"],
)

BUDGET_ACTION = "aws:budgets/budgetAction:BudgetAction"
ENFORCING_ACTIONS = ("APPLY_IAM_POLICY", "APPLY_SCP_POLICY", "RUN_SSM_DOCUMENTS")
TOPIC = "aws:sns/topic:Topic"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
FUNCTION = "aws:lambda/function:Function"


def _enforcer_subscriptions(stack: Stack) -> list[Any]:
    """SNS subscriptions (protocol `lambda`) that run a function of the stack for every message of a topic of the stack."""
    return [
        sub
        for sub in stack.of(TOPIC_SUBSCRIPTION)
        if str(peek(sub.props, "protocol")) == "lambda"
        and stack.linked(sub, "endpoint", FUNCTION)
        and stack.linked(sub, "topic", TOPIC)
    ]


def _topic_arns(stack: Stack) -> dict[str, Any]:
    """Each topic of the stack by its ARN as the plan knows it: the value of a subscription's `topic`
    built from that topic alone (a topic's ARN is an output, never one of its own inputs)."""
    arns: dict[str, Any] = {}
    for sub in stack.of(TOPIC_SUBSCRIPTION):
        topics, arn = stack.linked(sub, "topic", TOPIC), peek(sub.props, "topic")
        if len(topics) == 1 and isinstance(arn, str):
            arns[arn] = topics[0]
    return arns


MANAGED_POLICY = "aws:iam/policy:Policy"
ORG_POLICY = "aws:organizations/policy:Policy"
PRINCIPAL_TYPES = {"roles": "aws:iam/role:Role", "users": "aws:iam/user:User", "groups": "aws:iam/group:Group"}
DENY_ALL = "arn:aws:iam::aws:policy/AWSDenyAll"  # the one AWS-managed policy that only denies
_AUTONAME = re.compile(r"-[0-9a-f]{7}$")  # Pulumi's auto-naming: `<logical name>-<7 random hex>`


class _Named:
    """The stack's resources of some types by physical name: the `name` input, or Pulumi's
    auto-name `<logical name>-<7 hex>` when none is given (built once per stack)."""

    def __init__(self, stack: Stack, *types: str):
        self.given: dict[tuple[str, str], Any] = {}
        self.auto: dict[tuple[str, str], Any] = {}
        for r in stack.of(*types):
            name = peek(r.props, "name")
            if isinstance(name, str):
                self.given[(r.resource_type, name)] = r
            elif name is None:
                self.auto[(r.resource_type, r.name)] = r

    def find(self, type_: str, name: str, linked: list[Any]) -> Any | None:
        if (type_, name) in self.given:
            return self.given[(type_, name)]
        if _AUTONAME.search(name) and (type_, name[:-8]) in self.auto:
            return self.auto[(type_, name[:-8])]
        # a name only known after apply, built from a resource the definition links to
        return next((r for r in linked if r.resource_type == type_ and peek(r.props, "name") is UNKNOWN), None)


def _denies(document: Any) -> bool:
    statements = parse(document)
    return bool(statements) and all(st.effect == "deny" for st in statements)


def _definition_problem(action: Any, kind: str, principals: _Named, policies: _Named) -> str | None:
    """Whether the action's definition attaches a deny to principals the stack has (None: it does)."""
    linked = list(action.property_dependencies.get("definition", []))
    if kind == "APPLY_IAM_POLICY":
        definition = dig(action.props, "definition", "iamActionDefinition", default={})
        targets = [(t, str(n)) for field, t in PRINCIPAL_TYPES.items() for n in as_list(dig(definition, field))]
        if not targets:
            return f"{action.name}: attaches its policy to no role, user or group"
        missing = [n for t, n in targets if principals.find(t, n, linked) is None]
        if missing:
            return f"{action.name}: attaches to {', '.join(missing)}, no principal of the stack"
        arn = str(dig(definition, "policyArn", default=""))
        if arn == DENY_ALL:
            return None
        policy = policies.find(MANAGED_POLICY, arn.rsplit("/", 1)[-1], linked) if ":policy/" in arn else None
        if policy is None:
            return f"{action.name}: applies {arn or 'no policy'}, not a policy of the stack the pack can read (or AWSDenyAll)"
        if not _denies(dig(policy.props, "policy")):
            return f"{action.name}: its policy {arn} allows; a hard cap must only deny"
        return None
    if kind == "APPLY_SCP_POLICY":
        definition = dig(action.props, "definition", "scpActionDefinition", default={})
        if not as_list(dig(definition, "targetIds")):
            return f"{action.name}: applies its SCP to no account or organizational unit"
        scp = next((r for r in linked if r.resource_type == ORG_POLICY), None)
        if scp is None or not _denies(dig(scp.props, "content")):
            return f"{action.name}: its SCP {dig(definition, 'policyId')} is not a deny-only policy of the stack"
        return None
    definition = dig(action.props, "definition", "ssmActionDefinition", default={})
    if not as_list(dig(definition, "instanceIds")):
        return f"{action.name}: runs its SSM document on no instance"
    return None


def _addressed(notification: Any, field: str) -> bool:
    """A notification names subscribers in `field`: an address only known after apply is one (it names someone)."""
    value = peek(notification, field)
    return value is UNKNOWN or (value is not None and len(value) > 0)


def _amount(value: Any) -> float:
    return float(str(value).replace(",", ""))


def check_budget_caps(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    cap = config.get("stackCapUsd")
    if cap is None:
        return [
            (
                None,
                "budgets-limit-and-cap-enforced needs `stackCapUsd` in policies/config/<stack>.json (generated from cost.stack_cap_usd)",
            )
        ]
    cap = float(cap)
    tenant_tag, stack_tag = config.get("tenantTag", "meridian:tenant"), config.get("stackTag", "meridian:stack")
    by_name = {peek(b.props, "name"): b for b in stack.of(BUDGET) if isinstance(peek(b.props, "name"), str)}
    actions: dict[str, list[Any]] = {}
    for action in stack.of(BUDGET_ACTION):
        name = peek(action.props, "budgetName")
        for b in stack.linked(action, "budgetName", BUDGET) or (
            [by_name[name]] if isinstance(name, str) and name in by_name else []
        ):
            actions.setdefault(b.urn, []).append(action)
    enforcers = _enforcer_subscriptions(stack)
    enforcing_topics = {t.urn for sub in enforcers for t in stack.linked(sub, "topic", TOPIC)}
    topic_by_arn = _topic_arns(stack)
    arns_unknown = [sub for sub in enforcers if peek(sub.props, "topic") is UNKNOWN]  # an enforcing topic's ARN, unknown
    tenant_total = 0.0

    principals = _Named(stack, *PRINCIPAL_TYPES.values())
    policies = _Named(stack, MANAGED_POLICY, ORG_POLICY)

    def cap_problem(action: Any, limit: float) -> str | None:
        """Why an action does not enforce the cap, or None."""
        threshold = dig(action.props, "actionThreshold", default={})
        value = float(dig(threshold, "actionThresholdValue", default=float("inf")))
        kind = str(dig(action.props, "actionType", default=""))
        if kind not in ENFORCING_ACTIONS:
            return f"{action.name}: action type {kind or 'none'} enforces nothing"
        if str(dig(action.props, "approvalModel", default="MANUAL")) != "AUTOMATIC":
            return f"{action.name}: waits for a manual approval"
        if not (value <= 100 if dig(threshold, "actionThresholdType") == "PERCENTAGE" else value <= limit):
            return f"{action.name}: fires above 100 % of the limit"
        return _definition_problem(action, kind, principals, policies)

    def at_limit(budget: Any, limit: float) -> list[Any]:
        """The budget's actual-spend notifications at no more than 100 % of its limit."""
        return [
            n
            for n in as_list(dig(budget.props, "notifications"))
            if dig(n, "notificationType", default="") == "ACTUAL"
            and float(dig(n, "threshold", default=float("inf")))
            <= (100 if dig(n, "thresholdType", default="PERCENTAGE") == "PERCENTAGE" else limit)
        ]

    def notifies_at_limit(budget: Any, limit: float) -> bool:
        return bool(at_limit(budget, limit))

    def runs_enforcer(budget: Any, limit: float) -> bool:
        """Linked to an enforcing topic, or naming one by its ARN (a cell's budget names its platform's
        topic by the value its StackReference reads, which the platform's plan holds beside it)."""
        if not notifies_at_limit(budget, limit):
            return False
        if any(t.urn in enforcing_topics for t in stack.linked(budget, "notifications", TOPIC)):
            return True
        return any(
            getattr(topic_by_arn.get(arn), "urn", None) in enforcing_topics
            for n in at_limit(budget, limit)
            for arn in as_list(dig(n, "subscriberSnsTopicArns"))
        )

    def notified(budget: Any, limit: float) -> str:
        """What the budget notifies at its limit, by ARN: a topic of the plan (running no enforcing
        function) or one no plan here holds."""
        arns = sorted({str(a) for n in at_limit(budget, limit) for a in as_list(dig(n, "subscriberSnsTopicArns"))})
        said = [f"topic {topic_by_arn[a].name} ({a}), which runs no enforcing function" if a in topic_by_arn else a for a in arns]
        return f"; it notifies {', '.join(said)}" if said else ""

    def unenforced(budget: Any, limit: float, problems: list[str | None]) -> str:
        """The finding on a tenant budget nothing proves enforced."""
        # it only notifies a topic its plan does not define (a cell's: its platform's, named by the ARN its StackReference reads)
        elsewhere = not problems and not stack.linked(budget, "notifications", TOPIC) and notifies_at_limit(budget, limit)
        if elsewhere and arns_unknown:  # the ARN it names may be the one an enforcer's unknown `topic` takes
            return Unverifiable(
                f"unverifiable at preview: does the topic this tenant budget notifies{notified(budget, limit)} run the cap "
                f"enforcer? The `topic` of subscription(s) {', '.join(sorted(s.name for s in arns_unknown))} is only known after apply"
            )
        finding = (
            "Tenant budget must enforce the cap: an automatic APPLY_IAM_POLICY / SCP / SSM BudgetAction at no more "
            "than 100 % of the limit attaching a deny policy to principals of the stack, or an actual-spend "
            "notification at no more than 100 % to a topic that runs an enforcing function (SNS subscription, "
            f"protocol lambda) ({'; '.join(p for p in problems if p) or 'it has no action'}{notified(budget, limit) if elsewhere else ''})"
        )
        return InPlatform.note(config, finding) if elsewhere else finding

    def judge(budget: Any) -> list[tuple[str | None, str]]:
        nonlocal tenant_total
        out = []
        filters = _tag_filters(budget)
        is_tenant = any(v.startswith(f"user:{tenant_tag}$") for v in filters)
        is_stack = any(v.startswith(f"user:{stack_tag}$") for v in filters)
        unit, period = dig(budget.props, "limitUnit"), dig(budget.props, "timeUnit")
        if unit != "USD" or period != "MONTHLY":
            out.append(
                (
                    budget.urn,
                    f"AWS Budget must count USD per month (`limitUnit: USD`, `timeUnit: MONTHLY`), not {unit} per {period}",
                )
            )
        limit = _amount(dig(budget.props, "limitAmount", default="inf"))
        if not 0 < limit <= cap:
            out.append((budget.urn, f"AWS Budget limit must be within the stack cap of {cap:.2f} USD, not {limit:.2f}"))
        if is_tenant:
            tenant_total += limit
            problems = []
            for a in actions.get(budget.urn, []):
                try:
                    problems.append(cap_problem(a, limit))
                except UnknownValueError as exc:  # this action may enforce: reported on it, never assumed either way
                    out.append((a.urn, Unverifiable.of(exc, "does the hard cap attach a deny to principals of the stack?")))
                    problems.append(None)
            try:
                if None not in problems and not runs_enforcer(budget, limit):
                    out.append((budget.urn, unenforced(budget, limit, problems)))
            except UnknownValueError as exc:  # the ARN it notifies, before its topic exists
                out.append(
                    (budget.urn, Unverifiable.of(exc, "the topic this tenant budget notifies: does it run the cap enforcer?"))
                )
        if is_tenant or is_stack:
            alerts = [
                n
                for n in as_list(dig(budget.props, "notifications"))
                if float(dig(n, "threshold", default=float("inf")))
                <= (100 if dig(n, "thresholdType", default="PERCENTAGE") == "PERCENTAGE" else limit)
                and (_addressed(n, "subscriberSnsTopicArns") or _addressed(n, "subscriberEmailAddresses"))
            ]
            if not alerts:
                out.append(
                    (budget.urn, "AWS Budget must notify someone (an SNS topic or address) at or below 100 % of its limit")
                )
        return out

    out = judge_each(stack.of(BUDGET), judge)
    if tenant_total > cap:
        out.append((None, f"Tenant budgets must add up to at most the stack cap of {cap:.2f} USD, not {tenant_total:.2f}"))
    return out


budget_caps = stack_policy(
    "budgets-limit-and-cap-enforced",
    what="Checks that every AWS Budget counts USD per month with a limit within the stack cap (`stackCapUsd`), that tenant budgets add up to at most the cap, that the stack's and each tenant's budget notify someone at or below 100 %, and that each tenant budget is enforced at no more than 100 % of its limit: by an actual-spend notification to a topic that runs a function of the stack (linked, or named by the ARN a subscription of that topic carries: a cell's budget names its platform's topic by value), or by an automatic enforcing BudgetAction whose "
    "definition does something: an IAM action attaches a deny-only policy of the stack (or AWSDenyAll) to roles, users or "
    "groups the stack creates (by name, Pulumi auto-name or link), an SCP action a deny-only SCP of the stack to at least "
    "one target, an SSM action runs on at least one instance",
    why="A budget only caps spend if its limit is the planned cap and something acts when it is reached: a budget of 1e9, one that only alerts, or one in another currency or period is present and caps nothing.",
    reads=[BUDGET, BUDGET_ACTION, MANAGED_POLICY, ORG_POLICY, TOPIC, TOPIC_SUBSCRIPTION, FUNCTION],
    check=check_budget_caps,
    severity=HIGH,
    config={
        "stackCapUsd": {
            "type": "number",
            "minimum": 0,
            "description": "the stack's monthly cap in USD (generated from cost.stack_cap_usd)",
        },
        "tenantTag": {
            "type": "string",
            "default": "meridian:tenant",
            "description": "cost-allocation tag naming a resource's tenant",
        },
        "stackTag": {
            "type": "string",
            "default": "meridian:stack",
            "description": "cost-allocation tag naming a resource's stack",
        },
        **platform_stack_setting(),
    },
    remediation="Set budgets from `meridian:cost` and `meridian:tenants` (components.cost.CostCaps): limit = the cap in USD per month, "
    "notifications at the alert thresholds to the alert topic, which runs the cap enforcer (components/functions/cap_enforcer.py).",
    limits="A tenant's own limit is compared with the stack cap, not with its plan's catalog price; AWS Budgets evaluates spend a few times a day, so the cap is not real time; "
    "what an enforcing function does is not judged here (its code is tested with the program: tests/test_cap_enforcer.py), nor that its role may do it; that a BudgetAction's deny covers what the tenant's spend runs through is "
    "the program's design, not proved here; an SSM document's effect is not read.",
    tags=["cost"],
)

POLICIES = [tenant_budgets, stack_budget, budget_caps]
