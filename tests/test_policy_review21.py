"""Security review 21's misses, replayed on the real us plan through the analyzer: principalmapper 1.1.5
matched a resource policy's `SNS:`/`SQS:` action by comparing the request's action with itself, so any
such statement matched every action. A decoy `Deny SQS:SendMessage` on a tenant's key then hid a grant
to another principal (I08: the Deny "applied" to the principal's Decrypt as well, and the rule read the
key as unreachable), an `Allow SNS:Subscribe` to Budgets read as letting it publish (C09), and a
team's `Deny SNS:Subscribe` to Budgets read as refusing its publish (L13)."""

from __future__ import annotations

import json
import sys

import pytest

from .helpers import ROOT
from .test_policy_review16 import DATA, acme_key_statement, one
from .test_policy_review20 import backup_trust

pytestmark = pytest.mark.slow  # the plans come from the previews fixture

BUDGETS = "budgets-limit-and-cap-enforced"


def enforcer_role(resources) -> str:
    return one(resources, "us-cost-enforcer", "lambda/function")["inputs"]["role"]


def topic_policy(edit):
    def mutate(resources):
        holder = one(resources, "us-cost-alerts-policy", "sns/topicPolicy")
        doc = json.loads(holder["inputs"]["policy"])
        edit(doc, resources)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def findings(judge, mutation, rule):
    return [(v.policy, v.level) for v in judge(mutation) if v.policy == rule]


def test_a_decoy_sqs_deny_no_longer_hides_a_grant_on_a_tenants_key(judge):
    """I08: with the decoy, the cost enforcer's Decrypt on acme's key passed; without it, it was caught."""
    grant = acme_key_statement(
        lambda rs: {
            "Sid": "Enforcer",
            "Effect": "Allow",
            "Principal": {"AWS": enforcer_role(rs)},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )
    decoy = acme_key_statement(
        {"Sid": "NoQueues", "Effect": "Deny", "Principal": "*", "Action": "SQS:SendMessage", "Resource": "*"}
    )

    def both(resources):
        grant(resources)
        decoy(resources)

    assert (DATA, "mandatory") in findings(judge, grant, DATA)
    assert (DATA, "mandatory") in findings(judge, both, DATA)


def test_an_allow_of_another_sns_action_does_not_let_budgets_publish(judge):
    """C09: the topic policy's BudgetsPublish statement allowing `SNS:Subscribe` lets Budgets publish nothing."""

    def subscribe_only(doc, _resources):
        for st in doc["Statement"]:
            if st.get("Sid") == "BudgetsPublish":
                st["Action"] = "SNS:Subscribe"

    assert (BUDGETS, "mandatory") in findings(judge, topic_policy(subscribe_only), BUDGETS)


def test_a_deny_of_another_sns_action_to_budgets_passes(judge):
    """L13 (a false positive): a team denying Budgets `SNS:Subscribe` leaves its publish allowed."""

    def deny_subscribe(doc, resources):
        topic = next(st["Resource"] for st in doc["Statement"] if st.get("Sid") == "BudgetsPublish")
        doc["Statement"].append(
            {
                "Sid": "NoBudgetsSubscribe",
                "Effect": "Deny",
                "Principal": {"Service": "budgets.amazonaws.com"},
                "Action": "SNS:Subscribe",
                "Resource": topic,
            }
        )

    assert findings(judge, topic_policy(deny_subscribe), BUDGETS) == []


@pytest.fixture(scope="module")
def matches_action():
    sys.path.insert(0, str(ROOT / "policies"))
    try:
        from access import simulator  # principalmapper as the rules use it: patched
    finally:
        sys.path.remove(str(ROOT / "policies"))
    from principalmapper.querying import local_policy_simulation

    return lambda statement, action: local_policy_simulation._statement_matches_action(
        statement, action, simulator.CaseInsensitiveDict({}), True
    )


@pytest.mark.parametrize(
    "written,action,matches",
    [
        ("SNS:Subscribe", "sns:Publish", False),
        ("SNS:Publish", "sns:Publish", True),
        ("sns:publish", "SNS:Publish", True),
        ("SQS:SendMessage", "kms:Decrypt", False),
        ("SQS:*", "sqs:ReceiveMessage", True),
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "s3:PutObject", False),
    ],
)
def test_a_resource_policys_action_matches_as_iam_does(matches_action, written, action, matches):
    assert matches_action({"Action": written}, action) is matches
    assert matches_action({"NotAction": written}, action) is (not matches)


