"""A tenant cluster pair's own node settings (`cluster.tenant_nodes`) and its cost: the pair's
clusters run the node group the setting sizes (the platform's keep theirs), preflight counts their
vCPUs, and their cost is the pair's, allocated to the tenants of the cells on it, not to the
platform's inline tenants."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from components.naming import cluster_name
from meridian.commands.preview.zone import pair_costs
from meridian.costmodel import PairCost, TenantCost, allocate_pairs, estimate, pairs_of
from meridian.preflight.account import plan_from_document
from meridian.preflight.checks import CHECKS, Context
from stackconfig import ConfigError, RawConfig, load_stack, parse_config, read_stack_files

from .helpers import ROOT, recorded_plan
from .test_program_cells import _previews
from .test_program_pairs import CELL, REGIONS, _zone_with_a_pair

pytestmark = pytest.mark.slow  # the plans come from offline runs of the program

TENANT_NODES = {"instance_types": ["m7g.xlarge"], "min": 1, "desired": 2, "max": 4}


@pytest.fixture(scope="module")
def pair_project(tmp_path_factory) -> Path:
    project = _zone_with_a_pair(tmp_path_factory.mktemp("pairnodes"))
    us = yaml.safe_load((project / "Pulumi.us.yaml").read_text())
    project_cluster = yaml.safe_load((project / "Pulumi.yaml").read_text())["config"]["meridian:cluster"]["value"]
    us["config"]["meridian:cluster"] = {**project_cluster, "tenant_nodes": TENANT_NODES}
    (project / "Pulumi.us.yaml").write_text(yaml.safe_dump(us, sort_keys=False))
    return project


@pytest.fixture(scope="module")
def pair_plan(pair_project) -> dict:
    return _previews(pair_project, "us")["us"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return recorded_plan(tmp_path_factory.mktemp("base"))


def _node_groups(plan: dict) -> dict[str, dict]:
    return {r["inputs"]["clusterName"]: r["inputs"] for r in plan["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup"}


def test_pair_clusters_run_their_own_node_settings(pair_plan):
    groups = _node_groups(pair_plan)
    for region in REGIONS:
        pair, own = groups[cluster_name("us", region, 1)], groups[cluster_name("us", region)]
        assert pair["instanceTypes"] == ["m7g.xlarge"]
        assert pair["scalingConfig"] == {"minSize": 1, "desiredSize": 2, "maxSize": 4}
        assert own["instanceTypes"] == ["m7g.large"]  # the platform's clusters keep cluster.node_*
        assert own["scalingConfig"] == {"minSize": 3, "desiredSize": 3, "maxSize": 9}


def test_quota_pair_node_groups_count_against_the_vcpu_quota(pair_plan, pair_project):
    cfg = load_stack(pair_project, "us")
    plan = plan_from_document(pair_plan)
    tight = cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update={"raised": {"L-1216C47A": 33}})})
    problems = [f.problem for f in CHECKS["quotas"](Context.of(plan, tight)).findings if "On-Demand" in f.problem]
    # 9 x 2 vCPUs of the platform's cluster + 4 x 4 of the pair's, per region
    assert [p.split(":")[0] for p in problems] == [
        f"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (vCPUs) in {r}" for r in REGIONS
    ]
    assert all("this stack needs 34, over 33" in p for p in problems)


def test_unset_tenant_nodes_clone_the_platform_node_settings():
    cfg = load_stack(ROOT, "us")
    assert cfg.cluster.tenant_nodes is None
    nodes = cfg.cluster.pair_nodes
    assert (nodes.instance_types, nodes.ami_type, nodes.min, nodes.desired, nodes.max) == (
        cfg.cluster.node_instance_types,
        cfg.cluster.node_ami_type,
        cfg.cluster.node_min,
        cfg.cluster.node_desired,
        cfg.cluster.node_max,
    )


@pytest.mark.parametrize(
    ("nodes", "says"),
    [
        (
            {**TENANT_NODES, "min": 3, "desired": 2},
            "meridian:cluster.tenant_nodes: node sizes must satisfy min <= desired <= max",
        ),
        ({"instance_types": ["m7g.large"], "min": 1, "desired": 1}, "meridian:cluster.tenant_nodes.max"),
        ({**TENANT_NODES, "instance_types": []}, "meridian:cluster.tenant_nodes.instance_types"),
        ({**TENANT_NODES, "maximum": 3}, "meridian:cluster.tenant_nodes.maximum"),
    ],
)
def test_bad_tenant_nodes_are_refused_naming_the_key(nodes, says):
    raw, _ = read_stack_files(ROOT, "us")
    values = copy.deepcopy(raw.values)
    values["cluster"] = {**values["cluster"], "tenant_nodes": nodes}
    with pytest.raises(ConfigError) as info:
        parse_config(RawConfig(values, dict(raw.sources), raw.default_source))
    assert any(says in str(p) for p in info.value.problems), [str(p) for p in info.value.problems]


def test_adding_a_pair_leaves_the_inline_tenants_shared_cost_unchanged(pair_plan, pair_project, base):
    plan, cfg = base
    before = {t.tenant: t for t in estimate(plan.resource_dicts, cfg, "us").tenants}
    with_pair = estimate(pair_plan["resources"], load_stack(pair_project, "us"), "us")
    after = {t.tenant: t for t in with_pair.tenants}
    assert after["acme"].shared_usd == pytest.approx(before["acme"].shared_usd, abs=0.01)  # acme: inline, on pair 0
    assert {t: a.total_usd for t, a in after.items()} == pytest.approx({t: b.total_usd for t, b in before.items()}, abs=0.01)
    # the pair's clusters are in the stack total, as the pair's
    (pair,) = with_pair.pairs
    assert pair.pair == 1 and pair.cells == (CELL,)
    assert pair.monthly_usd > 300  # two control planes and two node groups at least
    base_total = estimate(plan.resource_dicts, cfg, "us").total_usd
    assert with_pair.total_usd == pytest.approx(base_total + pair.monthly_usd, abs=0.01)
    # what the pair holds, by the Cluster component components.naming names
    held = pairs_of(pair_plan["resources"])
    clusters = [r for r in pair_plan["resources"] if r["type"] == "aws:eks/cluster:Cluster"]
    assert {r["inputs"]["name"]: held[r["urn"]] for r in clusters} == {
        **{cluster_name("us", region): 0 for region in REGIONS},
        **{cluster_name("us", region, 1): 1 for region in REGIONS},
    }


def test_a_pair_cost_goes_to_the_tenants_of_its_cells(pair_project):
    cell = load_stack(pair_project, CELL)
    pair = PairCost(1, (CELL,), 1_000.0)
    shares = allocate_pairs([pair], {CELL: cell})
    assert {s.tenant for s in shares} == {t.id for t in cell.tenants}
    assert sum(s.usd for s in shares) == pytest.approx(1_000.0)
    # by quota weight: tyrell (enterprise, 800 qps + 15,000 eps) carries more than cyberdyne (pro)
    by = {s.tenant: s.usd for s in shares}
    assert by["tyrell"] > by["cyberdyne"]
    # a pair whose cells have no tenant allocates nothing (its cost stays the platform's)
    assert allocate_pairs([PairCost(2, ("us-cell-009",), 50.0)], {CELL: cell}) == []

    # the zone gates a tenant whose own estimate plus its share is over budget
    # tyrell: $4,510 in its own stack, within budget until its pair share is added; cyberdyne stays within
    costs = [TenantCost("tyrell", "enterprise", 10.0, 4_500.0, 5_000.0), TenantCost("cyberdyne", "pro", 5.0, 100.0, 2_000.0)]
    platform = SimpleNamespace(pair_costs=[pair])
    notes, problems = pair_costs(platform, {CELL: SimpleNamespace(tenant_costs=costs)}, {CELL: cell})
    assert notes == [f"tenant cluster pair 1: $1,000.00/month (the platform's), allocated to the 2 tenants of {CELL}"]
    assert problems == [
        f"cost gate: tenant tyrell (cell {CELL}): estimate ${4_510 + by['tyrell']:,.2f}/month "
        f"(its stack's $4,510.00 + ${by['tyrell']:,.2f} of pair 1's clusters) is over its budget $5,000.00"
    ]


def test_pairs_of_follows_parents_to_the_pair_cluster_component():
    def res(urn: str, parent: str = "", type_: str = "aws:iam/role:Role", name: str = "") -> dict:
        return {"urn": urn, "parent": parent, "type": type_, "name": name or urn}

    resources = [
        res("addon", parent="eks"),  # listed before its parents: the walk goes up regardless of order
        res("eks", parent="pair-cluster", type_="aws:eks/cluster:Cluster"),
        res("pair-cluster", parent="stack", type_="meridian:cluster:Cluster", name=cluster_name("us", "us-east-1", 12)),
        res("own-cluster", parent="stack", type_="meridian:cluster:Cluster", name=cluster_name("us", "us-east-1")),
        res("own-role", parent="own-cluster"),
        res("orphan", parent="not-in-the-plan"),
    ]
    held = pairs_of(resources)
    assert {u: held[u] for u in ("addon", "eks", "pair-cluster", "own-cluster", "own-role", "orphan")} == {
        "addon": 12,
        "eks": 12,
        "pair-cluster": 12,
        "own-cluster": 0,
        "own-role": 0,
        "orphan": 0,
    }
