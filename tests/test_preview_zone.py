"""`meridian preview --zone`: the platform previewed once, then its cells in parallel worker
processes with the platform's outputs; each stack's plan the one `--stack` writes, one zone index."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from meridian.commands.preview import StackPreview, zone_reference_problems
from meridian.commands.preview.zoneworker import IN_PLATFORM_MARK
from meridian.engine.policy.generated import SETTLED_WITH_PLATFORM

from .helpers import ROOT, full_project_copy, run_meridian

CELL = "us-cell-001"
SECOND = "us-cell-002"
# A stray bucket only the second cell's program makes: untagged, so the pack's mandatory
# aws-resource-required-tags flags it in that stack and no other.
STRAY = f"""

if pulumi.get_stack() == {SECOND!r}:
    import pulumi_aws

    pulumi_aws.s3.Bucket("stray")
"""


@pytest.fixture(scope="module")
def repo_zone(tmp_path_factory, zone_us, previews) -> dict:
    """`--zone us` on the repo's own files (the run's, conftest) beside `--stack us` (the previews
    fixture's) and `--stack us-cell-001`."""
    out = tmp_path_factory.mktemp("repo-zone")
    (out / "zone").symlink_to(zone_us.dir, target_is_directory=True)
    (out / "us.json").write_text(json.dumps(previews["us"].plan))
    cell = run_meridian("preview", "--stack", CELL, "--json", str(out / f"{CELL}.json"), timeout=900)
    return {"dir": out, "cli": {"zone": zone_us.cli, "us": previews["us"].cli, CELL: cell}}


def _two_cell_project(dest: Path, *, second_tenants: list[dict], stray: bool = False) -> Path:
    """A project copy whose `us` serves us-cell-001 (as in the repo) and a second cell."""
    full_project_copy(dest)
    shutil.copy(ROOT / f"Pulumi.{CELL}.yaml", dest / f"Pulumi.{CELL}.yaml")
    us = yaml.safe_load((dest / "Pulumi.us.yaml").read_text())
    us["config"]["meridian:cells"]["names"] = [CELL, SECOND]
    (dest / "Pulumi.us.yaml").write_text(yaml.safe_dump(us, sort_keys=False))
    cell = {"config": {"aws:region": "us-east-1", "meridian:platform": "us", "meridian:tenants": second_tenants}}
    (dest / f"Pulumi.{SECOND}.yaml").write_text(yaml.safe_dump(cell, sort_keys=False))
    if stray:
        main = dest / "__main__.py"
        main.write_text(main.read_text() + STRAY)
    return dest


@pytest.fixture(scope="module")
def two_cells(tmp_path_factory) -> dict:
    """A zone of two cells, the second with a stray untagged bucket: `--zone us --json DIR`."""
    project = _two_cell_project(
        tmp_path_factory.mktemp("two-cells"),
        second_tenants=[{"id": "dunder", "plan": "pro", "monthly_budget_usd": 1500, "data_tier": "pool"}],
        stray=True,
    )
    for stack in (SECOND, "us"):  # the cell's own config, and the platform's, which lists its cells' tenant namespaces
        written = run_meridian("policy", "--stack", stack, "--write-config", cwd=project)
        assert written.code == 0, written
    out = project / "plans"
    out.mkdir()
    cli = run_meridian("preview", "--zone", "us", "--json", str(out), cwd=project, timeout=900)
    return {"cli": cli, "dir": out, "index": json.loads((out / "zone.json").read_text())}


def _resources(plan: dict) -> dict[str, dict]:
    return {r["urn"]: r for r in plan["resources"]}


def test_each_stack_of_the_zone_is_planned_as_its_own_preview_plans_it(repo_zone):
    cli = repo_zone["cli"]
    for name, run in cli.items():
        assert run.code == 0, (name, run)
    out = repo_zone["dir"]
    index = json.loads((out / "zone" / "zone.json").read_text())
    assert [s["stack"] for s in index["stacks"]] == ["us", CELL]
    assert [s["role"] for s in index["stacks"]] == ["platform", "cell"]
    for entry in index["stacks"]:
        zone_plan = json.loads((out / "zone" / entry["plan"]).read_text())
        single = json.loads((out / f"{entry['stack']}.json").read_text())
        assert zone_plan["stack"] == entry["stack"]
        assert _resources(zone_plan) == _resources(single)  # resource for resource, inputs, outputs and all
        assert zone_plan["outputs"] == single["outputs"]
        assert zone_plan["cost"] == single["cost"]
        key = lambda v: (v["policy"], v.get("urn") or "", v["message"])  # noqa: E731 - the analyzer answers in no fixed order
        zone_verdicts = sorted(zone_plan["policy"]["violations"], key=key)
        single_verdicts = sorted(single["policy"]["violations"], key=key)
        # a cell is judged beside its platform's resources by `--stack` as by `--zone`: the same verdicts,
        # and nothing left to the platform (tests/test_policy_cell_platform.py: each part settled by value)
        assert zone_verdicts == single_verdicts
        if entry["role"] == "cell":
            assert entry["in_platform"] == 0
            assert not [v for v in zone_verdicts if IN_PLATFORM_MARK in v["message"]]
            assert not {v["policy"] for v in zone_verdicts} & set(SETTLED_WITH_PLATFORM), zone_verdicts
        assert (
            entry["resources"]
            == sum(r["custom"] and not r["type"].startswith("pulumi:providers:") for r in single["resources"])
            > 0
        )
        assert entry["cost_usd"] == single["cost"]["monthly_total_usd"]
        assert entry["violations"]["mandatory"] == sum(v["level"] == "mandatory" for v in zone_plan["policy"]["violations"])
        assert entry["violations"]["advisory"] == sum(v["level"] == "advisory" for v in zone_plan["policy"]["violations"])
        assert 0 < entry["peak_rss_mib"] < 2048
    tenants = {s["stack"]: s["tenants"] for s in index["stacks"]}
    cell_file = yaml.safe_load((ROOT / f"Pulumi.{CELL}.yaml").read_text())
    assert tenants[CELL] == [t["id"] for t in cell_file["config"]["meridian:tenants"]]
    assert not set(tenants["us"]) & set(tenants[CELL])
    assert index["stacks"][1]["reads"] == ["organization/meridian/us"]
    assert index["resources"] == sum(s["resources"] for s in index["stacks"])
    assert index["zone_problems"] == []


def test_the_zone_prints_one_tree_and_a_line_per_stack(repo_zone):
    out = repo_zone["cli"]["zone"].out
    assert out.count("zone us") >= 2  # the tree's root and the table's title
    assert "meridian stack us " in out and f"meridian stack {CELL}" in out  # one branch per stack under the zone
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.startswith("│")}
    assert set(rows) >= {"us", CELL, "zone"}
    assert "platform" in rows["us"] and "cell" in rows[CELL]
    for stack in ("us", CELL):  # the count `--stack` prints, on the stack's line and its branch of the tree
        single = re.search(r"^(\d+) resources in ", repo_zone["cli"][stack].out, re.M).group(1)
        assert rows[stack].split("│")[4].strip() == single
        assert f"meridian stack {stack} ({single} resources)" in out
    assert "zone checks: passed (1 cells, each reading platform us; one stack per tenant, residency across stacks" in out


