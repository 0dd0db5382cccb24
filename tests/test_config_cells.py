"""Cell stacks in the one typed config: a cell renders from its platform's file with its own tenants,
and every way a zone's stack files can disagree is refused with file and key, all in one round."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackconfig import ConfigError, engine_config, load_stack

from .helpers import run_meridian

CELL = "us-cell-009"


def _set(path: Path, key: str, value) -> None:
    doc = yaml.safe_load(path.read_text())
    if value is None:
        doc["config"].pop(key, None)
    else:
        doc["config"][key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _tenant(tid: str, budget: float = 300, plan: str = "starter") -> dict:
    return {"id": tid, "plan": plan, "monthly_budget_usd": budget, "data_tier": "pool"}


def _write_cell(project: Path, name: str = CELL, *, platform: str = "us", region: str = "us-east-1", tenants=None, **extra):
    config = {"aws:region": region, "meridian:platform": platform, "meridian:tenants": tenants or [_tenant("cellco")]}
    config.update(extra)
    (project / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))


def _list_cells(project: Path, *names: str, size: int | None = None) -> None:
    cells = {"names": list(names)}
    if size is not None:
        cells["size"] = size
    _set(project / "Pulumi.us.yaml", "meridian:cells", cells)


def _problems(project: Path, stack: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_stack(project, stack)
    return [str(p) for p in info.value.problems]


@pytest.fixture
def zone(project_copy: Path) -> Path:
    _list_cells(project_copy, CELL)
    _write_cell(project_copy)
    return project_copy


def test_a_cell_renders_from_its_platform_with_its_own_tenants(zone):
    cell, platform = load_stack(zone, CELL), load_stack(zone, "us")
    assert cell.platform == "us" and cell.is_cell and not platform.is_cell
    assert [t.id for t in cell.tenants] == ["cellco"]
    # everything else is the platform's, wherever it was written
    assert cell.regions == platform.regions and cell.plans == platform.plans and cell.cost == platform.cost
    assert cell.where("tenants") == f"Pulumi.{CELL}.yaml: meridian:tenants"
    assert cell.where("cost.stack_cap_usd") == "Pulumi.us.yaml: meridian:cost.stack_cap_usd"


def test_the_engine_hands_a_cell_only_its_own_files(zone):
    """What the real CLI passes a cell's program: Pulumi.yaml defaults and the cell's file, no platform keys."""
    passed = engine_config(zone, CELL)
    assert passed["meridian:platform"] == "us" and "meridian:regions" not in passed and "meridian:zone" not in passed


def test_the_program_reads_a_cell_as_the_tooling_does(zone):
    import pulumi.runtime.config as rc

    from stackconfig import from_engine

    rc.set_all_config(engine_config(zone, CELL))
    try:
        assert from_engine(CELL, zone) == load_stack(zone, CELL)
        with pytest.raises(ConfigError, match="needs its project directory"):
            from_engine(CELL)
    finally:
        rc.set_all_config({})


def test_a_platform_naming_no_stack(zone):
    _set(zone / f"Pulumi.{CELL}.yaml", "meridian:platform", "uss")
    found = _problems(zone, CELL)
    assert len(found) == 1 and found[0].startswith(f"Pulumi.{CELL}.yaml: meridian:platform: 'uss' names no stack"), found


def test_a_platform_that_is_itself_a_cell(zone):
    _write_cell(zone, "us-cell-002")
    _set(zone / f"Pulumi.{CELL}.yaml", "meridian:platform", "us-cell-002")
    found = _problems(zone, CELL)
    assert found == [
        f"Pulumi.{CELL}.yaml: meridian:platform: 'us-cell-002' is itself a cell (its file names platform 'us'): "
        "a cell's platform must be a platform stack"
    ]


def test_a_cell_its_platform_does_not_list(zone):
    _list_cells(zone)  # the platform lists no cell
    expected = f"Pulumi.us.yaml: meridian:cells.names: does not list cell '{CELL}'"
    assert any(p.startswith(expected) for p in _problems(zone, CELL))
    assert any(p.startswith(expected) for p in _problems(zone, "us"))  # and the platform says so too


def test_a_cell_with_keys_of_its_platform(zone):
    _set(zone / f"Pulumi.{CELL}.yaml", "meridian:cost", {"cost_center": "x", "stack_cap_usd": 10})
    _set(zone / f"Pulumi.{CELL}.yaml", "meridian:zone", "us")
    found = _problems(zone, CELL)
    assert [p.split(": a cell")[0] for p in found] == [f"Pulumi.{CELL}.yaml: meridian:cost", f"Pulumi.{CELL}.yaml: meridian:zone"]


def test_a_tenant_in_the_platform_and_a_cell(zone):
    _write_cell(zone, tenants=[_tenant("cellco"), _tenant("globex")])  # globex is inline in us
    cell = _problems(zone, CELL)
    assert cell == [
        f"Pulumi.{CELL}.yaml: meridian:tenants['globex'].id: tenant 'globex' is also in stack us (Pulumi.us.yaml): "
        "a tenant lives in exactly one stack of the zone (moving one is an edit of both files: docs/operations.md)"
    ]
    assert _problems(zone, "us") == [
        f"Pulumi.us.yaml: meridian:tenants['globex'].id: tenant 'globex' is also in stack {CELL} (Pulumi.{CELL}.yaml): "
        "a tenant lives in exactly one stack of the zone (moving one is an edit of both files: docs/operations.md)"
    ]


def test_a_tenant_in_two_cells(zone):
    _list_cells(zone, CELL, "us-cell-002")
    _write_cell(zone, "us-cell-002", tenants=[_tenant("other"), _tenant("cellco")])
    found = _problems(zone, CELL)
    assert len(found) == 1 and "tenant 'cellco' is also in stack us-cell-002 (Pulumi.us-cell-002.yaml)" in found[0]


def test_a_stack_over_the_cell_size(zone):
    _list_cells(zone, CELL, size=3)
    _write_cell(zone, tenants=[_tenant(f"cellco-{i}") for i in range(4)])
    assert _problems(zone, CELL) == [
        f"Pulumi.{CELL}.yaml: meridian:tenants: 4 tenants in this cell, over cells.size 3: put new tenants in a cell "
        "stack with room, or a new one (docs/operations.md)"
    ]
    # the platform's inline tenants are a stack of the zone too
    _list_cells(zone, CELL, size=2)
    found = _problems(zone, "us")
    assert any(p.startswith("Pulumi.us.yaml: meridian:tenants: 4 tenants in the platform's inline tenants") for p in found), found


def test_a_cell_size_no_tenant_file_can_hold_is_refused_before_any_value_is_known(zone):
    """A first preview cannot size the tenant file (its key ARNs are unknown): the config bounds
    cells.size by the longest entry its plan catalog allows, naming the key, for every stack of the zone."""
    from stackconfig.checks.tenants import max_tenants_per_file

    platform = load_stack(zone, "us")
    most = max_tenants_per_file(platform.plans)
    _list_cells(zone, CELL, size=most)
    assert load_stack(zone, CELL).cells.size == most
    _list_cells(zone, CELL, size=most + 1)
    for stack in ("us", CELL):
        (problem,) = [p for p in _problems(zone, stack) if "cells.size" in p.split(": ")[1]]
        assert problem.startswith(f"Pulumi.us.yaml: meridian:cells.size: {most + 1:,} is over {most:,}: a cell's tenant file")
        assert f"set cells.size to at most {most:,}" in problem
    res = run_meridian("preview", "--stack", CELL, "--no-policy", cwd=zone)
    assert res.code == 2 and "meridian:cells.size" in res.out + res.err, res


def test_the_pod_identity_association_quota_cannot_be_raised_past_awss_fixed_limit(zone):
    _set(zone / "Pulumi.us.yaml", "meridian:quotas", {"pod_identity_associations_per_cluster": 6000})
    found = _problems(zone, "us")
    assert any(
        p.startswith("Pulumi.us.yaml: meridian:quotas.pod_identity_associations_per_cluster") and "5000" in p for p in found
    ), found
    res = run_meridian("cost", "--stack", "us", "--project-dir", str(zone))
    assert res.code == 2 and "pod_identity_associations_per_cluster" in res.out + res.err, res


def test_a_zone_past_what_its_clusters_can_associate_is_refused_in_every_stack(zone):
    """One association per tenant on each of the platform's two clusters, plus the platform's own:
    5,000 per cluster, which AWS does not raise. 4,998 tenants in the zone fit; one more is refused,
    by the platform and by every cell, naming the file being loaded and the fix."""
    from stackconfig.zone import MAX_ZONE_TENANTS

    inline = len(load_stack(zone, "us").tenants)
    cells = [f"us-cell-{i:03d}" for i in range(11, 16)]
    _list_cells(zone, *cells)
    (zone / f"Pulumi.{CELL}.yaml").unlink()
    remaining = MAX_ZONE_TENANTS - inline
    for n, cell in enumerate(cells):
        count = min(1000, remaining)
        _write_cell(zone, cell, tenants=[_tenant(f"z{n}-{i:04d}", budget=1) for i in range(count)])
        remaining -= count
    assert remaining == 0
    for stack in ("us", cells[0]):
        load_stack(zone, stack)  # exactly what fits
    last = cells[-1]
    _write_cell(zone, last, tenants=[_tenant(f"z4-{i:04d}", budget=1) for i in range(MAX_ZONE_TENANTS - inline - 3999)])
    for stack in ("us", cells[0], last):
        (problem,) = [p for p in _problems(zone, stack) if "Pod Identity" in p]
        assert problem.startswith(f"Pulumi.{stack}.yaml: meridian:tenants: the zone holds 4,999 tenants (us {inline}, ")
        assert "5,001 per cluster, over the 5,000 EKS allows" in problem
        assert "A cluster pair holds at most 4,998 tenants" in problem


def test_a_cell_in_another_region(zone):
    _write_cell(zone, region="us-west-2")
    assert _problems(zone, CELL) == [
        f"Pulumi.{CELL}.yaml: aws:region: 'us-west-2' is not its platform's aws:region 'us-east-1' (Pulumi.us.yaml): "
        "a cell runs in its platform's regions"
    ]


def test_a_cell_of_another_zone(zone):
    """A cell whose tenants would live in another zone's platform: its region is refused against that zone."""
    _write_cell(zone, platform="eu")
    found = _problems(zone, CELL)
    assert f"Pulumi.{CELL}.yaml: aws:region: 'us-east-1' is outside residency zone 'eu'" in "\n".join(found)
    assert f"Pulumi.eu.yaml: meridian:cells.names: does not list cell '{CELL}'" in "\n".join(found)