# --- K01, K04: a provider that applies nothing; a tenant cluster declared tenant-free -----------------------

PROVIDERS, ADDONS, BACKSTOPS = "provider-account-and-endpoints-in-zone", "eks-addon-reviewed", "runtime-backstops-enforced"


def provider_setting(key: str, value):
    def mutate(resources):
        one(resources, "us-us-east-1-eks-k8s", "providers:kubernetes")["inputs"][key] = value

    return mutate


@pytest.mark.parametrize("key,value", [("renderYamlToDirectory", "/tmp/rendered"), ("skipUpdateUnreachable", "true")])
def test_a_kubernetes_provider_that_applies_nothing_is_refused(judge, key, value):
    """K01: `renderYamlToDirectory` writes every object through the provider to files; the cluster gets none of
    the tenant namespaces' guards. `skipUpdateUnreachable` reports an update of an unreachable cluster done."""
    assert (PROVIDERS, "mandatory") in findings(judge, provider_setting(key, value), PROVIDERS)


def drop(name: str):
    def mutate(resources):
        resources[:] = [r for r in resources if r["name"] != name]

    return mutate


def test_a_cluster_holding_tenant_namespaces_is_a_tenant_cluster_whatever_the_config_declares(judge):
    """K04: declaring the platform's own cluster tenant-free exempted it from the vpc-cni requirement, while
    every tenant namespace of us-east-1 lives on it."""
    declared = {rule: {"clustersWithoutTenants": ["us-us-east-1-eks"]} for rule in (ADDONS, BACKSTOPS)}
    found = [(v.policy, v.level) for v in judge(drop("us-us-east-1-eks-vpc-cni"), settings=declared)]
    assert (ADDONS, "mandatory") in found, found


# --- C01-C03: what Lambda checks when SNS invokes the enforcer ------------------------------------------------


def set_input(name: str, type_part: str, key: str, value):
    def mutate(resources):
        holder = one(resources, name, type_part)
        holder["inputs"][key] = value(holder) if callable(value) else value

    return mutate


def qualified(subscription) -> str:
    return subscription["inputs"]["endpoint"] + ":live"


CAP_ATTACKS = [
    # C01: SNS invokes the alias; the enforcer's permission is for the unqualified function
    set_input("us-cost-alerts-to-enforcer", "sns/topicSubscription", "endpoint", qualified),
    # C02, C03: conditions an invocation by SNS never meets
    set_input("us-cost-enforcer-from-alerts", "lambda/permission", "principalOrgId", "o-a1b2c3d4e5"),
    set_input("us-cost-enforcer-from-alerts", "lambda/permission", "eventSourceToken", "amzn1.ask.skill.review21"),
]


@pytest.mark.parametrize("mutation", CAP_ATTACKS, ids=["C01-qualified-endpoint", "C02-principalOrgId", "C03-eventSourceToken"])
def test_an_invocation_lambda_refuses_breaks_the_cap(judge, mutation):
    assert (BUDGETS, "mandatory") in findings(judge, mutation, BUDGETS)


# --- BK4: a trust condition on a key AWS Backup never sends ---------------------------------------------------


def test_a_backup_trust_on_a_key_backup_never_sends_is_refused(judge):
    """BK4: `aws:SourceAcount` (misspelt) is absent from Backup's request, so the Allow never matches: no job assumes the role."""
    found = findings(judge, backup_trust({"StringEquals": {"aws:SourceAcount": "123456789012"}}), "backup-plan-coverage")
    assert ("backup-plan-coverage", "mandatory") in found


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        {"ArnLike": {"aws:SourceArn": "arn:aws:backup:us-east-1:123456789012:backup-vault:*"}},
        {"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}},
    ],
    ids=["source-account", "source-arn", "if-exists"],
)
def test_the_backup_trusts_aws_documents_pass(judge, condition):
    assert findings(judge, backup_trust(condition), "backup-plan-coverage") == []