def test_two_cells_run_and_the_index_lists_both(two_cells):
    index, out = two_cells["index"], two_cells["dir"]
    assert index["cells"] == [CELL, SECOND]
    tenants = {s["stack"]: s["tenants"] for s in index["stacks"]}
    assert tenants[SECOND] == ["dunder"]
    assert tenants[CELL] == ["vandelay", "stark", "wonka"]
    second = json.loads((out / f"{SECOND}.plan.json").read_text())
    names = [r["name"] for r in second["resources"]]
    assert any(n.startswith("us-us-east-1-t-dunder") for n in names)  # a tenant's names are the zone's, in any stack
    assert not any("vandelay" in n for n in names)  # each cell plans only its own tenants
    assert all(s["reads"] == ["organization/meridian/us"] for s in index["stacks"] if s["role"] == "cell")


def test_a_violation_in_one_cell_fails_the_zone_and_the_index_names_the_stack(two_cells):
    cli, index = two_cells["cli"], two_cells["index"]
    assert cli.code == 1, cli
    mandatory = {s["stack"]: s["violations"]["mandatory"] for s in index["stacks"]}
    assert mandatory[SECOND] > 0
    assert mandatory["us"] == mandatory[CELL] == 0
    assert index["violations"]["mandatory"] == mandatory[SECOND]
    second = json.loads((two_cells["dir"] / f"{SECOND}.plan.json").read_text())
    flagged = {v["urn"] for v in second["policy"]["violations"] if v["level"] == "mandatory"}
    assert flagged and all(urn.endswith("::stray") for urn in flagged)
    assert f"stack {SECOND}" in cli.out and "stray" in cli.out


