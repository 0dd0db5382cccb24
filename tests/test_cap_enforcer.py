"""The tenant hard-cap enforcer (components/functions/cap_enforcer.py) against moto's Budgets, KMS and
Resource Groups Tagging API: it caps the tenants whose budget is spent, releases them in a new month,
touches nothing of another stack or of a tenant without a budget, and is idempotent."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from components.functions.cap_enforcer import OVER_BUDGET_TAG, reconcile, tenants_over_budget

ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "us-west-2")


def budget(name: str, tenant: str | None, limit: float, spent: float) -> dict:
    filters = {"TagKeyValue": [f"user:meridian:tenant${tenant}"]} if tenant else {"TagKeyValue": ["user:meridian:stack$us"]}
    return {
        "BudgetName": name,
        "BudgetLimit": {"Amount": str(limit), "Unit": "USD"},
        "CostFilters": filters,
        "CalculatedSpend": {"ActualSpend": {"Amount": str(spent), "Unit": "USD"}},
    }


def test_over_budget_is_actual_spend_at_the_limit_for_this_stacks_tenant_budgets_only():
    seen = tenants_over_budget(
        [
            budget("us-cost-tenant-acme-1a2b3c4", "acme", 100, 100),
            budget("us-cost-tenant-beta-5d6e7f8", "beta", 100, 99.99),
            budget("us-cost-stack-0000000", None, 1000, 5000),
            budget("eu-cost-tenant-acme-9a8b7c6", "acme", 10, 50),  # another stack's budget for a same-named tenant
        ],
        "us-cost-tenant-",
    )
    assert seen == {"acme": True, "beta": False}


class FakeBudgets:
    """moto's Budgets keeps no spend: the budgets (with CalculatedSpend) as DescribeBudgets pages them."""

    def __init__(self, budgets: list[dict]):
        self.budgets = budgets

    def get_paginator(self, name):
        assert name == "describe_budgets"
        outer = self

        class Pages:
            def paginate(self, AccountId):  # noqa: N803 - boto3's parameter name
                assert AccountId == ACCOUNT
                return [{"Budgets": outer.budgets[:1]}, {"Budgets": outer.budgets[1:]}]

        return Pages()


@pytest.fixture
def aws():
    with mock_aws():
        keys = {}
        for region in REGIONS:
            kms = boto3.client("kms", region_name=region)
            for stack, tenant in (("us", "acme"), ("us", "beta"), ("us", "gamma"), ("eu", "acme")):
                key = kms.create_key(
                    Tags=[{"TagKey": "meridian:stack", "TagValue": stack}, {"TagKey": "meridian:tenant", "TagValue": tenant}]
                )
                keys[(region, stack, tenant)] = key["KeyMetadata"]["Arn"]
            kms.create_key(Tags=[{"TagKey": "meridian:stack", "TagValue": "us"}])  # a pool key: no tenant
        clients = {
            r: (boto3.client("resourcegroupstaggingapi", region_name=r), boto3.client("kms", region_name=r)) for r in REGIONS
        }
        yield keys, clients


def capped(clients, arn: str) -> bool:
    region = arn.split(":")[3]
    tags = clients[region][1].list_resource_tags(KeyId=arn)["Tags"]
    return {"TagKey": OVER_BUDGET_TAG, "TagValue": "true"} in tags


def test_caps_the_spent_tenants_keys_in_every_region_and_releases_them_in_a_new_month(aws):
    keys, clients = aws
    spent = FakeBudgets([budget("us-cost-tenant-acme-1", "acme", 100, 120), budget("us-cost-tenant-beta-2", "beta", 100, 10)])
    run = dict(account_id=ACCOUNT, stack="us", budget_prefix="us-cost-tenant-", regions=clients)
    done = reconcile(budgets=spent, **run)
    assert sorted(done["capped"]) == sorted(keys[(r, "us", "acme")] for r in REGIONS)
    assert {k: capped(clients, arn) for k, arn in keys.items()} == {k: k[1:] == ("us", "acme") for k in keys}, (
        "only acme's keys of this stack: beta is under budget, gamma has no budget seen, eu's acme is another stack's"
    )
    assert reconcile(budgets=spent, **run) == {"capped": [], "released": []}, "a repeated run changes nothing"
    new_month = FakeBudgets([budget("us-cost-tenant-acme-1", "acme", 100, 0), budget("us-cost-tenant-beta-2", "beta", 100, 0)])
    done = reconcile(budgets=new_month, **run)
    assert sorted(done["released"]) == sorted(keys[(r, "us", "acme")] for r in REGIONS)
    assert not any(capped(clients, arn) for arn in keys.values())


def test_one_keys_error_does_not_stop_the_others_and_fails_the_run(aws):
    """A key that refuses TagResource (as AWS does for a key pending deletion, KMSInvalidStateException):
    every other key is still capped, and the run raises at the end so Lambda counts it in Errors."""
    from components.functions.cap_enforcer import ReconcileIncomplete

    keys, clients = aws
    broken = keys[("us-east-1", "us", "acme")]

    class Refused:
        status_code = 400

    def refuse(params, **_):  # params: the serialized request; KMS's body is JSON naming the key
        if broken in params["body"].decode():
            return Refused(), {"Error": {"Code": "KMSInvalidStateException", "Message": f"{broken} is pending deletion."}}
        return None

    clients["us-east-1"][1].meta.events.register("before-call.kms.TagResource", refuse)
    spent = FakeBudgets([budget("us-cost-tenant-acme-1", "acme", 100, 120), budget("us-cost-tenant-beta-2", "beta", 100, 120)])
    with pytest.raises(ReconcileIncomplete) as failed:
        reconcile(budgets=spent, account_id=ACCOUNT, stack="us", budget_prefix="us-cost-tenant-", regions=clients)
    (failure,) = failed.value.failures
    assert broken in failure and "KMSInvalidStateException" in failure
    expected = {keys[(r, "us", t)] for r in REGIONS for t in ("acme", "beta")} - {broken}
    assert set(failed.value.done["capped"]) == expected, "every other key is capped, in both regions"
    assert all(capped(clients, arn) for arn in expected) and not capped(clients, broken)
