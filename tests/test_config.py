"""The typed stack config: real stacks parse; every documented rejection is reported with file and key."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from stackconfig import (
    ZONE_REGIONS,
    ConfigError,
    RawConfig,
    StackFileError,
    engine_config,
    load_stack,
    parse_config,
    read_stack_files,
)
from stackconfig.planning import plan_subnets

from .helpers import ROOT, STACKS, run_meridian


def us_raw() -> RawConfig:
    raw, _ = read_stack_files(ROOT, "us")
    return RawConfig(copy.deepcopy(raw.values), dict(raw.sources), raw.default_source)


def problems_of(raw: RawConfig) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize("stack", STACKS)
def test_real_stacks_parse_with_pair_inside_zone(stack):
    cfg = load_stack(ROOT, stack)
    assert cfg.zone == stack
    assert cfg.regions.primary.region != cfg.regions.dr.region
    assert {cfg.regions.primary.region, cfg.regions.dr.region} <= set(ZONE_REGIONS[stack])
    assert len(cfg.tenants) >= 3
    assert len({t.plan for t in cfg.tenants}) >= 2, "stacks carry a mix of plans"
    assert cfg.failover.detection_bound_s < cfg.failover.failover_bound_s <= cfg.failover.rto_target_s


def test_plan_catalog_matches_product_brief():
    cfg = load_stack(ROOT, "us")
    assert cfg.plans["starter"].quota.model_dump() == {"gql_qps": 50, "ingest_eps": 1000, "storage_gb": 200}
    assert cfg.plans["pro"].quota.model_dump() == {"gql_qps": 200, "ingest_eps": 5000, "storage_gb": 2000}
    assert cfg.plans["enterprise"].per_tenant
    acme = next(t for t in cfg.tenants if t.plan == "enterprise")
    assert cfg.quota_of(acme) == acme.quota


def test_stack_file_overrides_project_default_and_sources_are_tracked():
    raw, others = read_stack_files(ROOT, "apac")
    assert raw.values["database"]["engine"] == "postgres"
    assert raw.source_of("database") == "Pulumi.apac.yaml"
    assert raw.source_of("plans") == "Pulumi.yaml"
    assert others["aws:region"] == "ap-southeast-1"


def test_unknown_key_is_named_with_its_file():
    raw = us_raw()
    raw.values["failover"]["health_check_intervall_s"] = 10
    raw.values["colour"] = "blue"
    found = problems_of(raw)
    assert any(p.startswith("Pulumi.us.yaml: meridian:failover.health_check_intervall_s: unknown key") for p in found)
    assert any(p.startswith("Pulumi.us.yaml: meridian:colour: unknown key") for p in found)


def test_wrong_type_names_key_and_value():
    raw = us_raw()
    raw.values["failover"]["failure_threshold"] = "three"
    (problem,) = problems_of(raw)
    assert problem.startswith("Pulumi.us.yaml: meridian:failover.failure_threshold:")
    assert "'three'" in problem


def test_region_outside_zone_lists_allowed_regions():
    raw = us_raw()
    raw.values["regions"]["dr"]["region"] = "eu-west-1"
    (problem,) = problems_of(raw)
    assert "meridian:regions.dr.region" in problem and "outside residency zone 'us'" in problem
    assert "us-west-2" in problem  # says what is allowed


def test_primary_equal_to_dr_is_rejected():
    raw = us_raw()
    raw.values["regions"]["dr"]["region"] = "us-east-1"
    assert any("meridian:regions.dr.region: dr region must differ" in p for p in problems_of(raw))


def test_overlapping_cidrs_are_rejected():
    raw = us_raw()
    raw.values["regions"]["dr"]["cidr"] = "10.10.128.0/17"
    assert any("meridian:regions.dr.cidr" in p and "overlaps" in p for p in problems_of(raw))


def test_duplicate_tenant_id_is_rejected_naming_both_entries():
    raw = us_raw()
    raw.values["tenants"][2]["id"] = raw.values["tenants"][1]["id"]
    (problem,) = problems_of(raw)
    assert "meridian:tenants['globex'].id: duplicate tenant id 'globex' (entries 2 and 3 of the list)" in problem


def test_unknown_plan_lists_catalog():
    raw = us_raw()
    raw.values["tenants"][1]["plan"] = "platinum"
    (problem,) = problems_of(raw)
    assert "meridian:tenants['globex'].plan: unknown plan 'platinum' (allowed: starter, pro, enterprise)" in problem


def test_moving_a_tenant_to_a_per_tenant_plan_says_which_quota_keys_it_needs():
    raw = us_raw()
    raw.values["tenants"][1]["plan"] = "enterprise"
    (problem,) = problems_of(raw)
    assert problem.endswith(
        "meridian:tenants['globex'].quota: plan 'enterprise' is set per tenant: give this tenant a quota "
        "(quota: {gql_qps: <n>, ingest_eps: <n>, storage_gb: <n>})"
    ), problem


def test_tenant_errors_name_the_tenant_by_its_id_as_written():
    raw = us_raw()
    raw.values["tenants"][3]["id"] = "Fjord_Analytics"
    (problem,) = problems_of(raw)
    assert problem.startswith("Pulumi.us.yaml: meridian:tenants['Fjord_Analytics'].id: String should match pattern"), problem
    assert "'^[a-z][a-z0-9-]{1,30}[a-z0-9]$'" in problem


def test_a_tenant_without_an_id_is_named_by_its_position():
    raw = us_raw()
    del raw.values["tenants"][3]["id"]
    (problem,) = problems_of(raw)
    assert problem.startswith("Pulumi.us.yaml: meridian:tenants[3].id: required key is missing"), problem


@pytest.mark.parametrize(
    ("section", "typo", "meant"),
    [
        ("failover", "rto_target", "rto_target_s"),
        (None, "tenant", "tenants"),
        ("plans.starter.quota", "gql_qp", "gql_qps"),
        ("tenants.1", "monthly_budget", "monthly_budget_usd"),
    ],
)
def test_unknown_key_suggests_the_closest_known_one(section, typo, meant):
    raw = us_raw()
    node = raw.values
    for part in (section or "").split(".") if section else ():
        node = node[int(part)] if part.isdigit() else node[part]
    node[typo] = 1
    found = [p for p in problems_of(raw) if "unknown key" in p]
    assert len(found) == 1 and found[0].endswith(f"did you mean {meant!r}?"), found


def test_unknown_key_with_nothing_close_gets_no_guess():
    raw = us_raw()
    raw.values["failover"]["zzz"] = 1
    (problem,) = problems_of(raw)
    assert problem.endswith("unknown key (remove it or check its spelling)")


def test_failover_bound_over_rto_target_is_rejected_with_arithmetic():
    raw = us_raw()
    raw.values["failover"].update(health_check_interval_s=30, failure_threshold=3, rto_target_s=100)
    (problem,) = problems_of(raw)
    assert "meridian:failover" in problem
    assert "checks 30 x 3 + TTL 10 + checker aggregation 30 + propagation margin 10 = 140 s exceeds rto_target_s 100 s" in problem
    assert "set failure_threshold <= 1" in problem


def test_budgets_over_stack_cap_are_rejected():
    raw = us_raw()
    raw.values["cost"]["stack_cap_usd"] = 1000
    (problem,) = problems_of(raw)
    assert "meridian:tenants: tenant budgets sum to $9,500.00, over the stack cap" in problem


def test_every_problem_is_reported_at_once():
    raw = us_raw()
    raw.values["regions"]["dr"]["region"] = "eu-west-1"
    raw.values["tenants"][1]["plan"] = "platinum"
    raw.values["tenants"][3]["id"] = "acme"
    raw.values["cost"]["stack_cap_usd"] = 100
    found = problems_of(raw)
    assert len(found) == 4, found


def test_program_and_tooling_parse_identically():
    """The program reads what the engine passes (strings, JSON for objects); the result is the same config."""
    import pulumi.runtime.config as rc

    from stackconfig import from_engine

    passed = engine_config(ROOT, "eu")
    assert all(isinstance(v, str) for v in passed.values())
    rc.set_all_config(passed)
    try:
        assert from_engine("eu") == load_stack(ROOT, "eu")
    finally:
        rc.set_all_config({})


def test_aws_region_outside_zone_is_rejected(project_copy):
    path = project_copy / "Pulumi.eu.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["aws:region"] = "us-east-1"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_stack(project_copy, "eu")
    assert "Pulumi.eu.yaml: aws:region: 'us-east-1' is outside residency zone 'eu'" in str(info.value)


@given(
    base=st.integers(min_value=0, max_value=2**32 - 1),
    prefix=st.integers(min_value=16, max_value=20),
    azs=st.integers(min_value=1, max_value=4),
)
def test_subnet_plan_is_disjoint_and_inside_the_vpc(base, prefix, azs):
    vpc = ipaddress.ip_network((base, prefix), strict=False)
    plan = plan_subnets(str(vpc), azs)
    nets = [ipaddress.ip_network(c) for cidrs in plan.values() for c in cidrs]
    assert len(nets) == 3 * azs
    assert all(n.subnet_of(vpc) for n in nets)
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert all(len(cidrs) == azs for cidrs in plan.values())


def edit_stack(project_dir, stack, **keys):
    """Set (or with None, delete) top-level keys of a stack file, as a user editing it would."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    for key, value in keys.items():
        key = key.replace("__", ":")
        if value is None:
            doc["config"].pop(key)
        else:
            doc["config"][key] = value
    path.write_text(yaml.safe_dump(doc))
    return doc