def test_a_tenant_in_two_cells_exits_2_naming_both_files(tmp_path):
    project = _two_cell_project(tmp_path, second_tenants=[{"id": "stark", "plan": "pro", "monthly_budget_usd": 500}])
    cli = run_meridian("preview", "--zone", "us", cwd=project)
    assert cli.code == 2, cli
    assert f"Pulumi.{CELL}.yaml" in cli.err and f"Pulumi.{SECOND}.yaml" in cli.err and "'stark'" in cli.err
    assert "Traceback" not in cli.err


@pytest.mark.parametrize(
    ("zone", "said"),
    [("nope", "unknown zone 'nope': no readable Pulumi.nope.yaml"), (CELL, f"Pulumi.{CELL}.yaml is a cell of 'us'")],
)
def test_a_zone_without_its_platform_stack_file_exits_2(zone, said):
    cli = run_meridian("preview", "--zone", zone)
    assert cli.code == 2, cli
    assert said in cli.err and "zones: apac, eu, us" in cli.err


def test_a_listed_cell_without_its_file_exits_2(tmp_path):
    project = _two_cell_project(tmp_path, second_tenants=[])
    (project / f"Pulumi.{SECOND}.yaml").unlink()
    cli = run_meridian("preview", "--zone", "us", cwd=project)
    assert cli.code == 2, cli
    assert f"lists '{SECOND}', which has no cell file Pulumi.{SECOND}.yaml" in cli.err


def test_a_cell_its_platform_does_not_list_exits_2(tmp_path):
    project = _two_cell_project(tmp_path, second_tenants=[])
    (project / "Pulumi.us-cell-009.yaml").write_text(
        yaml.safe_dump({"config": {"aws:region": "us-east-1", "meridian:platform": "us", "meridian:tenants": []}})
    )
    cli = run_meridian("preview", "--zone", "us", cwd=project)
    assert cli.code == 2, cli
    assert "Pulumi.us.yaml: meridian:cells.names" in cli.err and "does not list cell 'us-cell-009'" in cli.err


def test_a_cell_without_its_policy_config_exits_2_naming_the_stack(tmp_path):
    """Found in the cell's worker, after the platform's preview: the error still names the stack."""
    project = _two_cell_project(tmp_path, second_tenants=[{"id": "dunder", "plan": "pro", "monthly_budget_usd": 1500}])
    assert run_meridian("policy", "--stack", "us", "--write-config", cwd=project).code == 0  # the platform's: current
    cli = run_meridian("preview", "--zone", "us", cwd=project, timeout=900)
    assert cli.code == 2, cli
    assert f"stack {SECOND}: " in cli.err and f"policies/config/{SECOND}.json" in cli.err and "Traceback" not in cli.err
    assert "Exception ignored" not in cli.err, "an event loop left unclosed (tests/test_engine_loops.py)"


def test_a_first_preview_of_the_zone_leaves_the_platforms_unknowns_unknown_in_the_cell(tmp_path):
    """The platform's ids and endpoints are unknown before its first `up`: the cell's StackReference
    yields them unknown (its Kubernetes provider's kubeconfig too), and the zone still plans."""
    cli = run_meridian("preview", "--zone", "us", "--first-preview", "--no-policy", "--json", str(tmp_path), timeout=900)
    assert cli.code == 0, cli
    cell = json.loads((tmp_path / f"{CELL}.plan.json").read_text())
    provider = next(r for r in cell["resources"] if r["type"] == "pulumi:providers:kubernetes")
    assert provider["inputs"]["kubeconfig"] == "[unknown]"
    assert json.loads((tmp_path / "zone.json").read_text())["stacks"][1]["resources"] > 0


def test_flags_a_zone_does_not_take_exit_2():
    cli = run_meridian("preview", "--zone", "us", "--format", "json", "--diagram", "x.md")
    assert cli.code == 2 and "does not take --diagram, --format" in cli.err, cli


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--zone", "us", "--cell-size", "4"), "--cell-size sizes the synthetic cells of --tenants N: give --tenants too"),
        (("--stack", "us", "--cell-size", "4"), "--stack takes no cells"),
        (("--zone", "us", "--tenants", "5"), "--tenants 5: zone us already has 7 tenants (us 4, us-cell-001 3)"),
        (("--zone", "us", "--tenants", "12", "--cell-size", "3"), "over cells.size 3"),
    ],
)
def test_bad_zone_scale_input_exits_2(args, said):
    cli = run_meridian("preview", *args)
    assert cli.code == 2 and said in cli.err and "Traceback" not in cli.err, cli


