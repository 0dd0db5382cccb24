"""Generated figures and diagrams in docs/: current with the program, and detected when stale."""

from __future__ import annotations

import copy
import json
import shutil

import pytest

from meridian.docs import BENCH_RESULTS, SECTIONS, StackFacts, bench_problems, load_bench, render_docs, stale_docs
from meridian.errors import BadInput

from .helpers import ROOT, run_meridian


def facts_of(previews) -> dict[str, StackFacts]:
    """What `meridian docs` reads, taken from the session's previews (the same program, same output)."""
    return {stack: StackFacts(p.plan, p.diagram) for stack, p in previews.items()}


def test_generated_docs_are_current(previews):
    facts, bench = facts_of(previews), load_bench(ROOT)
    assert bench is not None, f"{BENCH_RESULTS} is missing: run `make bench`"
    assert stale_docs(ROOT, facts, bench) == [], "docs are stale: run `meridian docs --write`"
    assert bench_problems(facts, bench) == []


def test_generated_sections_carry_the_programs_figures(previews):
    text = (ROOT / "docs/offline-engine.md").read_text()
    for stack, f in facts_of(previews).items():
        assert f"| {stack} | " in text and f" | {f.resources} | " in text
    architecture = (ROOT / "docs/architecture.md").read_text()
    assert previews["us"].diagram[previews["us"].diagram.index("```mermaid") :].rstrip() in architecture


def test_a_hand_edited_figure_is_stale(previews, tmp_path):
    for section in {s.path for s in SECTIONS}:
        (tmp_path / section).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / section, tmp_path / section)
    facts, bench = facts_of(previews), load_bench(ROOT)
    us = facts["us"].resources
    path = tmp_path / "docs/offline-engine.md"
    path.write_text(path.read_text().replace(f" | {us} | ", f" | {us + 1} | ", 1))
    assert stale_docs(tmp_path, facts, bench) == ["docs/offline-engine.md"]
    path.write_text(render_docs(tmp_path, facts, bench)["docs/offline-engine.md"])
    assert stale_docs(tmp_path, facts, bench) == []
    path.write_text("# no markers\n")
    with pytest.raises(BadInput, match="markers of generated section 'stack-counts' are missing"):
        render_docs(tmp_path, facts, bench)


def test_bench_figures_of_another_program_are_stale(previews):
    facts, bench = facts_of(previews), copy.deepcopy(load_bench(ROOT))
    first = bench["stacks"][0]
    first["resources"] = facts[first["stack"]].resources + 1  # a resource more or less moves no figure
    assert bench_problems(facts, bench) == []
    first["resources"] = round(facts[first["stack"]].resources * 1.1)  # a tenth more: re-measure
    (problem,) = bench_problems(facts, bench)
    assert f"stack {first['stack']} was measured with {first['resources']} resources" in problem and "run `make bench`" in problem


def test_docs_command_writes_what_the_check_accepts(previews, tmp_path):
    """The producer (`meridian docs --write`, its own preview processes) and the consumer (the check)
    agree: what it writes is current."""
    for name in ("Pulumi.yaml", "Pulumi.us.yaml", "Pulumi.eu.yaml", "Pulumi.apac.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    for part in ("components", "stackconfig"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / BENCH_RESULTS).parent.mkdir(parents=True)
    shutil.copy(ROOT / BENCH_RESULTS, tmp_path / BENCH_RESULTS)
    arch = tmp_path / "docs/architecture.md"
    arch.write_text(arch.read_text().replace("flowchart LR", "flowchart TB", 1))
    cli = run_meridian("docs", "--write", "--project-dir", str(tmp_path))
    assert cli.code == 0, cli.out + cli.err
    assert "rewrote docs/architecture.md" in cli.out
    assert stale_docs(tmp_path, facts_of(previews), json.loads((tmp_path / BENCH_RESULTS).read_text())) == []