def test_misspelt_project_namespace_is_refused_with_a_suggestion(project_copy):
    """The issue's case: `meridan:database` was ignored and apac quietly fell back to Aurora."""
    doc = yaml.safe_load((project_copy / "Pulumi.apac.yaml").read_text())
    edit_stack(project_copy, "apac", meridian__database=None, meridan__database=doc["config"]["meridian:database"])
    with pytest.raises(ConfigError) as info:
        load_stack(project_copy, "apac")
    (problem,) = [str(p) for p in info.value.problems]
    assert problem.startswith("Pulumi.apac.yaml: meridan:database: unknown config namespace 'meridan'"), problem
    assert problem.endswith("did you mean 'meridian:database'?")


def test_unknown_aws_key_is_refused_from_the_providers_own_settings(project_copy):
    edit_stack(project_copy, "eu", aws__regoin="eu-west-1", aws__defaultTags={"tags": {"team": "x"}})
    with pytest.raises(ConfigError) as info:
        load_stack(project_copy, "eu")
    (problem,) = [str(p) for p in info.value.problems]  # defaultTags is a real setting: accepted
    assert problem.startswith("Pulumi.eu.yaml: aws:regoin: unknown key: the aws provider (pulumi-aws 7."), problem
    assert problem.endswith("did you mean 'region'?")