# A cell principal granted another cell's tenant prefix: a role policy only the second synthetic
# cell's program makes, allowing reads of us-cell-001's tenant vandelay under any bucket.
REACH = """

if pulumi.get_stack() == "us-cell-003":
    import json as _json

    import pulumi_aws

    pulumi_aws.iam.RolePolicy(
        "reach",
        role="meridian-reach",
        policy=_json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/tenants/t-vandelay/*"}]}
        ),
    )
"""


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict:
    """`--zone us --tenants 12 --cell-size 4`: the repo's 7 tenants and 5 synthetic ones in two new
    cells held in memory, the second reaching another cell's tenant."""
    project = full_project_copy(tmp_path_factory.mktemp("synthetic"))
    shutil.copy(ROOT / f"Pulumi.{CELL}.yaml", project / f"Pulumi.{CELL}.yaml")
    main = project / "__main__.py"
    main.write_text(main.read_text() + REACH)
    out = project / "plans"
    out.mkdir()
    cli = run_meridian(
        "preview", "--zone", "us", "--tenants", "12", "--cell-size", "4", "--json", str(out), cwd=project, timeout=900
    )
    return {"cli": cli, "dir": out, "project": project, "index": json.loads((out / "zone.json").read_text())}


def test_synthetic_cells_are_previewed_from_memory(synthetic):
    index, project = synthetic["index"], synthetic["project"]
    assert index["cells"] == [CELL, SECOND, "us-cell-003"]
    tenants = {s["stack"]: s["tenants"] for s in index["stacks"]}
    assert tenants[SECOND] == ["acme-00000", "globex-00001", "initech-00002", "umbrella-00003"]
    assert tenants["us-cell-003"] == ["vandelay-00004"]
    assert index["tenants"] == 12
    assert not (project / f"Pulumi.{SECOND}.yaml").exists() and not (project / f"policies/config/{SECOND}.json").exists()
    plan = json.loads((synthetic["dir"] / f"{SECOND}.plan.json").read_text())
    assert any(
        r["name"].startswith("us-us-east-1-t-acme-00000") for r in plan["resources"]
    )  # a tenant keeps its names in any stack of the zone
    us = json.loads((synthetic["dir"] / "us.plan.json").read_text())
    mounted = json.dumps([r["inputs"] for r in us["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"])
    assert all(f"meridian-tenants-{cell}" in mounted for cell in (CELL, SECOND, "us-cell-003"))  # the platform serves them
    assert all(s["reads"] == ["organization/meridian/us"] for s in index["stacks"] if s["role"] == "cell")


def test_a_cell_reaching_another_cells_tenant_fails_the_zone(synthetic):
    cli, index = synthetic["cli"], synthetic["index"]
    assert cli.code == 1, cli
    (reach,) = [p for p in index["zone_problems"] if "reaches another stack's tenant data" in p]
    assert reach.startswith("cell us-cell-003: ") and "::reach allows arn:aws:s3:::*/tenants/t-vandelay/*" in reach
    # `*` spans `/` in an S3 ARN: any bucket's key ending in that prefix, so every other stack's tenant data
    assert f"(stack {CELL})" in reach and "(stack us)" in reach and "more" in reach
    assert "zone check:" in cli.out and "reaches another stack's tenant data" in cli.out


def _cell(stack: str, reads: list[str]) -> StackPreview:
    return StackPreview(
        stack=stack,
        resources=0,
        mandatory=0,
        advisory=0,
        policy_evaluated=True,
        cost_usd=0.0,
        stack_cap_usd=0.0,
        tree=None,
        wire_outputs={},
        stacks_read=reads,
        seconds=0.0,
        violations_text="",
        cost_summary="",
        cost_problems=[],
        preflight="",
    )


def test_every_cell_must_read_its_zones_platform_and_only_it():
    ok = _cell(CELL, ["organization/meridian/us", "organization/meridian/us"])
    none = _cell("us-cell-002", [])
    other = _cell("us-cell-003", ["organization/meridian/us", "organization/meridian/eu"])
    problems = zone_reference_problems("us", [ok, none, other])
    assert len(problems) == 2
    assert problems[0].startswith("cell us-cell-002 reads no stack")
    assert problems[1].startswith("cell us-cell-003 reads organization/meridian/us, organization/meridian/eu")
