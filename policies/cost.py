"""Cost caps: a budget for the stack and one for every tenant."""

from __future__ import annotations

import json
import re
from typing import Any

from costpath import (
    FUNCTION,
    PERMISSION,
    TOPIC,
    TOPIC_POLICY,
    TOPIC_SUBSCRIPTION,
    EnforcerPath,
    enforcer_paths,
    publish_refusal,
    topic_policies,
)
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
    is_map,
    judge_each,
    known,
    labels_of,
    peek,
    platform_beside,
    platform_stack_setting,
    stack_policy,
    stack_tag_maps,
    tags_of,
)
from ruleutil import unknown as unknown_value  # `unknown` names the unknown properties of a path below

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


def _stack_names(stack: Stack, tag: str) -> tuple[set[str], bool]:
    """The values of the stack tag that tag this stack's AWS resources (its providers' `defaultTags`,
    through which the program tags, and resources' own tags), and whether one is unknown at preview."""
    values = {tags.get(tag) for tags in stack_tag_maps(stack)}
    return {v for v in values if isinstance(v, str)}, UNKNOWN in values


def check_stack_budget(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    tag = config.get("stackTag", "meridian:stack")
    names, some_unknown = _stack_names(stack, tag)
    if not names:  # nothing to compare a budget's filter with: no filter value is proven this stack's
        if some_unknown:
            return [(None, Unverifiable.at(f"defaultTags.tags.{tag}", "which stack does the stack budget count?"))]
        return [
            (
                None,
                f"The stack's AWS resources must carry tag `{tag}` (the AWS providers' defaultTags) so that its AWS Budget "
                "can be proven to count this stack: no provider's default tags nor resource's tags name it",
            )
        ]
    unverifiable = []
    for budget in stack.of(BUDGET):
        try:
            filters = _tag_filters(budget)
        except UnknownValueError as exc:
            unverifiable.append((budget.urn, Unverifiable.of(exc, "is it the stack budget?")))
            continue
        stack_filters = {v.split("$", 1)[1] for v in filters if v.startswith(f"user:{tag}$")}
        if stack_filters and stack_filters <= names:
            return []
    if unverifiable:
        return unverifiable
    seen = ", ".join(sorted(names))
    return [
        (
            None,
            InPlatform.note(
                {} if platform_beside(stack, config) else config,
                f"The stack must have an AWS Budget filtered on tag `{tag}` = {seen} and no other stack "
                f"(cost filter TagKeyValue user:{tag}${seen}, the value its AWS providers' defaultTags give)",
            ),
        )
    ]


stack_budget = stack_policy(
    "budgets-stack-budget-exists",
    what="Checks that the stack has an AWS Budget whose `meridian:stack` cost filter names only the stack's own name, as "
    "its AWS providers' `defaultTags` (and resources' own tags) give it; with no such tag in the plan nothing proves a "
    "budget the stack's, which is a violation",
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
    limits="The budget's limit against the cap, and what else it counts or excludes, are judged by budgets-limit-and-cap-enforced.",
    tags=["cost"],
)

BUDGET_ACTION = "aws:budgets/budgetAction:BudgetAction"
ENFORCING_ACTIONS = ("APPLY_IAM_POLICY", "APPLY_SCP_POLICY", "RUN_SSM_DOCUMENTS")


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


OPEN_END = "2087-06-15_00:00"  # AWS's end date when none is given (API_budgets_TimePeriod); after its end AWS deletes a budget
# Cost types whose `false` leaves charges out of what a budget counts (API_budgets_CostTypes: each defaults to true);
# credits, refunds and discounts left out make it count more, never less.
NARROWING_COST_TYPES = (
    "includeOtherSubscription",
    "includeRecurring",
    "includeSubscription",
    "includeSupport",
    "includeTax",
    "includeUpfront",
)
# Properties that make a budget count something else than its cost filters select, or its limit something else than `limitAmount`.
RESCOPING = {
    "filterExpression": "selects its costs by an expression beside its cost filters",
    "billingViewArn": "counts through a billing view, which limits what it sees",
    "autoAdjustData": "adjusts its limit from past spend instead of `limitAmount`",
    "plannedLimits": "takes its limit per period from `plannedLimits` instead of `limitAmount`",
}


def _counting_problems(budget: Any, own: str, whose: str) -> list[str]:
    """Why a tenant's or the stack's budget would count other than all of `whose` spend: `own` is the
    filter value prefix (`user:<tag>$`) that selects it; anything else narrows, widens or ends it."""
    out = []
    if str(dig(budget.props, "budgetType", default="COST")) != "COST":
        out.append(f"`budgetType` {dig(budget.props, 'budgetType')} counts no cost")
    for i, f in enumerate(as_list(dig(budget.props, "costFilters"))):
        name, values = dig(f, "name"), [str(v) for v in as_list(dig(f, "values"))]
        if name != "TagKeyValue":
            out.append(f"cost filter {i} ({name} = {', '.join(values)}) narrows it to part of that spend")
            continue
        others = [v for v in values if not v.startswith(own)]
        selected = sorted({v for v in values if v.startswith(own)})
        if others or len(selected) > 1:
            out.append(f"cost filter {i} (TagKeyValue {', '.join(values)}) selects more than {whose}'s own tag value")
    for prop, what in RESCOPING.items():
        if dig(budget.props, prop) not in (None, [], {}):
            out.append(f"`{prop}` {what}")
    for prop in NARROWING_COST_TYPES:
        value = dig(budget.props, "costTypes", prop)
        if value is not None and str(value).lower() == "false":
            out.append(f"`costTypes.{prop}: false` leaves those charges out")
    end = dig(budget.props, "timePeriodEnd")
    if end is not None and str(end) != OPEN_END:
        out.append(f"`timePeriodEnd` {end}: AWS deletes the budget after its end date (leave it unset, or {OPEN_END})")
    return [f"AWS Budget must count all of {whose}'s spend, every month: {p}" for p in out]


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
    # a cell judged beside its platform: the platform's topics are here, so nothing is left to it
    deferring = {} if platform_beside(stack, config) else config
    by_name = {peek(b.props, "name"): b for b in stack.of(BUDGET) if isinstance(peek(b.props, "name"), str)}
    actions: dict[str, list[Any]] = {}
    for action in stack.of(BUDGET_ACTION):
        name = peek(action.props, "budgetName")
        for b in stack.linked(action, "budgetName", BUDGET) or (
            [by_name[name]] if isinstance(name, str) and name in by_name else []
        ):
            actions.setdefault(b.urn, []).append(action)
    paths = enforcer_paths(stack)
    paths_of: dict[str, list[EnforcerPath]] = {}
    for path in paths:
        paths_of.setdefault(path.topic.urn, []).append(path)
    topic_by_arn = _topic_arns(stack)
    arns_unknown = [p.subscription for p in paths if p.arn is UNKNOWN]  # an enforcing topic's ARN, unknown
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

    def within(n: Any, limit: float) -> bool:
        """A notification whose threshold is at most 100 % of the limit, compared GREATER_THAN (AWS notifies when
        spend exceeds it; EQUAL_TO fires only on the exact amount, LESS_THAN while spend is under it)."""
        at_most = 100 if dig(n, "thresholdType", default="PERCENTAGE") == "PERCENTAGE" else limit
        return float(dig(n, "threshold", default=float("inf"))) <= at_most and dig(n, "comparisonOperator") == "GREATER_THAN"

    def at_limit(budget: Any, limit: float) -> list[Any]:
        """The budget's actual-spend notifications that fire by 100 % of its limit."""
        return [
            n
            for n in as_list(dig(budget.props, "notifications"))
            if dig(n, "notificationType", default="") == "ACTUAL" and within(n, limit)
        ]

    def operators(budget: Any, limit: float) -> str:
        """Its actual-spend notifications that compare with another operator than GREATER_THAN, said (they never
        fire as spend reaches the limit: EQUAL_TO only on the exact amount, LESS_THAN while spend is under it)."""
        ops = sorted(
            {
                str(dig(n, "comparisonOperator"))
                for n in as_list(dig(budget.props, "notifications"))
                if dig(n, "notificationType", default="") == "ACTUAL" and dig(n, "comparisonOperator") != "GREATER_THAN"
            }
        )
        return f"its actual-spend notifications compare with {', '.join(ops)}, not GREATER_THAN" if ops else ""

    def notified_topics(budget: Any, limit: float) -> tuple[list[Any], list[str]]:
        """The topics of the plan its notifications by 100 % reach (by ARN value; before a topic exists, the
        topics they are built from), and the ARNs that name no topic of the plan."""
        topics, elsewhere = [], []
        for n in at_limit(budget, limit):
            arns = known(peek(n, "subscriberSnsTopicArns"))
            if arns is UNKNOWN or UNKNOWN in as_list(arns):
                linked = stack.linked(budget, "notifications", TOPIC)
                if not linked:  # which topic it notifies is only known after apply
                    raise unknown_value("notifications", "subscriberSnsTopicArns")
                topics += linked
                continue
            for arn in map(str, as_list(arns)):
                if arn in topic_by_arn:
                    topics.append(topic_by_arn[arn])
                else:
                    elsewhere.append(arn)
        return topics, elsewhere

    def path_verdict(path: EnforcerPath, budget: Any) -> tuple[list[str], list[str]]:
        """What stops this budget's notification on the path, and what decides it that is unknown at preview."""
        blocked, unknown = list(path.blocked), list(path.unknown)
        docs = topic_policies(stack, path)
        if not docs:
            blocked.append(
                f"topic {path.topic.name} has no policy admitting budgets.amazonaws.com (its default policy admits only the "
                "account's own principals)"
            )
        name = peek(budget.props, "name")
        for where, doc in docs:
            doc = known(doc)
            text = doc if isinstance(doc, str) else json.dumps(doc, default=repr) if is_map(doc) else None
            if text is None or "<unknown>" in text or path.arn is UNKNOWN:
                unknown.append(where if path.arn is not UNKNOWN else f"{path.subscription.name}.topic")
                continue
            account = str(path.arn).split(":")[4] if str(path.arn).count(":") >= 5 else ""
            # Pulumi auto-names a budget `<logical name>-<7 random hex>` at apply: judged with a stand-in suffix
            budget_arn = f"arn:aws:budgets::{account}:budget/{name if isinstance(name, str) else f'{budget.name}-0000000'}"
            refusal = publish_refusal(text, str(path.arn), budget_arn)
            if refusal:
                blocked.append(f"{where} does not let budgets.amazonaws.com publish to {path.arn}: {refusal}")
        return blocked, unknown

    def enforcement(budget: Any, limit: float) -> tuple[bool, list[str], list[str]]:
        """(a notification by 100 % reaches an enforcing function along a path that lets it pass, what blocks
        the paths it reaches, the properties unknown at preview that decide them)"""
        topics, _ = notified_topics(budget, limit)
        blocked, unknown = [], []
        for topic in dict.fromkeys(topics):
            for path in paths_of.get(topic.urn, []):
                b, u = path_verdict(path, budget)
                if not b and not u:
                    return True, [], []
                blocked += b
                if not b:
                    unknown += u
        return False, blocked, unknown

    def notified(budget: Any, limit: float) -> str:
        """What the budget notifies by its limit, by ARN: a topic of the plan (running no enforcing
        function) or one no plan here holds."""
        arns = sorted({str(a) for n in at_limit(budget, limit) for a in as_list(dig(n, "subscriberSnsTopicArns"))})
        said = [
            f"topic {topic_by_arn[a].name} ({a}), which runs no enforcing function"
            if a in topic_by_arn and not paths_of.get(topic_by_arn[a].urn)
            else f"topic {topic_by_arn[a].name} ({a})"
            if a in topic_by_arn
            else f"{a}, a topic no stack here defines"
            for a in arns
        ]
        return f"; it notifies {', '.join(said)}" if said else ""

    def unenforced(budget: Any, limit: float, problems: list[str | None]) -> str:
        """The finding on a tenant budget nothing proves enforced."""
        topics, elsewhere_arns = notified_topics(budget, limit)
        # it only notifies topics no plan here holds (a cell's, judged alone: its platform's, by the ARN its StackReference reads)
        elsewhere = not problems and not topics and bool(elsewhere_arns)
        if elsewhere and arns_unknown:  # the ARN it names may be the one an enforcer's unknown `topic` takes
            return Unverifiable(
                f"unverifiable at preview: does the topic this tenant budget notifies{notified(budget, limit)} run the cap "
                f"enforcer? The `topic` of subscription(s) {', '.join(sorted(s.name for s in arns_unknown))} is only known after apply"
            )
        finding = (
            "Tenant budget must enforce the cap: an automatic APPLY_IAM_POLICY / SCP / SSM BudgetAction at no more "
            "than 100 % of the limit attaching a deny policy to principals of the stack, or an actual-spend "
            "notification (GREATER_THAN) at no more than 100 % to a topic whose policy lets AWS Budgets publish and "
            "whose lambda subscription (no filter policy) runs a function SNS may invoke (a Lambda permission for "
            f"sns.amazonaws.com from that topic) and Lambda does not throttle ({'; '.join(p for p in problems if p) or 'it has no action'}"
            f"{notified(budget, limit) if topics or elsewhere_arns else ''})"
        )
        return InPlatform.note(deferring, finding) if elsewhere else finding

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
        if is_tenant or is_stack:
            tag, whose = (tenant_tag, "its tenant") if is_tenant else (stack_tag, "the stack")
            try:
                out += [(budget.urn, p) for p in _counting_problems(budget, f"user:{tag}$", whose)]
            except UnknownValueError as exc:
                out.append((budget.urn, Unverifiable.of(exc, "what does the budget count?")))
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
                if None not in problems:
                    enforced, blocked, unknown = enforcement(budget, limit)
                    if not enforced and unknown:
                        out.append(
                            (
                                budget.urn,
                                Unverifiable(
                                    "unverifiable at preview: can this tenant budget's notification reach the cap enforcer? "
                                    f"{', '.join(sorted(set(unknown)))} only known after apply"
                                ),
                            )
                        )
                    elif not enforced:
                        said = [operators(budget, limit), *blocked]
                        out.append((budget.urn, unenforced(budget, limit, [*problems, *(s for s in said if s)])))
            except UnknownValueError as exc:  # the operator or the ARN it notifies, before its topic exists
                out.append(
                    (budget.urn, Unverifiable.of(exc, "the notification of this tenant budget: does it reach the cap enforcer?"))
                )
        if is_tenant or is_stack:
            alerts = [
                n
                for n in as_list(dig(budget.props, "notifications"))
                if within(n, limit) and (_addressed(n, "subscriberSnsTopicArns") or _addressed(n, "subscriberEmailAddresses"))
            ]
            if not alerts:
                out.append(
                    (
                        budget.urn,
                        "AWS Budget must notify someone (an SNS topic or address) when spend exceeds (GREATER_THAN) a "
                        "threshold at or below 100 % of its limit",
                    )
                )
        return out

    out = judge_each(stack.of(BUDGET), judge)
    if tenant_total > cap:
        out.append((None, f"Tenant budgets must add up to at most the stack cap of {cap:.2f} USD, not {tenant_total:.2f}"))
    return out


budget_caps = stack_policy(
    "budgets-limit-and-cap-enforced",
    what="Checks that every AWS Budget counts USD per month with a limit within the stack cap (`stackCapUsd`), that tenant "
    "budgets add up to at most the cap; that the stack's and each tenant's budget counts all of its spend, every month "
    "(`budgetType` COST; cost filters only its own `meridian:stack` / `meridian:tenant` TagKeyValue; no `filterExpression`, "
    "`billingViewArn`, `autoAdjustData`, `plannedLimits`, no `costTypes` that leave charges out; `timePeriodEnd` unset or "
    "AWS's open end 2087-06-15_00:00) and notifies someone when spend exceeds (GREATER_THAN) a threshold at or below "
    "100 %; and that each tenant budget is enforced at no more than 100 % of its limit: by an actual-spend GREATER_THAN "
    "notification whose message can pass, resource by resource, to a function of the plan: the topic it names by ARN "
    "(or, before the topic exists, is built from; a cell's budget names its platform's topic, judged on the platform's "
    "resources when they are beside the cell's, deferred to the platform only when they are not), whose every policy "
    "(the topic's own and each aws:sns/topicPolicy) lets budgets.amazonaws.com SNS:Publish as the IAM evaluator decides "
    "for this account's budget (aws:SourceAccount, aws:SourceArn; a Deny on a key Budgets' request does not carry is "
    "taken as applying), a `lambda` subscription of it without `filterPolicy` or `filterPolicyScope`, a function "
    "without `reservedConcurrentExecutions: 0`, and an aws:lambda/permission for sns.amazonaws.com to invoke that "
    "unqualified function (by name or ARN) with `sourceArn` the topic's ARN by value; or by an automatic enforcing "
    "BudgetAction whose definition does something: an IAM action attaches a deny-only policy of the stack (or "
    "AWSDenyAll) to roles, users or groups the stack creates (by name, Pulumi auto-name or link), an SCP action a "
    "deny-only SCP of the stack to at least one target, an SSM action runs on at least one instance. A value deciding "
    "any of this that is unknown at preview is an advisory naming the property",
    why="A budget only caps spend if it counts the tenant's spend at the planned cap and something acts when it is reached: a "
    "budget of 1e9, one narrowed to one service or ended next month, one that only alerts, one whose notification never "
    "fires (EQUAL_TO) or is dropped on the way (a filter policy, a topic Budgets may not publish to, a function SNS may "
    "not invoke or Lambda throttles) is present and caps nothing.",
    reads=[BUDGET, BUDGET_ACTION, MANAGED_POLICY, ORG_POLICY, TOPIC, TOPIC_POLICY, TOPIC_SUBSCRIPTION, FUNCTION, PERMISSION],
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
    "the program's design, not proved here; an SSM document's effect is not read. On the notification's path, the topic's "
    "KMS key policy (Budgets must be let use the key), the budget's `accountId`, a `timePeriodStart` in the future, the "
    "function's code, runtime and the account's concurrency, and SNS delivery retries are not read; a budget Pulumi "
    "auto-names is judged as `<logical name>-0000000` for aws:SourceArn (a topic policy pinning its random suffix is refused).",
    tags=["cost"],
)

POLICIES = [tenant_budgets, stack_budget, budget_caps]
