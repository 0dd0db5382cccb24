"""The real program under the offline engine, for each real stack: shape, regions, parenting, tags."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from components.alerts import ALERTS_COMPONENT, SUBSCRIPTION_TYPE
from components.failover import METRICS_REGION, METRICS_TYPES
from components.tagging import TAG_COST_CENTER, TAG_REGION, TAG_STACK, TAG_ZONE
from meridian.engine.plan import canonical
from meridian.engine.recorder import (
    OUTPUT_SIG,
    RESOURCE_SIG,
    SECRET_SIG,
    SIG_KEY,
    UNKNOWN,
    UNKNOWN_SHOWN,
    plain,
    plain_struct,
)
from stackconfig import ZONE_REGIONS, load_stack

from .helpers import ROOT, STACKS, meridian_cmd, run_meridian

RESOURCE_KEYS = {
    "urn",
    "type",
    "name",
    "custom",
    "parent",
    "provider",
    "region",
    "inputs",
    "dependencies",
    "protect",
    "propertyDependencies",
}
# AWS types whose arguments have no `tags` map.
UNTAGGABLE = {
    "aws:ec2/route:Route",
    "aws:sns/topicSubscription:TopicSubscription",  # no tags argument
    "aws:costexplorer/costAllocationTag:CostAllocationTag",  # an account setting, no tags
    "aws:lambda/permission:Permission",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",  # no tags argument
    "aws:ecr/replicationConfiguration:ReplicationConfiguration",  # registry-level setting, no tags
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
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
    "aws:backup/selection:Selection",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
}


def aws_resources(plan):
    return [r for r in plan["resources"] if r["custom"] and r["type"].startswith("aws:")]


@pytest.mark.parametrize("stack", STACKS)
def test_plan_json_has_documented_shape(previews, stack):
    plan = previews[stack].plan
    assert set(plan) == {"project", "stack", "resources", "outputs", "secrets", "policy", "cost"}
    assert set(plan["secrets"]) == {"key_id", "digests"}  # keyed digests of secret inputs (engine.secretdigest)
    assert (plan["project"], plan["stack"]) == ("meridian", stack)
    for r in plan["resources"]:
        assert set(r) - {"ignoreChanges"} == RESOURCE_KEYS, r["urn"]  # ignoreChanges only where set
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
        # The one exception: Route 53 health-check alarms, which AWS publishes only in us-east-1,
        # and the subscriptions of their topic (a subscription lives in its topic's region).
        assert r["region"] == METRICS_REGION, f"{r['urn']} is in {r['region']}, outside zone {stack}"
        owner = owning_component(plan, r)["type"]
        if r["type"] == SUBSCRIPTION_TYPE:
            assert owner == ALERTS_COMPONENT, r["urn"]
            continue
        assert r["type"] in METRICS_TYPES, f"{r['urn']} is in {r['region']}, outside zone {stack}"
        assert owner == "meridian:failover:Failover", r["urn"]


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
        assert endpoints == sorted(
            f"com.amazonaws.{region}.{service}" for service in ("dynamodb", "s3", "sts", "ecr.api", "ecr.dkr", "secretsmanager")
        )
        assert any(r["type"] == "aws:ec2/flowLog:FlowLog" and r["inputs"]["trafficType"] == "ALL" for r in mine)


def test_data_subnets_have_no_internet_route(previews):
    plan = previews["us"].plan
    by_urn = {r["urn"]: r for r in plan["resources"]}
    routes = [r for r in plan["resources"] if r["type"] == "aws:ec2/route:Route"]
    data_tables = {
        r["urn"] for r in plan["resources"] if r["type"] == "aws:ec2/routeTable:RouteTable" and "-data-rt" in r["name"]
    }
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
    providers = {p["urn"]: p["inputs"] for p in plan["resources"] if p["type"] == "pulumi:providers:aws"}
    for r in taggable:
        # the provider's default tags under the resource's own, as the AWS provider merges them into tags_all
        defaults = json.loads(providers[r["provider"]]["defaultTags"])["tags"]
        tags = {**defaults, **(r["inputs"].get("tags") or {})}
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


def tree_of(out: str) -> str:
    return out[: out.index("Resources per type and region")]


def test_terminal_tree_groups_by_region_then_component(previews):
    out = previews["eu"].cli.out
    tree = tree_of(out)
    cfg = load_stack(ROOT, "eu")
    primary, dr = cfg.regions.primary.region, cfg.regions.dr.region
    # one section per region, each holding that region's components and nothing of the other's
    at = {region: tree.index(f"── {region} · {role} (") for region, role in ((primary, "primary"), (dr, "dr"))}
    first, second = sorted(at, key=at.get)
    sections = {first: tree[at[first] : at[second]], second: tree[at[second] :]}
    for region, other in ((primary, dr), (dr, primary)):
        section = sections[region].split("── cross-region")[0]
        assert f"RegionNetwork eu-{region}-net: " in section and f"Cluster eu-{region}-eks: " in section
        assert f"eu-{other}-" not in section, f"{other} resources inside the {region} section"
        # tenants folded into one line that still names every tenant
        ids = ", ".join(sorted(t.id for t in cfg.tenants))
        assert f"Tenant x{len(cfg.tenants)}: eu-{region}-t-{{{ids}}}" in section
    assert "ec2:Subnet x9" in tree  # summarised by type with counts
    assert "cross-region (eu-west-1 · primary + eu-central-1 · dr" in tree and "ReplicatedDatabase eu-db: " in tree
    assert len(tree.splitlines()) < 45, "the summary stays short"


@pytest.mark.parametrize("stack", STACKS)
def test_the_tree_and_the_counts_table_agree_on_every_region(previews, stack):
    """A region's line in the tree gives the region's total from the counts table, and both mark
    which region is primary and which dr."""
    import re

    out = previews[stack].cli.out
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    per_region: dict[str, int] = {}
    for r in plan["resources"]:
        if r["custom"] and not r["type"].startswith("pulumi:providers:"):
            per_region[r["region"]] = per_region.get(r["region"], 0) + 1
    header = next(line for line in out.splitlines() if "┃ type" in line)
    total = next(line for line in out.splitlines() if line.startswith("│ all"))
    columns = [c.strip() for c in header.strip("┃").split("┃")]
    values = [c.strip() for c in total.strip("│").split("│")]
    assert f"{cfg.regions.primary.region} · primary" in columns and f"{cfg.regions.dr.region} · dr" in columns
    for column, value in zip(columns[1:-1], values[1:-1], strict=True):
        region = column.split(" · ")[0]
        assert int(value) == per_region[region], column
        line = next((x for x in tree_of(out).splitlines() if re.search(rf"── {re.escape(column)} \(", x)), None)
        if line is None:  # all of the region's resources belong to cross-region components (us-east-1's alarms)
            assert f"+ {column})" in out, column
            continue
        own, *whole = re.findall(r"(\d+) (?:resources?|in )", line)
        assert int((whole or [own])[-1]) == per_region[region], f"tree says {line!r}, the table {value}"


def test_counts_are_explained_in_one_line(previews):
    plan = previews["us"].plan
    out = previews["us"].cli.out
    resources = [r for r in plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:")]
    providers = [r for r in plan["resources"] if r["type"].startswith("pulumi:providers:")]
    components = [r for r in plan["resources"] if not r["custom"] and r["type"] != "pulumi:pulumi:Stack"]
    line = next(x for x in out.splitlines() if x.startswith("counts: "))
    assert line == (
        f"counts: {len(resources)} resources (the tree and the counts table) + {len(providers)} providers + {len(components)} components"
        f" + 1 stack = {len(plan['resources'])} registrations in the plan JSON;"
        f" the policy pack analysed {plan['policy']['resources_analyzed']} (all of them but the stack)"
    )
    assert plan["policy"]["resources_analyzed"] == len(plan["resources"]) - 1
    assert f"Resources per type and region ({len(resources)} total)" in out


def test_diagram_is_mermaid_with_a_subgraph_per_region(previews):
    diagram = previews["apac"].diagram
    assert "```mermaid" in diagram and "flowchart LR" in diagram
    assert 'subgraph n_ap_southeast_1["ap-southeast-1 · primary"]' in diagram
    assert 'subgraph n_ap_southeast_2["ap-southeast-2 · dr"]' in diagram


def test_the_primary_comes_before_the_dr_region_in_the_tree_the_counts_and_the_diagram(previews):
    # eu's dr region (eu-central-1) sorts before its primary (eu-west-1) by name
    eu = previews["eu"]
    tree = tree_of(eu.cli.out)
    assert tree.index("── eu-west-1 · primary (") < tree.index("── eu-central-1 · dr (")
    header = next(line for line in eu.cli.out.splitlines() if "┃ type" in line)
    assert header.index("eu-west-1 · primary") < header.index("eu-central-1 · dr")
    assert eu.diagram.index('["eu-west-1 · primary"]') < eu.diagram.index('["eu-central-1 · dr"]')


def test_secrets_are_redacted_and_unknowns_marked():
    wire = {"password": {SIG_KEY: SECRET_SIG, "value": "hunter2"}, "nested": [{"a": UNKNOWN}]}
    shown = plain(wire)
    assert shown == {"password": "[secret]", "nested": [{"a": UNKNOWN_SHOWN}]}
    assert "hunter2" not in json.dumps(shown)


WIRE_CASES = {
    "password": {SIG_KEY: SECRET_SIG, "value": "hunter2"},
    "ref": {SIG_KEY: RESOURCE_SIG, "urn": "urn:pulumi:us::meridian::aws:s3/bucket:Bucket::b", "id": UNKNOWN},
    "output": {SIG_KEY: OUTPUT_SIG, "value": {"z": UNKNOWN, "a": [1, 2.5, True, None]}},
    "secretOutput": {SIG_KEY: OUTPUT_SIG, "value": "x", "secret": True},
    "unknownOutput": {SIG_KEY: OUTPUT_SIG},
    "otherSig": {SIG_KEY: "not-a-signature", "b": UNKNOWN},
    "nested": [{"b": UNKNOWN, "a": {"y": [], "x": {}}}, "", 0, -1.5, False],
    "empty": {},
}


def test_plain_struct_is_canonical_plain_of_the_dict():
    """The plan converts each resource's inputs in one walk; it must equal the three-step original."""
    from google.protobuf import json_format, struct_pb2

    struct = struct_pb2.Struct()
    struct.update(WIRE_CASES)
    shown = plain_struct(struct)
    assert shown == canonical(plain(json_format.MessageToDict(struct)))
    assert list(shown) == sorted(WIRE_CASES) and list(shown["output"]) == ["a", "z"]
    assert shown["password"] == shown["secretOutput"] == "[secret]" and shown["output"]["z"] == UNKNOWN_SHOWN


