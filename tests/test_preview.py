"""The real program under the offline engine, for each real stack: shape, regions, parenting, tags."""

from __future__ import annotations

import json

import pytest
import yaml

from components.config import ZONE_REGIONS, load_stack
from components.failover import METRICS_REGION, METRICS_TYPES
from components.tagging import TAG_COST_CENTER, TAG_REGION, TAG_STACK, TAG_ZONE
from meridian.engine.recorder import SECRET_SIG, SIG_KEY, UNKNOWN, UNKNOWN_SHOWN, plain

from .conftest import ROOT, STACKS, run_meridian

RESOURCE_KEYS = {"urn", "type", "name", "custom", "parent", "provider", "region", "inputs", "dependencies", "protect", "propertyDependencies"}
# AWS types whose arguments have no `tags` map.
UNTAGGABLE = {
    "aws:ec2/route:Route",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:route53/record:Record",
    "aws:acm/certificateValidation:CertificateValidation",
    "aws:sns/topicPolicy:TopicPolicy",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:iam/rolePolicy:RolePolicy",
}


def aws_resources(plan):
    return [r for r in plan["resources"] if r["custom"] and r["type"].startswith("aws:")]


@pytest.mark.parametrize("stack", STACKS)
def test_plan_json_has_documented_shape(previews, stack):
    plan = previews[stack].plan
    assert set(plan) == {"project", "stack", "resources", "outputs", "policy", "cost"}
    assert (plan["project"], plan["stack"]) == ("meridian", stack)
    for r in plan["resources"]:
        assert set(r) == RESOURCE_KEYS, r["urn"]
        assert r["urn"].startswith(f"urn:pulumi:{stack}::meridian::")
    assert isinstance(plan["policy"]["violations"], list)
    assert plan["outputs"]["zone"] == stack


def owning_component(plan, resource):
    by_urn = {r["urn"]: r for r in plan["resources"]}
    node = resource
    while node["custom"]:
        node = by_urn[node["parent"]]
    return node


