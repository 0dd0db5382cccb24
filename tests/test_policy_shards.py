"""AnalyzeStack split over analyzers: every stack rule runs on exactly one shard, every resource rule
on shard 0 only, and the rule that costs most of AnalyzeStack runs alone on the last shard; a
preview splits only over cores it has to itself (a zone's cell workers keep every core busy)."""

from __future__ import annotations

import contextlib
import os

import pytest

from meridian.commands.preview.zone import worker_cores
from meridian.engine.policy import Analyzer
from meridian.engine.policy.config import PackInfo, PolicyInfo
from meridian.engine.policy.stream import HEAVY_STACK_POLICIES, shard_config, stack_shards

from .helpers import ROOT


def _policy(name: str, kind: str) -> PolicyInfo:
    return PolicyInfo(name, "", "mandatory", "", kind, {}, (), "", ())


def _pack(*stack: str, resource: tuple[str, ...] = ("r1", "r2")) -> PackInfo:
    policies = tuple(_policy(n, "resource") for n in resource) + tuple(_policy(n, "stack") for n in stack)
    return PackInfo("p", "1", "", policies, {})


def _runs(pack: PackInfo, shards: int) -> list[set[str]]:
    config = {p.name: ("mandatory", {"x": 1}) for p in pack.policies}
    out = []
    for shard in range(shards):
        cfg = shard_config(pack, config, shard, shards)
        assert set(cfg) == {p.name for p in pack.policies}  # every policy configured, its properties kept
        assert all(props == {"x": 1} for _, props in cfg.values())
        out.append({name for name, (level, _) in cfg.items() if level != "disabled"})
    return out


@pytest.mark.parametrize("shards", [1, 2, 3])
@pytest.mark.parametrize(
    "stack",
    [
        ("a", "b", "c", "d", "e"),
        ("a", HEAVY_STACK_POLICIES[0], "c", "d", "e"),
        (HEAVY_STACK_POLICIES[0],),
        ("a",),
        (),
    ],
    ids=["light-only", "with-heavy", "heavy-only", "one", "none"],
)
def test_every_stack_rule_runs_on_exactly_one_shard(stack, shards):
    pack = _pack(*stack)
    runs = _runs(pack, shards)
    for name in stack:
        assert sum(name in r for r in runs) == 1, (name, runs)
    for name in ("r1", "r2"):  # resource rules: shard 0 answers every Analyze
        assert [name in r for r in runs] == [True] + [False] * (shards - 1)


@pytest.mark.parametrize("shards", [2, 3])
def test_the_heavy_rule_runs_alone_on_the_last_shard(shards):
    heavy = HEAVY_STACK_POLICIES[0]
    runs = _runs(_pack("a", "b", heavy, "c"), shards)
    assert runs[-1] == {heavy}
    assert set().union(*runs[:-1]) == {"a", "b", "c", "r1", "r2"}


def test_the_heavy_rules_are_rules_of_the_pack():
    """Renamed or removed, the split would silently fall back to round robin."""
    with Analyzer(ROOT / "policies") as analyzer:
        stack_rules = {p.name for p in analyzer.wait_ready().policies if p.kind == "stack"}
    assert set(HEAVY_STACK_POLICIES) <= stack_rules


@pytest.mark.parametrize(("cores", "shards"), [(1, 1), (2, 2), (8, 2)])
def test_a_preview_splits_its_stack_rules_only_over_cores_it_has_to_itself(cores, shards):
    assert stack_shards(cores) == shards


@pytest.mark.parametrize(("cores", "helper"), [(1, False), (2, True)])
def test_a_second_analyzer_is_started_only_with_a_second_core(monkeypatch, tmp_path, cores, helper):
    """open_policy_stream hands the stream a helper factory only where a second shard has a core to run on."""
    import meridian.engine.policy as policy
    from meridian.engine import pipeline

    class Idle:
        def __init__(self, pack_dir):
            self.pack_dir = pack_dir

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    made = {}

    class Stream:
        def __init__(self, analyzer, file_config, source, stack, *, helper_factory, context):
            made["helper_factory"] = helper_factory

        def stop(self):
            pass

    (tmp_path / "policies").mkdir()
    monkeypatch.setattr(pipeline, "policy_file_config", lambda *a, **k: (tmp_path / "policies" / "config" / "x.json", {}))
    monkeypatch.setattr(policy, "Analyzer", Idle)
    monkeypatch.setattr(policy, "PolicyStream", Stream)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with contextlib.ExitStack() as scope:
        pipeline.open_policy_stream(scope, tmp_path, "us", cores=cores)
    assert (made["helper_factory"] is not None) is helper


@pytest.mark.parametrize(
    ("cpus", "workers", "batch", "cores"),
    [
        (2, 2, 1, 2),  # a zone's platform previews alone: both cores
        (2, 2, 10, 1),  # ten cells on two workers: one core each
        (2, 1, 1, 2),  # a zone of one cell: its worker runs alone
        (4, 2, 5, 2),
        (1, 1, 3, 1),
    ],
)
def test_each_zone_worker_is_told_the_cores_it_has_to_itself(cpus, workers, batch, cores):
    assert worker_cores(cpus, workers, batch) == cores