@pytest.mark.slow
def test_plain_struct_matches_on_every_resource_of_a_real_stack():
    script = (
        "from pathlib import Path; from google.protobuf import json_format\n"
        "from meridian.engine.run import run_program; from meridian.engine.plan import canonical\n"
        "from meridian.engine.recorder import plain, plain_struct\n"
        "run = run_program(Path('.').resolve(), 'us')\n"
        "bad = [r.urn for r in run.registrations if plain_struct(r.inputs) != canonical(plain(json_format.MessageToDict(r.inputs)))]\n"
        "print(len(run.registrations), bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    count, bad = proc.stdout.strip().split(" ", 1)
    assert int(count) > 300 and bad == "[]"


def test_bare_runs_the_same_program(previews):
    cli = run_meridian("preview", "--stack", "us", "--bare")
    assert cli.code == 0, cli.err
    count = sum(1 for r in previews["us"].plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:"))
    assert f"{count} resources in" in cli.out


@pytest.mark.slow
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


@pytest.mark.slow
def test_unparseable_yaml_exits_2(project_copy):
    (project_copy / "Pulumi.eu.yaml").write_text("config: [unclosed\n")
    cli = run_meridian("preview", "--stack", "eu", "--project-dir", str(project_copy))
    assert cli.code == 2 and "Pulumi.eu.yaml: not valid YAML" in cli.err and "Traceback" not in cli.err
    err = " ".join(cli.err.split())
    assert 'Pulumi.eu.yaml", line 2' in err and "<unicode string>" not in err, "the error points at the file and line"


@pytest.mark.slow
def test_unknown_stack_and_bad_output_path_exit_2(tmp_path):
    cli = run_meridian("preview", "--stack", "mars")
    assert cli.code == 2 and "unknown stack 'mars'" in cli.err and "us" in cli.err
    cli = run_meridian("preview", "--stack", "us", "--json", str(tmp_path / "no" / "such" / "plan.json"))
    assert cli.code == 2 and "does not exist" in cli.err


@pytest.mark.slow
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
    assert "meridian:tenants['acme'].plan: unknown plan 'platinum'" in proc.stdout


@pytest.mark.slow
def test_bare_refuses_outputs_it_cannot_write(tmp_path):
    cli = run_meridian("preview", "--stack", "us", "--bare", "--json", str(tmp_path / "plan.json"))
    assert cli.code == 2 and "--bare runs the program under mocks and nothing else" in cli.err
    assert not (tmp_path / "plan.json").exists()


@pytest.mark.slow
def test_flags_show_no_value_placeholder():
    cli = run_meridian("preview", "--help")
    assert cli.code == 0 and "--no-policy" in cli.out and "--full" in cli.out
    assert "<bool>" not in cli.out
    assert "<text|json|markdown>" in cli.out  # options that take a value keep theirs


@pytest.mark.slow
def test_config_error_keeps_the_pattern_and_names_the_tenant(project_copy):
    path = project_copy / "Pulumi.us.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:tenants"][2]["id"] = "Fjord_Analytics"
    path.write_text(yaml.safe_dump(doc))
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project_copy))
    assert cli.code == 2, cli.err
    assert (
        "Pulumi.us.yaml: meridian:tenants['Fjord_Analytics'].id: String should match pattern '^[a-z][a-z0-9-]{1,30}[a-z0-9]$'"
        in cli.err
    )


