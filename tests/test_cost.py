"""The offline cost estimate: a hand-computed case, the gates, and synthetic tenants."""

from __future__ import annotations

import json

import pytest
import yaml

from meridian.costmodel import estimate, load_prices
from stackconfig import load_stack

from .helpers import ROOT, run_meridian

PRICES = {
    "source": "test table",
    "date": "2026-01-01",
    "currency": "USD",
    "hours_per_month": 730,
    "regional_factor": {"us-east-1": 1.0, "us-west-2": 1.5},
    "hourly": {"eks_cluster": 0.10, "nat_gateway": 0.05, "public_ipv4": 0.005, "nlb": 0.02},
    "ec2_hourly": {"m7g.large": 0.08},
    "rds_hourly": {"aurora-postgresql": {"db.r6g.large": 0.25}, "postgres": {"db.r6g.large": 0.2}},
    "monthly": {
        "kms_key": 1.0,
        "route53_zone": 0.5,
        "health_check_base": 0.75,
        "health_check_feature": 1.0,
        "cloudwatch_alarm": 0.1,
        "budget_with_actions": 3.0,
    },
    "per_gb_month": {"s3_standard": 0.02, "rds_gp3": 0.1, "aurora_storage": 0.1},
}


def res(urn, rtype, region, inputs):
    return {"urn": urn, "type": rtype, "region": region, "custom": True, "inputs": inputs}


def test_estimate_matches_a_hand_computed_case():
    cfg = load_stack(ROOT, "us")  # 4 tenants: acme (enterprise), globex (pro), initech + umbrella (starter)
    resources = [
        res("a", "aws:eks/cluster:Cluster", "us-east-1", {}),  # 0.10 * 730 = 73.00
        res(
            "b", "aws:eks/nodeGroup:NodeGroup", "us-west-2", {"scalingConfig": {"desiredSize": 3}, "instanceTypes": ["m7g.large"]}
        ),  # 0.08 * 730 * 1.5 * 3 = 262.80
        res(
            "c",
            "aws:rds/instance:Instance",
            "us-east-1",
            {"engine": "postgres", "instanceClass": "db.r6g.large", "multiAz": True, "allocatedStorage": 100},
        ),  # (0.2*730 + 0.1*100) * 2 = 312.00
        res("d", "aws:kms/key:Key", "us-west-2", {"tags": {"meridian:tenant": "globex"}}),  # 1.00 to globex
        res(
            "e",
            "aws:route53/healthCheck:HealthCheck",
            "us-east-1",
            {"type": "HTTPS", "measureLatency": True, "requestInterval": 10},
        ),  # 0.75 + 3 = 3.75
        res("f", "aws:ec2/vpc:Vpc", "us-east-1", {}),  # free
    ]
    report = estimate(resources, cfg, "us", PRICES)
    storage = sum(cfg.quota_of(t).storage_gb for t in cfg.tenants) * 0.02 * (1.0 + 1.5)  # quota storage in both regions
    assert report.total_usd == pytest.approx(73.00 + 262.80 + 312.00 + 1.00 + 3.75 + storage)
    assert report.unpriced_types == []
    shared = 73.00 + 262.80 + 312.00 + 3.75
    weights = {"acme": 1000 * 20 + 20000, "globex": 200 * 20 + 5000, "initech": 50 * 20 + 1000, "umbrella": 50 * 20 + 1000}
    globex = next(t for t in report.tenants if t.tenant == "globex")
    assert globex.shared_usd == pytest.approx(shared * weights["globex"] / sum(weights.values()))
    assert globex.direct_usd == pytest.approx(1.00 + 2000 * 0.02 * 2.5)
    assert report.by("region")["us-west-2"] == pytest.approx(262.80 + 1.00 + storage * 1.5 / 2.5)
    assert not report.problems


def test_unknown_types_are_reported_not_silently_free():
    cfg = load_stack(ROOT, "us")
    report = estimate([res("x", "aws:opensearch/domain:Domain", "us-east-1", {})], cfg, "us", PRICES)
    assert report.unpriced_types == ["aws:opensearch/domain:Domain"]


def test_shipped_price_table_names_its_source_and_date():
    prices = load_prices()
    assert prices["source"] and prices["date"]
    assert set(prices["regional_factor"]) >= {
        "us-east-1",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-1",
        "ap-southeast-2",
    }


def test_preview_fills_the_plan_cost_key(previews):
    cost = previews["eu"].plan["cost"]
    assert cost["evaluated"] and cost["monthly_total_usd"] > 0 and not cost["problems"]
    assert {t["tenant"] for t in cost["tenants"]} == {t.id for t in load_stack(ROOT, "eu").tenants}
    assert set(cost["by_region"]) >= {"eu-west-1", "eu-central-1"}
    assert cost["unpriced_types"] == []


