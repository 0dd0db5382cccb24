"""Figures, diagrams and references in docs/, generated: `meridian docs --write` rebuilds them,
`meridian docs` (and tests/test_docs.py) fails when one is stale. Nothing between the markers is
edited by hand.

Sources: the stack config's models (docs/config.md's key reference, meridian/configdoc.py), each
stack's plan and topology from the real program (one `meridian preview` process per stack, as the
SDK's runtime state is global), and the timings of `make bench` (benchmarks/results/preview_scale.json),
which are accepted only while they were measured on a program of the current one's size (resource
count within BENCH_SIZE_TOLERANCE).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meridian.configdoc import config_reference
from meridian.engine.plan import GLOBAL
from meridian.errors import BadInput
from meridian.project import platform_stacks_of

BENCH_RESULTS = Path("benchmarks") / "results" / "preview_scale.json"
CHANGED_RESULTS = Path("benchmarks") / "results" / "changed_preview.json"  # benchmarks/changed_preview.py
ZONE_BENCH_RESULTS = Path("benchmarks") / "results" / "zone_scale.json"
# Timings describe a program of a given size: within this share of its resource count they still do
# (a resource more or less moves no figure); beyond it they are stale and `make bench` must re-measure.
BENCH_SIZE_TOLERANCE = 0.05
_BEGIN = "<!-- generated: {name} (`meridian docs --write`; do not edit, tests/test_docs.py compares) -->"
_END = "<!-- end generated: {name} -->"


@dataclass(frozen=True)
class StackFacts:
    plan: dict[str, Any]
    diagram: str

    @property
    def resources(self) -> int:
        return sum(1 for r in self.plan["resources"] if r["custom"] and not r["type"].startswith("pulumi:providers:"))


def stack_facts(project_dir: Path) -> dict[str, StackFacts]:
    """Every stack's plan and diagram, each from its own `meridian preview` process, run together."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = {
            stack: subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "meridian",
                    "preview",
                    "--stack",
                    stack,
                    "--no-policy",
                    "--format",
                    "json",
                    "--diagram",
                    f"{tmp}/{stack}.md",
                    "--project-dir",
                    str(project_dir),
                ],
                cwd=project_dir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "NO_COLOR": "1"},
            )
            for stack in platform_stacks_of(project_dir)  # a cell's figures come with its zone's (the zone preview)
        }
        facts = {}
        for stack, proc in procs.items():
            out, err = proc.communicate()
            diagram = Path(f"{tmp}/{stack}.md")
            # 1 can be a failed gate (the plan is still what the program makes) or a failed program (no plan)
            if proc.returncode not in (0, 1) or not out.strip() or not diagram.is_file():
                raise BadInput(f"preview of stack {stack!r} failed ({proc.returncode}), docs cannot be generated:\n{err[-2000:]}")
            facts[stack] = StackFacts(json.loads(out), diagram.read_text())
    return facts


def load_bench(project_dir: Path) -> dict[str, Any] | None:
    """`make bench`'s results: preview_scale's, with changed_preview's under `changed_preview` and
    zone_scale's under `zone_scale` (each when that benchmark has run)."""
    path = project_dir / BENCH_RESULTS
    if not path.is_file():
        return None
    bench = json.loads(path.read_text())
    for key, extra in (("changed_preview", CHANGED_RESULTS), ("zone_scale", ZONE_BENCH_RESULTS)):
        if (project_dir / extra).is_file():
            bench[key] = json.loads((project_dir / extra).read_text())
    return bench


# --- the sections -------------------------------------------------------------------------------


def _topology(facts: dict[str, StackFacts], stack: str) -> str:
    diagram = facts[stack].diagram
    return diagram[diagram.index("```mermaid") :].rstrip()


