"""The cap enforcer in the rendered plan: its tag is not drift to Pulumi, and its failures alarm."""

from __future__ import annotations

import json

import pytest

from components.functions.cap_enforcer import OVER_BUDGET_TAG

from .helpers import STACKS, of_type

PROVIDER = "pulumi:providers:aws"


def _inputs_of(provider: dict) -> dict:
    ignore = provider["inputs"].get("ignoreTags")
    return json.loads(ignore) if isinstance(ignore, str) else ignore or {}


@pytest.mark.parametrize("stack", STACKS)
def test_every_provider_of_a_tenant_key_ignores_the_over_budget_tag(previews, stack):
    """Tenant keys are Pulumi's, with `tags`: without `ignore_tags` a refresh reads the enforcer's tag
    as drift and `pulumi up --refresh` removes it, un-capping the tenant."""
    plan = previews[stack].plan
    providers = {r["urn"]: r for r in of_type(plan, PROVIDER)}
    tenant_keys = [r for r in of_type(plan, "aws:kms/key:Key") if "meridian:tenant" in (r["inputs"].get("tags") or {})]
    assert tenant_keys, "the stack has tenant keys"
    used = {r["provider"] for r in tenant_keys}
    assert used <= set(providers)
    assert all(OVER_BUDGET_TAG in _inputs_of(providers[urn]).get("keys", []) for urn in used)


@pytest.mark.parametrize("stack", STACKS)
def test_the_enforcers_errors_alarm_to_the_budget_alert_topic(previews, stack):
    plan = previews[stack].plan
    (function,) = [r for r in of_type(plan, "aws:lambda/function:Function") if r["name"].endswith("-enforcer")]
    alarms = [
        r
        for r in of_type(plan, "aws:cloudwatch/metricAlarm:MetricAlarm")
        if r["inputs"].get("namespace") == "AWS/Lambda" and r["inputs"].get("metricName") == "Errors"
    ]
    (alarm,) = [a for a in alarms if a["inputs"]["dimensions"] == {"FunctionName": function["inputs"]["name"]}]
    assert alarm["inputs"]["threshold"] == 1 and alarm["inputs"]["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    (topic_policy,) = [r for r in of_type(plan, "aws:sns/topicPolicy:TopicPolicy") if r["name"].endswith("-alerts-policy")]
    topic = topic_policy["inputs"]["arn"]
    assert alarm["inputs"]["alarmActions"] == [topic]
    # the topic admits CloudWatch: its policy and its key's
    statements = json.loads(topic_policy["inputs"]["policy"])["Statement"]
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and s["Action"] == "SNS:Publish" for s in statements)
    (key,) = [r for r in of_type(plan, "aws:kms/key:Key") if r["name"].endswith("-cost-alerts-key")]
    assert "cloudwatch.amazonaws.com" in key["inputs"]["policy"]
