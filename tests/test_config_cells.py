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


def _pairs(project: Path, *pairs: list[str], names: tuple[str, ...], quota: int | None = None) -> None:
    _set(project / "Pulumi.us.yaml", "meridian:cells", {"names": list(names), "cluster_pairs": [list(p) for p in pairs]})
    if quota is not None:
        _set(
            project / "Pulumi.us.yaml",
            "meridian:quotas",
            {"stacks_per_account": 1, "pod_identity_associations_per_cluster": quota},
        )


def test_cluster_pairs_name_listed_cells_once_each(zone):
    """Every problem of `cells.cluster_pairs` in one round, named by the platform's file and the pair's
    index, whichever stack of the zone is loaded. An empty pair is no problem: it is how a pair retires
    (its cells moved off, its clusters kept until a later change drops it)."""
    _pairs(zone, [CELL, "us-cell-404"], [], [CELL], names=(CELL,))
    for stack in ("us", CELL):
        found = [p for p in _problems(zone, stack) if "cluster_pairs" in p]
        assert found == [
            "Pulumi.us.yaml: meridian:cells.cluster_pairs[0]: pair 1 lists cell 'us-cell-404', which cells.names does "
            "not: list the cell there first",
            f"Pulumi.us.yaml: meridian:cells.cluster_pairs[2]: cell '{CELL}' is on pair 1 and pair 3: a cell's tenants "
            "run on one pair (moving a cell between pairs is an edit of this list: docs/operations.md)",
        ], found
    res = run_meridian("cost", "--stack", "us", "--project-dir", str(zone))
    assert res.code == 2 and "meridian:cells.cluster_pairs[0]" in res.out + res.err, res
    _pairs(zone, [CELL], names=(CELL,))
    assert load_stack(zone, CELL).cells.pair_of(CELL) == 1 and load_stack(zone, "us").cells.pair_of("us-cell-002") == 0


def test_each_tenant_cluster_pair_holds_what_the_configured_quota_allows(zone):
    """One association per tenant on each cluster of its pair, plus the platform's own there (3 on its
    own clusters, pair 0; 1 on a pair's), against quotas.pod_identity_associations_per_cluster (lowered
    here so a handful of tenants exercises it). A pair over it is refused by the platform and by each
    stack on that pair, not by a stack on another pair; placing a cell on a new pair fixes it."""
    from stackconfig.zone import PAIR_POD_IDENTITY_ASSOCIATIONS, PLATFORM_POD_IDENTITY_ASSOCIATIONS

    inline = len(load_stack(zone, "us").tenants)
    quota = inline + PLATFORM_POD_IDENTITY_ASSOCIATIONS + 1  # pair 0: the inline tenants, the platform's, one more
    names = (CELL, "us-cell-002", "us-cell-003")
    _pairs(zone, names=names, quota=quota)
    _write_cell(zone, "us-cell-002", tenants=[_tenant("second", budget=1)])  # one over: us and CELL fill pair 0
    found = {stack: [p for p in _problems(zone, stack) if "Pod Identity" in p] for stack in ("us", CELL, "us-cell-002")}
    for stack, (problem,) in found.items():
        assert problem.startswith(
            f"Pulumi.{stack}.yaml: meridian:tenants: tenant cluster pair 0 (the platform's own clusters) holds "
            f"{inline + 2} tenants (us {inline}, us-cell-002 1, {CELL} 1)"
        ), problem
        assert f"is {quota + 1} per cluster, over quotas.pod_identity_associations_per_cluster {quota}" in problem
        assert "add a pair: append a list of cells to cells.cluster_pairs" in problem

    # us-cell-002 and us-cell-003 on pair 1: pair 0 has room again; pair 1 holds 2 + its 1 (the quota's headroom)
    _write_cell(zone, "us-cell-003", tenants=[_tenant("third", budget=1)])
    _pairs(zone, ["us-cell-002", "us-cell-003"], names=names, quota=quota)
    for stack in ("us", *names):
        load_stack(zone, stack)
    # one more tenant on pair 1 than its clusters take: the platform (naming the pair) and the pair's cells say so
    extra = quota - PAIR_POD_IDENTITY_ASSOCIATIONS - 2 + 1
    _write_cell(zone, "us-cell-003", tenants=[_tenant(f"third-{i}", budget=1) for i in range(extra + 1)])
    over = 1 + extra + 1  # us-cell-002's one, us-cell-003's
    for stack, key in (
        ("us", "meridian:cells.cluster_pairs[0]"),
        ("us-cell-002", "meridian:tenants"),
        ("us-cell-003", "meridian:tenants"),
    ):
        (problem,) = [p for p in _problems(zone, stack) if "Pod Identity" in p]
        assert problem.startswith(
            f"Pulumi.{stack}.yaml: {key}: tenant cluster pair 1 holds {over} tenants (us-cell-002 1, us-cell-003 {extra + 1})"
        ), problem
        assert f"with the platform's own 1 there is {over + 1} per cluster" in problem
    load_stack(zone, CELL)  # on pair 0: not its problem


def test_a_zone_has_at_most_its_ceiling_of_pairs_and_a_full_zone_is_not_told_to_add_one(zone):
    """stackconfig.CLUSTER_PAIRS_MAX (the trust policy's ceiling, tests/test_tenant_pair_patterns.py): one pair
    more is refused naming the key; at the ceiling, a pair over its quota is told to place cells elsewhere or
    to serve them from another platform stack, never to add a pair the config would refuse."""
    from stackconfig.models import CLUSTER_PAIRS_MAX
    from stackconfig.zone import PLATFORM_POD_IDENTITY_ASSOCIATIONS

    inline = len(load_stack(zone, "us").tenants)
    _pairs(zone, *([[]] * (CLUSTER_PAIRS_MAX + 1)), names=(CELL,))
    (problem,) = [p for p in _problems(zone, "us") if "cluster_pairs" in p]
    assert problem.startswith(
        f"Pulumi.us.yaml: meridian:cells.cluster_pairs: lists {CLUSTER_PAIRS_MAX + 1} pairs, over the {CLUSTER_PAIRS_MAX} "
        "a zone may have: each region's tenant role trusts every cluster of the zone by ARN"
    ), problem
    res = run_meridian("cost", "--stack", "us", "--project-dir", str(zone))
    assert res.code == 2 and "meridian:cells.cluster_pairs" in res.out + res.err, res

    names = (CELL, "us-cell-002")
    _write_cell(zone, "us-cell-002", tenants=[_tenant("second", budget=1)])
    quota = inline + PLATFORM_POD_IDENTITY_ASSOCIATIONS + 1  # pair 0 one over: the inline tenants, CELL's and us-cell-002's
    for count, advice in ((CLUSTER_PAIRS_MAX - 1, "or add a pair"), (CLUSTER_PAIRS_MAX, "a platform stack of their own")):
        _pairs(zone, *([[]] * count), names=names, quota=quota)
        (problem,) = [p for p in _problems(zone, "us") if "Pod Identity" in p]
        assert advice in problem, problem
        assert ("add a pair" in problem) == (count < CLUSTER_PAIRS_MAX), problem


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