def test_provider_keys_come_from_the_installed_sdk():
    import importlib.util

    from stackconfig import provider_config_keys

    keys = provider_config_keys("aws")
    assert {"region", "defaultTags", "assumeRoles", "skipCredentialsValidation", "ignoreTags"} <= keys
    # one key per property of the SDK's config module: none missed
    source = (Path(importlib.util.find_spec("pulumi_aws").origin).parent / "config" / "vars.py").read_text()
    assert len(keys) == source.count("@_builtins.property") > 30
    assert provider_config_keys("kubernetes") is None  # no config module: its keys are not second-guessed


def test_own_namespaces_are_accepted_once_declared(project_copy):
    edit_stack(project_copy, "us", acme__owner="platform-team")
    with pytest.raises(ConfigError) as info:
        load_stack(project_copy, "us")
    assert "acme:owner: unknown config namespace 'acme'" in str(info.value)
    edit_stack(project_copy, "us", meridian__config_namespaces=["acme"])
    assert load_stack(project_copy, "us").config_namespaces == ("acme",)


def test_every_problem_of_every_namespace_is_listed_at_once(project_copy):
    edit_stack(project_copy, "us", aws__regoin="us-east-1", meridan__zone="us", meridian__colour="blue", aws__region="eu-west-1")
    with pytest.raises(ConfigError) as info:
        load_stack(project_copy, "us")
    keys = sorted(p.key for p in info.value.problems)
    assert keys == ["aws:region", "aws:regoin", "meridan:zone", "meridian:colour"], keys


def test_the_program_refuses_foreign_keys_too():
    """Under the real CLI no tooling runs first: the program's own parse sees every key the engine passes."""
    import pulumi.runtime.config as rc

    from stackconfig import from_engine

    rc.set_all_config(
        {**engine_config(ROOT, "eu"), "meridan:database": '{"engine": "postgres"}', "aws:skipCredentialValidation": "true"}
    )
    try:
        with pytest.raises(ConfigError) as info:
            from_engine("eu")
    finally:
        rc.set_all_config({})
    found = "\n".join(map(str, info.value.problems))
    assert "Pulumi.eu.yaml: meridan:database: unknown config namespace" in found
    assert "aws:skipCredentialValidation: unknown key" in found and "did you mean 'skipCredentialsValidation'?" in found


