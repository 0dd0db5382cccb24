"""Security review 20, cost caps (B03-B10, V04), replayed on the us stack's real plan through the
analyzer: the cap rule judges whether a budget notification can pass along the path to the cap
enforcer (the notification's operator, the subscription's filter policy, the Lambda permission SNS
invokes through, the function's reserved concurrency, the topic policy Budgets publishes through,
decided by the IAM evaluator), and what a budget counts (its cost filters, its end, the stack's name
as the AWS providers' default tags give it). Each attack is a mandatory violation naming what must
hold; a value only known after apply is an advisory naming the property; each legitimate twin passes
the whole pack."""

from __future__ import annotations

import json

import pytest

from .helpers import attack_and_twin_tests
from .test_policy_review16 import ACCOUNT, one

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

CAPS, STACK_BUDGET = "budgets-limit-and-cap-enforced", "budgets-stack-budget-exists"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an output unknown at preview
ACME = "us-cost-tenant-acme"
SUBSCRIPTION, FUNCTION, PERMISSION, TOPIC_POLICY = (
    "us-cost-alerts-to-enforcer",
    "us-cost-enforcer",
    "us-cost-enforcer-from-alerts",
    "us-cost-alerts-policy",
)


def budget(name: str = ACME):
    return lambda resources: one(resources, name, "budgets/budget")["inputs"]


def each_actual(edit, name: str = ACME):
    """Edit every ACTUAL notification of a budget."""

    def mutate(resources):
        for n in budget(name)(resources)["notifications"]:
            if n["notificationType"] == "ACTUAL":
                edit(n)

    return mutate


def setp(name: str, type_part: str, prop: str, value):
    return lambda resources: one(resources, name, type_part)["inputs"].__setitem__(prop, value)


def drop(name: str):
    return lambda resources: resources.remove(one(resources, name))


def topic_policy(edit):
    def mutate(resources):
        holder = one(resources, TOPIC_POLICY, "sns/topicPolicy")
        doc = json.loads(holder["inputs"]["policy"])
        edit(doc, holder["inputs"]["arn"])
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def without_budgets_publish(doc, _arn):
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "BudgetsPublish"]


def deny_budgets(doc, arn):
    doc["Statement"].append(
        {
            "Sid": "NoBudgets",
            "Effect": "Deny",
            "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": arn,
        }
    )


def budgets_from(account: str):
    def edit(doc, _arn):
        next(s for s in doc["Statement"] if s.get("Sid") == "BudgetsPublish")["Condition"] = {
            "StringEquals": {"aws:SourceAccount": account}
        }

    return edit


def budgets_by_source_arn(doc, _arn):
    """The form AWS's Budgets guide gives: the account and any budget of it as aws:SourceArn."""
    next(s for s in doc["Statement"] if s.get("Sid") == "BudgetsPublish")["Condition"] = {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:budgets::{ACCOUNT}:*"},
    }