def test_the_zones_budgets_over_the_cap(zone):
    """One budget watches the platform and its cells: alone each stack fits the cap, together they do not."""
    _write_cell(zone, tenants=[_tenant("cellco", budget=55000)])
    assert _problems(zone, CELL) == [
        f"Pulumi.{CELL}.yaml: meridian:tenants: the zone's tenant budgets sum to $64,500.00 (us $9,500.00, {CELL} "
        "$55,000.00), over the platform's cost.stack_cap_usd $60,000.00 (one budget watches the platform and its cells "
        "together)"
    ]
    _write_cell(zone, tenants=[_tenant("cellco", budget=50000)])
    assert load_stack(zone, CELL).tenants[0].monthly_budget_usd == 50000


def test_a_cells_tenants_are_checked_against_the_platforms_catalog(zone):
    _write_cell(zone, tenants=[_tenant("cellco", plan="platinum")])
    found = _problems(zone, CELL)
    assert found[0].startswith(f"Pulumi.{CELL}.yaml: meridian:tenants['cellco'].plan: unknown plan 'platinum'"), found


def test_every_problem_in_one_round(zone):
    _write_cell(zone, region="us-west-2", tenants=[_tenant("globex"), _tenant("cellco", plan="platinum")], **{"meridian:dr": {}})
    _list_cells(zone)
    found = _problems(zone, CELL)
    keys = sorted(p.split(": ")[1] for p in found)
    assert keys == [
        "aws:region",
        "meridian:cells.names",
        "meridian:dr",
        "meridian:tenants['cellco'].plan",
        "meridian:tenants['globex'].id",
    ], found


def test_the_cli_exits_2_naming_file_and_key(zone):
    _write_cell(zone, tenants=[_tenant("globex")])
    out = run_meridian("cost", "--stack", CELL, "--project-dir", str(zone))
    assert out.code == 2, out
    assert f"Pulumi.{CELL}.yaml: meridian:tenants['globex'].id: tenant 'globex' is also in stack us" in out.out + out.err