def test_the_config_floor_imports_neither_components_nor_meridian():
    """stackconfig sits below both: the program and the tooling import it, it imports neither."""
    import ast

    upward = []
    for path in sorted((ROOT / "stackconfig").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            upward += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("components", "meridian")]
    assert upward == []


def test_cross_key_problems_come_section_by_section_in_one_run():
    """One check module per section, all run at once: the problems of every section, in section order."""
    raw = us_raw()
    raw.values["cost"]["stack_cap_usd"] = 100
    raw.values["tenants"][1]["plan"] = "platinum"
    raw.values["dr"] = {**raw.values.get("dr", {}), "rpo_minutes": 5}
    raw.values["failover"]["rto_target_s"] = 20
    raw.values["cluster"] = {**raw.values["cluster"], "node_min": 5, "node_desired": 3}
    raw.values["regions"]["dr"]["region"] = raw.values["regions"]["primary"]["region"]
    keys = [p.split(": ")[1] for p in problems_of(raw)]
    assert keys == [
        "meridian:regions.dr.region",
        "meridian:cluster",
        "meridian:failover",
        "meridian:dr.rpo_minutes",
        "meridian:tenants['globex'].plan",
        "meridian:tenants",
    ], keys


def test_both_malformed_files_are_named_in_one_run(project_copy):
    (project_copy / "Pulumi.yaml").write_text((project_copy / "Pulumi.yaml").read_text() + "config: [unclosed\n")
    (project_copy / "Pulumi.us.yaml").write_text("config:\n  meridian:zone: us\n   bad: indent\n")
    with pytest.raises(StackFileError) as info:
        load_stack(project_copy, "us")
    text = str(info.value)
    assert text.startswith("Pulumi.yaml: not valid YAML") and "\nPulumi.us.yaml: not valid YAML" in text, text
    assert "<unicode string>" not in str(info.value)


def test_a_stack_config_mistake_and_an_slo_file_mistake_exit_2_together(project_copy):
    """The gate's two inputs used to be refused one after the other: fix the stack file, run again,
    only then hear of the SLO file."""
    edit_stack(project_copy, "us", meridian__colour="blue")
    slo = project_copy / "slo.yaml"
    slo.write_text("version: 1\nobjectives: {p95_ms: -1, p96_ms: 3}\n")
    cli = run_meridian("slo", "--stack", "us", "--slo", str(slo), "--project-dir", str(project_copy), cwd=project_copy)
    assert cli.code == 2 and "Traceback" not in cli.err, cli.err
    err = " ".join(cli.err.split())
    assert "Pulumi.us.yaml: meridian:colour: unknown key" in err, err
    assert "slo.yaml: objectives.p95_ms:" in err and "slo.yaml: objectives.p96_ms:" in err, err
    assert str(project_copy) not in err, "the SLO file is named from the project, as the stack file is"


def test_a_tenant_entry_with_several_mistakes_gets_all_of_them_named_in_one_run():
    raw = us_raw()
    raw.values["tenants"][1].update(plan="premium", monthly_budget_usd=-5, data_tier="poool")
    found = problems_of(raw)
    assert any("meridian:tenants['globex'].plan: unknown plan 'premium' (allowed: starter, pro, enterprise)" in p for p in found)
    assert any("tenants['globex'].monthly_budget_usd" in p for p in found)
    assert any("tenants['globex'].data_tier" in p for p in found)


def test_a_validator_s_message_reads_without_pydantic_s_prefix():
    raw = us_raw()
    raw.values["alerts"]["subscriptions"][0] = {"protocol": "email", "endpoint": "not-an-address"}
    (problem,) = problems_of(raw)
    assert "Value error" not in problem
    assert "subscriptions[0]: email endpoint must be an address like oncall@example.com" in problem


def test_a_role_that_runs_pull_request_code_is_no_trusted_viewer():
    """Review 18 B1: a PR preview role listed as a viewer too would get every Secret (AmazonEKSAdminViewPolicy)."""
    raw = us_raw()
    preview = raw.values["cluster"]["pr_viewer_role_arns"][0]
    raw.values["cluster"]["viewer_role_arns"] = [*raw.values["cluster"]["viewer_role_arns"], preview]
    (problem,) = problems_of(raw)
    assert "meridian:cluster" in problem and "pr_viewer_role_arns" in problem and preview in problem