@pytest.mark.slow
def test_namespace_typo_fails_the_preview_with_a_suggestion(project_copy):
    path = project_copy / "Pulumi.apac.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridan:database"] = doc["config"].pop("meridian:database")
    doc["config"]["aws:regoin"] = "ap-southeast-1"
    path.write_text(yaml.safe_dump(doc))
    cli = run_meridian("preview", "--stack", "apac", "--project-dir", str(project_copy))
    assert cli.code == 2 and "(2 problems)" in cli.err, cli.err
    assert "Pulumi.apac.yaml: meridan:database: unknown config namespace 'meridan'" in cli.err
    assert "did you mean 'meridian:database'?" in cli.err and "did you mean 'region'?" in cli.err


@pytest.fixture(scope="module")
def reruns(tmp_path_factory, previews):
    """Second runs, in parallel: `us` again (narrow COLUMNS, piped), `us --format json`, `apac` with
    20 synthetic tenants as Markdown, and `us --full` as Markdown."""
    import os
    import subprocess

    out = tmp_path_factory.mktemp("reruns")
    runs = {
        "again": (["--stack", "us", "--json", str(out / "us.json"), "--diagram", str(out / "us.md")], {"COLUMNS": "80"}),
        "json": (["--stack", "us", "--format", "json"], {}),
        "many": (["--stack", "apac", "--tenants", "20", "--no-policy", "--format", "markdown"], {}),
        "full": (["--stack", "us", "--no-policy", "--full", "--format", "markdown"], {}),
    }
    procs = {
        k: subprocess.Popen(
            meridian_cmd("preview", *args),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160", **env},
        )
        for k, (args, env) in runs.items()
    }
    done = {}
    for k, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{k}: {stderr}"
        done[k] = stdout
    return out, done