@pytest.mark.slow
def test_cost_command_prints_tables_and_passes_within_caps():
    cli = run_meridian("cost", "--stack", "eu")
    assert cli.code == 0, cli.err
    for text in ("by resource type", "by region", "by tenant", "bundesbank-labs", "per 1k requests", "prices: "):
        assert text in cli.out, text


@pytest.mark.slow
def test_plan_over_caps_exits_1_naming_the_offenders(project_copy):
    path = project_copy / "Pulumi.eu.yaml"
    doc = yaml.safe_load(path.read_text())
    for tenant in doc["config"]["meridian:tenants"]:
        tenant["monthly_budget_usd"] = 100 if tenant["id"] != "tapas-io" else 10
    doc["config"]["meridian:cost"]["stack_cap_usd"] = 1000
    path.write_text(yaml.safe_dump(doc))
    out = project_copy / "cost.json"
    cli = run_meridian("cost", "--stack", "eu", "--project-dir", str(project_copy), "--json", str(out))
    assert cli.code == 1, cli.err + cli.out
    assert "stack eu: estimate $" in cli.out and "over the stack cap $1,000.00" in cli.out
    assert "tenant tapas-io: estimate $" in cli.out and "over its budget $10.00" in cli.out
    assert len(json.loads(out.read_text())["problems"]) == 1 + 4


@pytest.mark.slow
def test_budgets_over_cap_exit_2(project_copy):
    path = project_copy / "Pulumi.apac.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:cost"]["stack_cap_usd"] = 100
    path.write_text(yaml.safe_dump(doc))
    cli = run_meridian("cost", "--stack", "apac", "--project-dir", str(project_copy))
    assert cli.code == 2 and "Pulumi.apac.yaml: meridian:tenants: tenant budgets sum to" in cli.err


@pytest.mark.slow
def test_synthetic_tenants_replace_the_stack_tenants(tmp_path):
    out = tmp_path / "plan.json"
    cli = run_meridian("preview", "--stack", "apac", "--tenants", "7", "--no-policy", "--json", str(out))
    assert cli.code == 0, cli.err
    plan = json.loads(out.read_text())
    tenants = {t["tenant"]: t["plan"] for t in plan["cost"]["tenants"]}
    assert len(tenants) == 7 and set(tenants.values()) == {"enterprise", "pro", "starter"}
    namespaces = [
        r
        for r in plan["resources"]
        if r["type"] == "kubernetes:core/v1:Namespace" and r["inputs"]["metadata"]["name"].startswith("t-")
    ]
    assert len(namespaces) == 7 * 2
    budgets = [r for r in plan["resources"] if r["type"] == "aws:budgets/budget:Budget"]
    assert len(budgets) == 7 + 1


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["-1", "100000", "many"])
def test_bad_tenant_count_exits_2(bad):
    cli = run_meridian("preview", "--stack", "us", "--tenants", bad)
    assert cli.code == 2 and "Traceback" not in cli.err


def test_one_tenant_over_budget_is_named_as_such_not_as_the_stack_over_its_cap():
    from meridian.render import cost_summary

    cfg = load_stack(ROOT, "us")
    globex = next(t for t in cfg.tenants if t.id == "globex")
    tight = cfg.model_copy(
        update={"tenants": tuple(t.model_copy(update={"monthly_budget_usd": 1.0}) if t is globex else t for t in cfg.tenants)}
    )
    report = estimate([res("k", "aws:kms/key:Key", "us-east-1", {"tags": {"meridian:tenant": "globex"}})], tight, "us", PRICES)
    line = cost_summary(report)
    assert "within the stack cap" in line and "1 tenant over budget[/] (globex)" in line, line
    assert "over the stack cap" not in line
    (problem,) = report.problems
    assert problem.endswith("is over its budget $1.00 (Pulumi.us.yaml: meridian:tenants['globex'].monthly_budget_usd)")
    over = estimate(
        [res("a", "aws:eks/cluster:Cluster", "us-east-1", {})],
        cfg.model_copy(update={"cost": cfg.cost.model_copy(update={"stack_cap_usd": 1.0})}),
        "us",
        PRICES,
    )
    assert "(Pulumi.us.yaml: meridian:cost.stack_cap_usd)" in over.problems[0] and "over the stack cap" in cost_summary(over)
    tenants = report.to_json()["tenants"]
    assert all(t["shared_usd"] == round(t["shared_usd"], 2) and t["direct_usd"] == round(t["direct_usd"], 2) for t in tenants)


def test_a_cost_line_that_is_not_a_type_token_keeps_its_name():
    from meridian.engine.plan import short_type

    assert short_type("s3-storage-at-quota") == "s3-storage-at-quota"
    assert short_type("aws:ec2/subnet:Subnet") == "aws:ec2:Subnet"
    assert short_type("meridian:network:RegionNetwork") == "meridian:network:RegionNetwork"