def _stack_counts(facts: dict[str, StackFacts]) -> str:
    rows = [
        "| stack | regions | tenants | resources | providers | components | plan registrations |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for stack, f in sorted(facts.items()):
        regs = f.plan["resources"]
        regions = sorted(
            {
                r["region"]
                for r in regs
                if r["region"] not in (None, GLOBAL) and r["custom"] and not r["type"].startswith("pulumi:providers:")
            }
        )
        providers = sum(1 for r in regs if r["type"].startswith("pulumi:providers:"))
        components = sum(1 for r in regs if not r["custom"] and r["type"] != "pulumi:pulumi:Stack")
        tenants = len(f.plan["outputs"].get("tenants") or {})
        rows.append(f"| {stack} | {', '.join(regions)} | {tenants} | {f.resources} | {providers} | {components} | {len(regs)} |")
    return "\n".join(rows)


def _policy_cells(timings: dict | None) -> str:
    t = timings or {}
    cpu, hidden = t.get("analyzer_cpu_s"), t.get("hidden_cpu_s")
    if cpu is None:
        return "- | -"
    return f"{cpu:.2f} | {hidden / cpu:.0%}" if cpu else f"{cpu:.2f} | -"


def _measured(results: dict[str, Any], how: str, busy: str) -> str:
    """The line opening a benchmark's results: when, at which commit, on how many cores, how run
    (`how`), the load average at the start and end, and `busy` when it was above the cores."""
    load, cpus = results.get("load_avg_1m"), results["cpus"]
    context = f"; load average {load[0]:g} at the start, {load[1]:g} at the end" if load else ""
    if load and max(load) > cpus:
        context += busy.format(cpus=cpus)
    return f"Measured {results['date']} at commit `{results['commit']}` on {cpus} cores{how}{context}."


def _scale_results(bench: dict[str, Any] | None) -> str:
    if bench is None:
        return f"No results yet: run `make bench` (writes `{BENCH_RESULTS}`), then `meridian docs --write`."
    out = [
        _measured(
            bench,
            ", each run a fresh process (`make bench`, `benchmarks/preview_scale.py`)",
            ". The machine was busy (load above its {cpus} cores): other work slowed the runs unevenly, so times and ratios"
            " are noisy; re-run `make bench` on a quiet machine for figures to compare against the targets",
        ),
        "",
        "us stack with synthetic tenants (`--tenants N`), preview (with the policy pack) vs the bare SDK floor:",
        "",
        "| tenants | resources | bare s | preview s | ratio | ms/resource | s/tenant | vs smallest | bare RSS MiB | preview RSS MiB | analyzer CPU s | hidden |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base_wall = per_tenant_base = None
    for row in bench["tenants"]:
        n, wall = row["tenants"], row["preview_s"]
        per_tenant = linear = None
        if n == 0:
            base_wall = wall
        else:
            per_tenant = (wall - (base_wall or 0)) / n
            per_tenant_base = per_tenant_base or per_tenant
            linear = per_tenant / per_tenant_base
        out.append(
            f"| {n:,} | {row['resources']:,} | {row['bare_s']:.1f} | {wall:.1f} | {wall / row['bare_s']:.2f} | "
            f"{1000 * wall / max(row['resources'], 1):.2f} | {'-' if per_tenant is None else f'{per_tenant:.3f}'} | "
            f"{'-' if linear is None else f'{linear:.2f}'} | {row.get('bare_rss_mib', 0):,} | {row['rss_mib']:,} | {_policy_cells(row.get('policy'))} |"
        )
    scaled = [row for row in bench["tenants"] if row["tenants"]]
    zero = next((row for row in bench["tenants"] if row["tenants"] == 0), None)
    if scaled and zero is not None:
        top = scaled[-1]
        out += [
            "",
            f"Each synthetic tenant adds {(top['resources'] - zero['resources']) / top['tenants']:.1f} resources on average"
            f" and {(top['preview_s'] - zero['preview_s']) / top['tenants']:.3f} s of preview (at {top['tenants']:,} tenants).",
        ]
    out += [
        "",
        f"Per stack with its real tenants (median of {bench['repeat']}):",
        "",
        "| stack | resources | bare s | preview s | ratio | preview RSS MiB | analyzer CPU s | hidden |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in bench["stacks"]:
        out.append(
            f"| {row['stack']} | {row['resources']} | {row['bare_s']:.2f} | {row['preview_s']:.2f} | "
            f"{row['preview_s'] / row['bare_s']:.2f} | {row['rss_mib']} | {_policy_cells(row.get('policy'))} |"
        )
    return "\n".join(out)


def _changed_results(bench: dict[str, Any] | None) -> str:
    changed = (bench or {}).get("changed_preview")
    if changed is None:
        return f"No results yet: run `make bench` (writes `{CHANGED_RESULTS}`), then `meridian docs --write`."
    out = [
        _measured(
            changed,
            " (`make bench`, `benchmarks/changed_preview.py`)",
            ". The machine was busy (load above its {cpus} cores): these times say nothing against the 30 s target;"
            " re-run on a quiet machine",
        ),
        "",
        "| zone tenants | cells | tenant changed | `--changed` s | CPU s | target s | previewed |",
        "|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in changed["rows"]:
        previewed = "; ".join(row["previewed"]).replace("|", "/")
        out.append(
            f"| {row['tenants']:,} | {row['cells']} | {row['changed']} | {row['seconds']:.1f} | {row['cpu_s']:.1f} | "
            f"< {changed['seconds_target']:g} | {previewed} |"
        )
    if changed.get("ratio") is not None:
        first, last = changed["rows"][0]["tenants"], changed["rows"][-1]["tenants"]
        out += [
            "",
            f"Ratio {last:,} / {first:,} tenants: **{changed['ratio']:.2f}** by wall time, {changed['cpu_ratio']:.2f} by CPU"
            f" seconds (target <= {changed['ratio_target']:g}).",
        ]
    return "\n".join(out)


def _zone_results(bench: dict[str, Any] | None) -> str:
    zone = (bench or {}).get("zone_scale")
    if zone is None:
        return f"No results yet: run `python benchmarks/zone_scale.py` (writes `{ZONE_BENCH_RESULTS}`), then `meridian docs --write`."
    size = f"cells of {zone['cell_size']:,}" if zone["cell_size"] else "cells of the platform's cells.size"
    command = f"BENCH_ZONE_TENANTS={zone['tenants']}" + (f" BENCH_CELL_SIZE={zone['cell_size']}" if zone["cell_size"] else "")
    out = [
        _measured(
            zone, f" (`{command} python benchmarks/zone_scale.py`)", " (busy: above its {cpus} cores, so the times are noisy)"
        ),
        "",
        f"Zone {zone['zone']}: {zone['tenants']:,} tenants in {zone['cells']} cells ({size}) plus the platform, "
        f"{zone['resources']:,} resources: the zone preview took {zone['zone_s']:.1f} s against a floor of "
        f"{zone['floor_s']:.1f} s (the stacks' bare runs, {zone['bare_sum_s']:.1f} s, over {zone['cpus']} cores): "
        f"**ratio {zone['ratio']:.2f}** (target <= 1.3). Worst worker peak RSS {zone['worker_peak_rss_mib']:,} MiB "
        f"(target <= 2,048), its analyzers {zone['analyzers_peak_rss_mib']:,} MiB; the zone's own process "
        f"{zone['zone_process_rss_mib']:,} MiB."
        + (
            f" The platform's phase (every other core waits for its outputs) took {zone['platform_s']:.1f} s and "
            f"{zone['platform_cpu_s']:.1f} CPU s: {zone['idle_core_s']:.1f} core-seconds idle, "
            f"{zone['idle_core_s'] / (zone['cpus'] * zone['zone_s']):.1%} of the zone's."
            if "idle_core_s" in zone
            else ""
        ),
        "",
        "| stack | tenants | resources | bare s | preview program s | worker RSS MiB | analyzers RSS MiB | mandatory | advisory |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in zone["stacks"]:
        out.append(
            f"| {s['stack']} | {s['tenants']:,} | {s['resources']:,} | {s['bare_process_s']:.1f} | {s['preview_program_s']:.1f} | "
            f"{s['peak_rss_mib']:,} | {s['analyzers_peak_rss_mib']:,} | {s['mandatory']} | {s['advisory']} |"
        )
    return "\n".join(out)


@dataclass(frozen=True)
class Section:
    path: str  # relative to the project
    name: str
    render: Callable[[dict[str, StackFacts], dict[str, Any] | None], str]


SECTIONS = (
    Section("docs/architecture.md", "topology-us", lambda facts, _: _topology(facts, "us")),
    Section("docs/topology/eu.md", "topology-eu", lambda facts, _: _topology(facts, "eu")),
    Section("docs/topology/apac.md", "topology-apac", lambda facts, _: _topology(facts, "apac")),
    Section("docs/offline-engine.md", "stack-counts", lambda facts, _: _stack_counts(facts)),
    Section("docs/benchmarks.md", "scale-results", lambda _, bench: _scale_results(bench)),
    Section("docs/benchmarks.md", "changed-results", lambda _, bench: _changed_results(bench)),
    Section("docs/benchmarks.md", "zone-results", lambda _, bench: _zone_results(bench)),
    Section("docs/config.md", "config-reference", lambda *_: config_reference()),
    Section("docs/config.md", "pack-settings", lambda *_: pack_settings()),
)


def pack_settings() -> str:
    from meridian.engine.policy.generated import sources_table

    return sources_table()


def bench_problems(facts: dict[str, StackFacts], bench: dict[str, Any] | None) -> list[str]:
    """Why the benchmark figures no longer describe the program (they were measured on another shape)."""
    if bench is None:
        return []
    problems = []
    for row in bench["stacks"]:
        current = facts[row["stack"]].resources if row["stack"] in facts else None
        if current is not None and abs(current - row["resources"]) > BENCH_SIZE_TOLERANCE * row["resources"]:
            problems.append(
                f"{BENCH_RESULTS}: stack {row['stack']} was measured with {row['resources']} resources, the program now "
                f"makes {current}: run `make bench`, then `meridian docs --write`"
            )
    return problems


def _replace(text: str, name: str, body: str, path: str) -> str:
    begin, end = _BEGIN.format(name=name), _END.format(name=name)
    match = re.search(re.escape(begin) + r"\n.*?" + re.escape(end), text, flags=re.S)
    if match is None:
        raise BadInput(f"{path}: the markers of generated section {name!r} are missing ({begin} ... {end})")
    return text[: match.start()] + f"{begin}\n{body}\n{end}" + text[match.end() :]


def render_docs(project_dir: Path, facts: dict[str, StackFacts], bench: dict[str, Any] | None) -> dict[str, str]:
    """Each doc with a generated section, as it should read: path -> full text."""
    out: dict[str, str] = {}
    for section in SECTIONS:
        text = out.get(section.path) or (project_dir / section.path).read_text()
        out[section.path] = _replace(text, section.name, section.render(facts, bench), section.path)
    return out


def stale_docs(project_dir: Path, facts: dict[str, StackFacts], bench: dict[str, Any] | None) -> list[str]:
    """Docs whose generated sections differ from what the program (and bench) make now."""
    wanted = render_docs(project_dir, facts, bench)
    return [path for path, text in wanted.items() if (project_dir / path).read_text() != text]
