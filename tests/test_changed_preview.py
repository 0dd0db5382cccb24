"""`meridian preview --changed`: a cell's subset preview against the full cell, resource by resource
and verdict by verdict, and the PR comment of one onboarded tenant.

The proof the subset is allowed: for one change that adds a tenant, modifies one (its quota, which
also changes the cell-wide tenant file) and removes one, every resource the subsets render has
the same inputs (plan fingerprint) as in the full cell's plan, on each side; everything the full
cell's diff shows changing is in a subset or named as not rendered (the tenant file Secrets); and
the pack says the same about each rendered resource, except the rules named as cross-tenant."""

from __future__ import annotations

import multiprocessing
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml

from meridian.commands.preview.changed import (
    CROSS_TENANT_RULES,
    plan_in_worker,
    platform_outputs,
    subset_overrides,
)
from meridian.engine.plandiff import diff_plans
from meridian.stackconfig import load_validated
from tests.helpers import ROOT, full_project_copy, run_meridian
from tests.test_plan_identity import digest

CELL = "us-cell-001"
pytestmark = pytest.mark.slow


def project(dest: Path) -> Path:
    dest.mkdir()
    full_project_copy(dest)
    shutil.copy(ROOT / f"Pulumi.{CELL}.yaml", dest / f"Pulumi.{CELL}.yaml")
    shutil.rmtree(dest / "policies" / "venv", ignore_errors=True)
    return dest


def edit_tenants(project_dir: Path, edit) -> None:
    path = project_dir / f"Pulumi.{CELL}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:tenants"] = edit(doc["config"]["meridian:tenants"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def change(tenants: list[dict]) -> list[dict]:
    """stark (silo) gets another quota, wonka leaves, acme2 (pool) arrives."""
    out = []
    for t in tenants:
        if t["id"] == "stark":
            out.append({**t, "quota": {**t["quota"], "gql_qps": 900}})
        elif t["id"] != "wonka":
            out.append(t)
    return [*out, {"id": "acme2", "plan": "starter", "monthly_budget_usd": 300, "data_tier": "pool"}]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("changed")
    base, head = project(root / "base"), project(root / "head")
    edit_tenants(head, change)
    pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1)
    with pool:
        outputs = {"us": pool.submit(platform_outputs, base, "us").result().wire_outputs}

        def plan(where: Path, tenants: list[str] | None):
            cfg = load_validated(where, CELL)
            overrides = subset_overrides(cfg, tenants, "test") if tenants is not None else None
            if overrides is not None:
                cfg = load_validated(where, CELL, overrides)
            return pool.submit(
                plan_in_worker, where, CELL, cfg, overrides, policy=True, stack_outputs=outputs, subset=tenants is not None
            )

        futures = {
            "full_base": plan(base, None),
            "full_head": plan(head, None),
            "subset_head": plan(head, ["stark", "acme2"]),  # modified + added
            "subset_base": plan(base, ["stark", "wonka"]),  # modified + removed
        }
        return {k: f.result() for k, f in futures.items()}


def fingerprints(document: dict) -> dict[str, str]:
    return {r["urn"]: digest(r) for r in document["resources"]}


@pytest.mark.parametrize("side", ["head", "base"])
def test_every_resource_the_subset_renders_is_the_full_cells(runs, side):
    subset, full = fingerprints(runs[f"subset_{side}"].document), fingerprints(runs[f"full_{side}"].document)
    assert subset, "the subset rendered nothing"
    missing = sorted(set(subset) - set(full))
    differ = sorted(u for u in set(subset) & set(full) if subset[u] != full[u])
    assert not missing and not differ, f"not in the full cell: {missing[:5]}; other inputs: {differ[:5]}"
    rendered_tenants = {"head": ("stark", "acme2"), "base": ("stark", "wonka")}[side]
    for tid in rendered_tenants:
        assert any(f"-t-{tid}-" in u for u in subset), f"no resource of {tid} in the subset"
    assert not any("-t-vandelay-" in u for u in subset), "an unchanged tenant was rendered"


def test_everything_the_full_diff_changes_is_in_a_subset_or_named(runs):
    """The adversarial case: the quota change also changes the cell-wide tenant file Secrets, which
    no subset can render (they list every tenant): they must be named, not silently dropped."""
    full = diff_plans(runs["full_base"].document, runs["full_head"].document)
    sub = diff_plans(runs["subset_base"].document, runs["subset_head"].document)
    not_rendered = set(runs["subset_head"].not_rendered)
    assert not_rendered == set(runs["subset_base"].not_rendered)
    assert len(not_rendered) == 2 and all(u.endswith("-tenant-file") for u in not_rendered)
    full_changed = {r.urn for r in full.changed}
    assert not_rendered <= full_changed, "the tenant files change with the quota: the full cell shows it"
    assert {r.urn for r in sub.added} == {r.urn for r in full.added}
    assert {r.urn for r in sub.removed} == {r.urn for r in full.removed}
    assert {r.urn: r.keys for r in sub.changed} == {r.urn: r.keys for r in full.changed if r.urn not in not_rendered}
    assert sub.added and sub.removed and sub.changed  # the change really adds, removes and modifies


@pytest.mark.parametrize("side", ["head", "base"])
def test_the_pack_judges_each_rendered_resource_as_in_the_full_cell(runs, side):
    """Per resource, the same findings (rule, level, message), except the rules that relate tenants
    to each other, which the subset names as not judged."""
    subset, full = runs[f"subset_{side}"].document, runs[f"full_{side}"].document
    rendered = {r["urn"] for r in subset["resources"]}

    def findings(document):
        return sorted(
            (v["policy"], v["level"], v["urn"], v["message"])
            for v in document["policy"]["violations"]
            if v.get("urn") in rendered and v["policy"] not in CROSS_TENANT_RULES
        )

    assert findings(subset) == findings(full)
    assert subset["policy"].get("evaluated") is not False


def test_the_cross_tenant_rules_are_rules_of_the_pack():
    from meridian.engine.policy import Analyzer, pack_dir_of

    with Analyzer(pack_dir_of(ROOT)) as analyzer:
        names = {p.name for p in analyzer.wait_ready().policies}
    assert set(CROSS_TENANT_RULES) <= set(names), sorted(set(CROSS_TENANT_RULES) - set(names))


# --- the CLI -----------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True
    )