@pytest.mark.parametrize("stack", STACKS)
def test_every_regional_resource_is_under_its_regions_provider_inside_the_zone(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    providers = {r["urn"]: r for r in plan["resources"] if r["type"] == "pulumi:providers:aws"}
    pair = {cfg.regions.primary.region, cfg.regions.dr.region}
    assert {p["inputs"]["region"] for p in providers.values()} == pair | {METRICS_REGION}
    for p in providers.values():
        assert p["name"] == p["inputs"]["region"], "providers are named after their region"
    for r in aws_resources(plan):
        assert r["provider"] in providers, f"{r['urn']} is not under an explicit regional provider"
        assert r["region"] == providers[r["provider"]]["inputs"]["region"]
        if r["region"] in ZONE_REGIONS[stack]:
            continue
        # The one exception: Route 53 health-check alarms, which AWS publishes only in us-east-1.
        assert r["region"] == METRICS_REGION and r["type"] in METRICS_TYPES, f"{r['urn']} is in {r['region']}, outside zone {stack}"
        assert owning_component(plan, r)["type"] == "meridian:failover:Failover", r["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_both_regions_have_a_full_network(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    for region, spec in ((cfg.regions.primary.region, cfg.regions.primary), (cfg.regions.dr.region, cfg.regions.dr)):
        mine = [r for r in aws_resources(plan) if r["region"] == region]
        vpcs = [r for r in mine if r["type"] == "aws:ec2/vpc:Vpc"]
        assert [v["inputs"]["cidrBlock"] for v in vpcs] == [str(spec.cidr)]
        subnets = [r for r in mine if r["type"] == "aws:ec2/subnet:Subnet"]
        tiers = {}
        for s in subnets:
            tiers.setdefault(s["inputs"]["tags"]["meridian:tier"], set()).add(s["inputs"]["availabilityZone"])
        assert {t: len(z) for t, z in tiers.items()} == {"public": 3, "private": 3, "data": 3}
        endpoints = sorted(r["inputs"]["serviceName"] for r in mine if r["type"] == "aws:ec2/vpcEndpoint:VpcEndpoint")
        assert endpoints == [f"com.amazonaws.{region}.dynamodb", f"com.amazonaws.{region}.s3"]
        assert any(r["type"] == "aws:ec2/flowLog:FlowLog" and r["inputs"]["trafficType"] == "ALL" for r in mine)


def test_data_subnets_have_no_internet_route(previews):
    plan = previews["us"].plan
    by_urn = {r["urn"]: r for r in plan["resources"]}
    routes = [r for r in plan["resources"] if r["type"] == "aws:ec2/route:Route"]
    data_tables = {r["urn"] for r in plan["resources"] if r["type"] == "aws:ec2/routeTable:RouteTable" and "-data-rt" in r["name"]}
    assert data_tables
    for route in routes:
        assert route["parent"] not in data_tables, f"{route['urn']} gives a data route table a default route"
        assert by_urn[route["parent"]]["type"] == "aws:ec2/routeTable:RouteTable"


@pytest.mark.parametrize("stack", STACKS)
def test_components_parent_their_children(previews, stack):
    plan = previews[stack].plan
    for r in aws_resources(plan):
        node = owning_component(plan, r)
        assert node["type"].startswith("meridian:"), f"{r['urn']} is not inside a meridian component"
        assert r["name"].startswith(node["name"]), f"{r['urn']} name lacks its component prefix {node['name']}"


@pytest.mark.parametrize("stack", STACKS)
def test_taggable_resources_carry_stack_tags_with_their_region(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    taggable = [r for r in aws_resources(plan) if r["type"] not in UNTAGGABLE]
    assert taggable
    for r in taggable:
        tags = r["inputs"].get("tags") or {}
        assert tags.get(TAG_STACK) == stack, r["urn"]
        assert tags.get(TAG_ZONE) == cfg.zone, r["urn"]
        assert tags.get(TAG_COST_CENTER) == cfg.cost.cost_center, r["urn"]
        assert tags.get(TAG_REGION) == r["region"], r["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_input_is_unknown(previews, stack):
    """Realistic mock outputs: nothing the program feeds back from another resource is left unknown."""
    text = json.dumps(previews[stack].plan["resources"])
    assert UNKNOWN_SHOWN not in text


def test_data_holding_kms_keys_are_protected(previews):
    keys = [r for r in previews["eu"].plan["resources"] if r["type"] == "aws:kms/key:Key"]
    assert keys
    for key in keys:
        assert key["protect"] and key["inputs"]["enableKeyRotation"], key["urn"]


def test_terminal_shows_tree_and_counts_per_region(previews):
    out = previews["eu"].cli.out
    assert "meridian:network:RegionNetwork eu-eu-west-1-net (eu-west-1)" in out
    assert "meridian:network:RegionNetwork eu-eu-central-1-net (eu-central-1)" in out
    assert "eu-west-1" in out and "eu-central-1" in out and "aws:ec2:Subnet" in out


def test_diagram_is_mermaid_with_a_subgraph_per_region(previews):
    diagram = previews["apac"].diagram
    assert "```mermaid" in diagram and "flowchart LR" in diagram
    assert 'subgraph n_ap_southeast_1["ap-southeast-1"]' in diagram
    assert 'subgraph n_ap_southeast_2["ap-southeast-2"]' in diagram


def test_secrets_are_redacted_and_unknowns_marked():
    wire = {"password": {SIG_KEY: SECRET_SIG, "value": "hunter2"}, "nested": [{"a": UNKNOWN}]}
    shown = plain(wire)
    assert shown == {"password": "[secret]", "nested": [{"a": UNKNOWN_SHOWN}]}
    assert "hunter2" not in json.dumps(shown)


def test_bare_runs_the_same_program(previews):
    cli = run_meridian("preview", "--stack", "us", "--bare")
    assert cli.code == 0, cli.err
    count = sum(1 for r in previews["us"].plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:"))
    assert f"{count} resources in" in cli.out


def test_broken_stack_file_exits_2_naming_file_and_key(project_copy):
    path = project_copy / "Pulumi.us.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:regions"]["dr"]["region"] = "eu-west-1"
    doc["config"]["meridian:failover"]["dns_ttl"] = 30
    path.write_text(yaml.safe_dump(doc))
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project_copy))
    assert cli.code == 2
    assert "Pulumi.us.yaml: meridian:regions.dr.region" in cli.err
    assert "Pulumi.us.yaml: meridian:failover.dns_ttl: unknown key" in cli.err
    assert "Traceback" not in cli.err + cli.out


def test_unparseable_yaml_exits_2(project_copy):
    (project_copy / "Pulumi.eu.yaml").write_text("config: [unclosed\n")
    cli = run_meridian("preview", "--stack", "eu", "--project-dir", str(project_copy))
    assert cli.code == 2 and "Pulumi.eu.yaml: not valid YAML" in cli.err and "Traceback" not in cli.err


def test_unknown_stack_and_bad_output_path_exit_2(tmp_path):
    cli = run_meridian("preview", "--stack", "mars")
    assert cli.code == 2 and "unknown stack 'mars'" in cli.err and "us" in cli.err
    cli = run_meridian("preview", "--stack", "us", "--json", str(tmp_path / "no" / "such" / "plan.json"))
    assert cli.code == 2 and "does not exist" in cli.err


def test_program_itself_refuses_bad_config(project_copy):
    """Under the real CLI the tooling check does not run first: the program must refuse on its own."""
    import subprocess
    import sys

    path = project_copy / "Pulumi.us.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:tenants"][0]["plan"] = "platinum"
    path.write_text(yaml.safe_dump(doc))
    code = (
        "import sys; from pathlib import Path; from meridian.engine.run import run_program\n"
        "from meridian.errors import ProgramFailed\n"
        f"try: run_program(Path({str(project_copy)!r}), 'us')\n"
        "except ProgramFailed as e: print(e); sys.exit(7)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 7, proc.stderr
    assert "meridian:tenants[0].plan: unknown plan 'platinum'" in proc.stdout