def test_two_previews_give_identical_bytes(previews, reruns):
    """Plan JSON, diagram, tree, counts and cost line of a second run (another process, another hash
    seed, another terminal width) are byte for byte those of the first."""
    out, done = reruns
    first = previews["us"]
    plan_bytes = (out / "us.json").read_text()
    assert plan_bytes == json.dumps(first.plan, indent=1) + "\n"  # the file is exactly the canonical dump
    assert (out / "us.md").read_text() == first.diagram

    def report(text):  # everything before the timed lines
        return text[: text.index("counts: ")]

    assert report(done["again"]) == report(first.cli.out)
    assert "timings" not in first.plan["policy"], "measured timings would make every plan differ"


def test_resources_and_dependencies_are_sorted(previews):
    resources = previews["eu"].plan["resources"]
    urns = [r["urn"] for r in resources]
    assert urns == sorted(urns)
    for r in resources:
        assert r["dependencies"] == sorted(set(r["dependencies"])), r["urn"]


def test_format_json_prints_the_plan_document(previews, reruns):
    _, done = reruns
    assert json.loads(done["json"]) == previews["us"].plan


@pytest.mark.slow
def test_piped_output_keeps_full_names(reruns):
    _, done = reruns
    text = done["again"]  # COLUMNS=80, stdout a pipe
    assert "aws:s3:BucketServerSideEncryptionConfiguration" in text
    assert "…" not in text and "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) > 80


@pytest.mark.slow
def test_summary_tree_never_hides_a_tenant(reruns):
    _, done = reruns
    md = done["many"]
    tree = md[md.index("### Resources by region and component") : md.index("### Resources per type and region")]
    lines = [line for line in tree.splitlines() if "Tenant x20" in line]
    assert len(lines) == 2, tree  # one folded line per region ...
    for line in lines:
        for i in range(20):
            assert f"-{i:02d}" in line, f"tenant {i} hidden: {line}"  # ... naming all twenty
    assert "| type |" in md and "| aws:ec2:Subnet |" in md


def test_full_tree_lists_every_resource_by_name(previews, reruns):
    _, done = reruns
    md = done["full"]
    for r in previews["us"].plan["resources"]:
        if r["custom"] and not r["type"].startswith("pulumi:providers:"):
            assert r["name"] in md, r["urn"]
    assert "Tenant us-us-east-1-t-acme" in md  # components one by one