def deny_other_accounts(doc, arn):
    """Hardening a reviewer expects to pass: nobody publishes for another account (Budgets' request
    carries this account as aws:SourceAccount, so the Deny does not apply to it)."""
    doc["Statement"].append(
        {
            "Sid": "OnlyThisAccount",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "SNS:Publish",
            "Resource": arn,
            "Condition": {"StringNotEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    )


def deny_on_a_key_the_pack_cannot_decide(doc, arn):
    doc["Statement"].append(
        {
            "Sid": "OnlyTagged",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "SNS:Publish",
            "Resource": arn,
            "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "finance"}},
        }
    )


def add_filter(name: str, extra: dict):
    return lambda resources: budget(name)(resources)["costFilters"].append(extra)


def permission(prop: str, value):
    return setp(PERMISSION, "lambda/permission", prop, value)


ATTACKS = [
    ("B03 acme's ACTUAL notifications EQUAL_TO", each_actual(lambda n: n.__setitem__("comparisonOperator", "EQUAL_TO")), CAPS),
    ("B03b acme's ACTUAL notifications LESS_THAN", each_actual(lambda n: n.__setitem__("comparisonOperator", "LESS_THAN")), CAPS),
    (
        "B04 the enforcer's subscription drops every budget message",
        setp(SUBSCRIPTION, "topicSubscription", "filterPolicy", json.dumps({"never": ["match"]})),
        CAPS,
    ),
    (
        "B04b a filter policy on the message body",
        setp(SUBSCRIPTION, "topicSubscription", "filterPolicyScope", "MessageBody"),
        CAPS,
    ),
    ("B05 no Lambda permission for SNS", drop(PERMISSION), CAPS),
    ("B05b the permission names another topic", permission("sourceArn", f"arn:aws:sns:us-east-1:{ACCOUNT}:other-topic"), CAPS),
    ("B05c the permission is for another principal", permission("principal", "events.amazonaws.com"), CAPS),
    ("B05d the permission is for a qualifier", permission("qualifier", "live"), CAPS),
    ("B05e the permission is for another function", permission("function", "us-something-else"), CAPS),
    ("B06 the enforcer's reserved concurrency 0", setp(FUNCTION, "lambda/function", "reservedConcurrentExecutions", 0), CAPS),
    ("B07 the topic policy without BudgetsPublish", topic_policy(without_budgets_publish), CAPS),
    ("B07b the topic policy denies Budgets", topic_policy(deny_budgets), CAPS),
    ("B07c Budgets admitted only for another account", topic_policy(budgets_from("999988887777")), CAPS),
    ("B07d a Deny on a key the pack cannot decide for Budgets", topic_policy(deny_on_a_key_the_pack_cannot_decide), CAPS),
    ("B08 acme's budget narrowed to Route 53", add_filter(ACME, {"name": "Service", "values": ["Amazon Route 53"]}), CAPS),
    (
        "B08b acme's budget counts another tenant too",
        lambda rs: budget()(rs)["costFilters"][0]["values"].append("user:meridian:tenant$globex"),
        CAPS,
    ),
    (
        "B08c the stack budget narrowed to one region",
        add_filter("us-cost-stack", {"name": "Region", "values": ["us-west-2"]}),
        CAPS,
    ),
    (
        "B08d acme's budget through a filter expression",
        setp(ACME, "budgets/budget", "filterExpression", {"dimensions": {"key": "SERVICE", "values": ["Amazon Route 53"]}}),
        CAPS,
    ),
    (
        "B08e acme's budget without subscriptions' cost",
        setp(ACME, "budgets/budget", "costTypes", {"includeSubscription": False}),
        CAPS,
    ),
    (
        "B08f acme's budget auto-adjusted from history",
        setp(ACME, "budgets/budget", "autoAdjustData", {"autoAdjustType": "HISTORICAL"}),
        CAPS,
    ),
    ("B09 acme's budget ends", setp(ACME, "budgets/budget", "timePeriodEnd", "2027-01-31_00:00"), CAPS),
    (
        "B10 the stack budget counts the eu stack",
        lambda rs: budget("us-cost-stack")(rs)["costFilters"][0].__setitem__("values", ["user:meridian:stack$eu"]),
        STACK_BUDGET,
    ),
    (
        "B10b the stack budget counts this stack and eu",
        lambda rs: budget("us-cost-stack")(rs)["costFilters"][0]["values"].append("user:meridian:stack$eu"),
        STACK_BUDGET,
    ),
]

TWINS = [
    ("the open end AWS sets by default, written out", setp(ACME, "budgets/budget", "timePeriodEnd", "2087-06-15_00:00")),
    ("the enforcer with 5 reserved executions", setp(FUNCTION, "lambda/function", "reservedConcurrentExecutions", 5)),
    ("the enforcer with no reservation (-1)", setp(FUNCTION, "lambda/function", "reservedConcurrentExecutions", -1)),
    (
        "the permission names the function by ARN",
        permission("function", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:us-cost-cap-enforcer"),
    ),
    ("the topic policy denies publishing for other accounts", topic_policy(deny_other_accounts)),
    ("Budgets admitted by aws:SourceArn as AWS's guide writes it", topic_policy(budgets_by_source_arn)),
    (
        "credits left out (acme's budget counts more, not less)",
        setp(ACME, "budgets/budget", "costTypes", {"includeCredit": False}),
    ),
]

test_cost_attack_is_mandatory, test_cost_twin_passes = attack_and_twin_tests(ATTACKS, TWINS)


@pytest.mark.parametrize(
    "mutation,prop",
    [
        (setp(SUBSCRIPTION, "topicSubscription", "filterPolicy", UNKNOWN), "filterPolicy"),
        (setp(FUNCTION, "lambda/function", "reservedConcurrentExecutions", UNKNOWN), "reservedConcurrentExecutions"),
        (each_actual(lambda n: n.__setitem__("comparisonOperator", UNKNOWN)), "comparisonOperator"),
        (permission("sourceArn", UNKNOWN), "sourceArn"),
        (setp(TOPIC_POLICY, "sns/topicPolicy", "policy", UNKNOWN), "policy"),
        (setp(ACME, "budgets/budget", "timePeriodEnd", UNKNOWN), "timePeriodEnd"),
    ],
    ids=[
        "V04 filterPolicy",
        "reservedConcurrentExecutions",
        "comparisonOperator",
        "permission sourceArn",
        "topic policy",
        "timePeriodEnd",
    ],
)
def test_a_path_value_unknown_at_preview_is_an_advisory_naming_it(judge, mutation, prop):
    found = [v for v in judge(mutation) if v.policy == CAPS]
    assert found and {v.level for v in found} == {"advisory"}, [(v.level, v.message) for v in found]
    assert all(prop in v.message and "unverifiable at preview" in v.message for v in found), [v.message for v in found]


def test_the_stack_budget_fails_closed_when_nothing_names_the_stack(judge):
    """B10's cause: with no `meridian:stack` in any provider's default tags nor a resource's tags,
    no filter value can be proven this stack's: a violation, never "any value passes"."""

    def untagged(resources):
        for r in resources:
            if r["type"] == "pulumi:providers:aws":
                tags = json.loads(r["inputs"]["defaultTags"])
                tags["tags"].pop("meridian:stack")
                r["inputs"]["defaultTags"] = json.dumps(tags)
            if isinstance(r["inputs"].get("tags"), dict):
                r["inputs"]["tags"].pop("meridian:stack", None)

    found = [v for v in judge(untagged) if v.policy == STACK_BUDGET]
    assert found and {v.level for v in found} == {"mandatory"} and all(" must " in v.message for v in found), found