def test_onboarding_one_tenant_shows_a_one_cell_diff(tmp_path):
    repo = project(tmp_path / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    edit_tenants(repo, lambda ts: [*ts, {"id": "pied-piper", "plan": "starter", "monthly_budget_usd": 50, "data_tier": "pool"}])
    got = run_meridian("preview", "--changed", "--format", "markdown", "--project-dir", str(repo), timeout=900)
    assert got.code == 0, got.err
    comment = got.out
    assert comment.startswith("<!-- meridian:changed-preview -->")
    assert "1 stack(s) against `merge-base of HEAD and main`" in comment
    assert f"| `{CELL}` | cell | subset: 1 tenant(s) rendered, 0 at the base | its tenants changed: added pied-piper |" in comment
    assert "<!-- meridian:plan-diff:" not in comment  # one comment for every stack, not one per stack
    assert "`us`" not in comment.split("\n|---")[1].split("\n\n")[0]  # the platform is not in the table
    assert "resources +20 ~0 -0" in comment
    assert "not judged by the subset: `tenant-data-access`" in comment
    assert f"`{CELL}-us-east-1-tenant-file`" in comment and "rendered with the full cell at merge/deploy" in comment
    assert "policy: passed" in comment


def test_a_platform_setting_hidden_in_a_cell_file_exits_2_naming_file_and_key(tmp_path):
    """Never previewed as a tenant change: the cell is whole (meridian.changes) and loading refuses it."""
    repo = project(tmp_path / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    path = repo / f"Pulumi.{CELL}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:force_delete"] = True
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    got = run_meridian("preview", "--changed", "--project-dir", str(repo), timeout=300)
    assert got.code == 2, got
    assert f"{CELL} (cell, whole stack): Pulumi.{CELL}.yaml: meridian:force_delete changed" in got.out
    assert f"Pulumi.{CELL}.yaml: meridian:force_delete: a cell stack's file holds only" in got.err


def test_a_tenant_onboarded_into_a_cell_while_in_another_stack_exits_2_naming_file_and_key(tmp_path):
    """The zone is judged whole on --changed's path too (its files read once, by the main process,
    before any worker): a subset change that puts a tenant in two stacks is refused, not previewed."""
    repo = project(tmp_path / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    edit_tenants(repo, lambda ts: [*ts, {"id": "globex", "plan": "pro", "monthly_budget_usd": 2500, "data_tier": "pool"}])
    got = run_meridian("preview", "--changed", "--project-dir", str(repo), timeout=300)
    assert got.code == 2, got
    assert f"{CELL} (cell, subset: 1 tenant(s) rendered, 0 at the base): its tenants changed: added globex" in got.out
    assert f"Pulumi.{CELL}.yaml: meridian:tenants['globex'].id: tenant 'globex' is also in stack us (Pulumi.us.yaml)" in got.err


def test_bad_input_exits_2(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: meridian\n")
    got = run_meridian("preview", "--changed", "--project-dir", str(tmp_path))
    assert got.code == 2 and "not inside a git checkout" in got.err
    got = run_meridian("preview", "--changed", "--base", "no-such-ref")
    assert got.code == 2 and "--base no-such-ref: not a commit git knows" in got.err
    got = run_meridian("preview", "--base", "HEAD")
    assert got.code == 2 and "--base without --changed" in got.err
    got = run_meridian("preview", "--changed", "--zone", "us")
    assert got.code == 2 and "does not take --zone" in got.err
