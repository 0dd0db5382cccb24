"""The tenant hard-cap enforcer (an AWS Lambda handler; boto3 and the standard library only).

A tenant whose monthly budget's actual spend has reached its limit gets its KMS keys (every region
of the stack) tagged `meridian:over-budget = true`; a tenant under its limit (a new month) gets the
tag removed. The region's tenant role denies `kms:Encrypt` / `kms:GenerateDataKey*` on a key so
tagged (components.tenantidentity), and every tenant write is SSE-KMS under the tenant's key, so
the tenant's sessions (pods and the service's on its behalf) stop writing new objects while reads,
deletes and everything that keeps costing (storage, requests) go on.

It reconciles every tenant budget on each run, whatever invoked it (a budget notification through
SNS, or the hourly schedule), so a missed or repeated event changes nothing. Budgets are this
stack's: named `<BUDGET_PREFIX>...`, the tenant named by the budget's cost filter
`user:meridian:tenant$<id>` (components.cost).

One key's error (or one region's listing) does not stop the others: the run reconciles every key it
can, then raises `ReconcileIncomplete` naming the failures, so the invocation counts in the
function's Errors metric, which an alarm watches (components.cost).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

OVER_BUDGET_TAG = "meridian:over-budget"
TENANT_TAG = "meridian:tenant"
STACK_TAG = "meridian:stack"
FILTER_PREFIX = f"user:{TENANT_TAG}$"


def tenants_over_budget(budgets: Iterable[dict], budget_prefix: str) -> dict[str, bool]:
    """Tenant id -> whether its budget's actual spend has reached the limit, for this stack's tenant budgets."""
    out: dict[str, bool] = {}
    for budget in budgets:
        if not budget.get("BudgetName", "").startswith(budget_prefix):
            continue
        tenants = [
            v[len(FILTER_PREFIX) :] for v in budget.get("CostFilters", {}).get("TagKeyValue", []) if v.startswith(FILTER_PREFIX)
        ]
        if len(tenants) != 1:
            continue  # the stack budget, or one this function does not own
        limit = float(budget["BudgetLimit"]["Amount"])
        spent = float(budget.get("CalculatedSpend", {}).get("ActualSpend", {}).get("Amount", 0))
        out[tenants[0]] = spent >= limit
    return out


def _budgets(client, account_id: str) -> Iterable[dict]:
    for page in client.get_paginator("describe_budgets").paginate(AccountId=account_id):
        yield from page.get("Budgets", [])


def _tenant_keys(tagging, stack: str) -> Iterable[tuple[str, str, bool]]:
    """(key ARN, tenant, capped now) for every tenant key of the stack in the client's region."""
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": STACK_TAG, "Values": [stack]}, {"Key": TENANT_TAG}], ResourceTypeFilters=["kms:key"]
    )
    for page in pages:
        for item in page.get("ResourceTagMappingList", []):
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            yield item["ResourceARN"], tags[TENANT_TAG], tags.get(OVER_BUDGET_TAG) == "true"


class ReconcileIncomplete(Exception):
    """Some keys (or a region's listing) failed; every other key was reconciled. Raised at the end of the
    run, so the invocation counts as failed (the function's Errors metric, which an alarm watches)."""

    def __init__(self, done: dict[str, list[str]], failures: list[str]):
        super().__init__(f"{len(failures)} failure(s), {done}: " + "; ".join(failures))
        self.done, self.failures = done, failures


def reconcile(*, budgets, account_id: str, stack: str, budget_prefix: str, regions: dict[str, tuple]) -> dict[str, list[str]]:
    """Tag the keys of tenants over budget, untag the others. `regions`: region -> (tagging, kms) clients.
    Returns the keys capped and released (ARNs), for the log. One key's (or region's) error does not
    stop the others: they are collected and raised together at the end (`ReconcileIncomplete`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    over = tenants_over_budget(_budgets(budgets, account_id), budget_prefix)
    done: dict[str, list[str]] = {"capped": [], "released": []}
    failures: list[str] = []
    for region, (tagging, kms) in regions.items():
        try:
            keys = list(_tenant_keys(tagging, stack))
        except (BotoCoreError, ClientError) as exc:
            failures.append(f"{region}: listing tenant keys: {exc}")
            continue
        for arn, tenant, capped in keys:
            if tenant not in over:
                continue  # no budget seen for it (yet): leave it as it is
            try:
                if over[tenant] and not capped:
                    kms.tag_resource(KeyId=arn, Tags=[{"TagKey": OVER_BUDGET_TAG, "TagValue": "true"}])
                    done["capped"].append(arn)
                elif capped and not over[tenant]:
                    kms.untag_resource(KeyId=arn, TagKeys=[OVER_BUDGET_TAG])
                    done["released"].append(arn)
            except (BotoCoreError, ClientError) as exc:
                failures.append(f"{arn} (tenant {tenant}): {exc}")
    if failures:
        raise ReconcileIncomplete(done, failures)
    return done


def handler(event, context):  # noqa: ARG001 - every invocation reconciles everything
    import boto3

    account_id = context.invoked_function_arn.split(":")[4]
    regions = {
        r: (boto3.client("resourcegroupstaggingapi", region_name=r), boto3.client("kms", region_name=r))
        for r in os.environ["REGIONS"].split(",")
    }
    done = reconcile(
        budgets=boto3.client("budgets", region_name="us-east-1"),
        account_id=account_id,
        stack=os.environ["STACK"],
        budget_prefix=os.environ["BUDGET_PREFIX"],
        regions=regions,
    )
    print({k: len(v) for k, v in done.items()}, done)
    return {k: len(v) for k, v in done.items()}
