"""`meridian preview --changed` after a change to one tenant, in zones of 1,000 tenants and of the
most a zone takes today (stackconfig.zone.MAX_ZONE_TENANTS, 4,998: each tenant holds a Pod Identity
association on each of the zone's two clusters, 5,000 per cluster, not adjustable; the issue's
10,000 needs a second cluster pair, not built yet).

For each size (BENCH_CHANGED_TENANTS, default 1000,<MAX_ZONE_TENANTS>): a temporary git repository holding a copy
of the project whose `us` zone is cells only (its inline tenants moved out, `cells.size` tenants per
cell stack, tenants from meridian.scale's synthetic mix), committed on `main` as the base; then one
tenant's budget changes in the working tree and `meridian preview --changed` runs in a fresh
process (wall time, the pack on). Targets: each run under 30 s on a quiet 2-core machine, and the
largest zone's time within 1.2x of the 1,000-tenant zone's (the change previews one cell's
subset, whatever the zone's size). Results: benchmarks/results/changed_preview.json, rendered into
docs/benchmarks.md by `meridian docs --write`.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from meridian.engine.policy import config_path, load_policy_config  # noqa: E402
from meridian.engine.policy.generated import render  # noqa: E402
from meridian.scale import synthetic_tenants  # noqa: E402
from meridian.stackconfig import load_validated  # noqa: E402
from stackconfig import as_written  # noqa: E402
from stackconfig.zone import MAX_ZONE_TENANTS  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_CHANGED_TENANTS", f"1000,{MAX_ZONE_TENANTS}").split(",") if n]
ZONE = "us"
SECONDS_TARGET = 30.0
RATIO_TARGET = 1.2
RESULTS_PATH = ROOT / "benchmarks" / "results" / "changed_preview.json"
PROJECT_PARTS = ("components", "stackconfig", "service", "policies")
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "Pulumi.us.yaml", "Pulumi.eu.yaml", "Pulumi.apac.yaml")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=bench@example.com", "-c", "user.name=bench", *args], cwd=repo, check=True, capture_output=True
    )


def zone_of_cells(repo: Path, tenants: int) -> list[str]:
    """The project in `repo` with the us zone holding `tenants` tenants in cells of its `cells.size`."""
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, repo / name)
    for part in PROJECT_PARTS:
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    cfg = load_validated(ROOT, ZONE)
    mix = synthetic_tenants(cfg.tenants, 0, tenants, len(str(max(tenants - 1, 0))))
    size = cfg.cells.size
    cells = [f"{ZONE}-cell-{i + 1:03d}" for i in range(math.ceil(tenants / size))]
    budgets = sum(t.monthly_budget_usd for t in mix)
    headroom = cfg.cost.stack_cap_usd - sum(t.monthly_budget_usd for t in cfg.tenants)
    platform_path = repo / f"Pulumi.{ZONE}.yaml"
    doc = yaml.safe_load(platform_path.read_text())
    doc["config"]["meridian:tenants"] = []
    doc["config"]["meridian:cells"] = {"size": size, "names": cells}
    doc["config"]["meridian:cost"] = {**doc["config"]["meridian:cost"], "stack_cap_usd": math.ceil(budgets + headroom)}
    platform_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    region = doc["config"]["aws:region"]
    for i, cell in enumerate(cells):
        entries = [as_written(t) for t in mix[i * size : (i + 1) * size]]
        config = {"aws:region": region, "meridian:platform": ZONE, "meridian:tenants": entries}
        (repo / f"Pulumi.{cell}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    for stack in [ZONE, *cells]:  # each stack's policy config, generated from its config as `meridian policy --write-config`
        path = config_path(repo, stack)
        path.write_text(render(load_policy_config(path) if path.exists() else None, load_validated(repo, stack), repo, stack))
    return cells


def change_one_tenant(repo: Path, cell: str) -> str:
    path = repo / f"Pulumi.{cell}.yaml"
    doc = yaml.safe_load(path.read_text())
    tenant = doc["config"]["meridian:tenants"][len(doc["config"]["meridian:tenants"]) // 2]
    tenant["monthly_budget_usd"] = tenant["monthly_budget_usd"] - 1
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return tenant["id"]


def measure(tenants: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"meridian-changed-{tenants}-") as tmp:
        repo = Path(tmp)
        git(repo, "init", "-q", "-b", "main")
        cells = zone_of_cells(repo, tenants)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"a zone of {tenants} tenants")
        changed = change_one_tenant(repo, cells[len(cells) // 2])
        cpu_before = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "meridian", "preview", "--changed", "--project-dir", str(repo)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "NO_COLOR": "1"},
        )
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before  # the run, its workers and their analyzers (each reaped by its parent)
        if done.returncode != 0:
            raise SystemExit(
                f"--changed at {tenants} tenants exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        previewed = [
            line.strip()
            for line in done.stdout.splitlines()
            if line.startswith("  ") and ("(cell" in line or "(platform" in line)
        ]
        return {
            "tenants": tenants,
            "cells": len(cells),
            "changed": changed,
            "seconds": round(seconds, 2),
            "cpu_s": round(cpu, 2),
            "previewed": previewed,
        }


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and the children they waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    load_start = os.getloadavg()[0]
    rows = [measure(n) for n in SIZES]
    load_end = os.getloadavg()[0]
    for r in rows:
        print(
            f"{r['tenants']:>6,} tenants ({r['cells']} cells): {r['seconds']:.1f} s wall, {r['cpu_s']:.1f} s CPU"
            f"  (target < {SECONDS_TARGET:.0f} s)  {r['previewed']}"
        )
    ratio = rows[-1]["seconds"] / rows[0]["seconds"] if len(rows) > 1 else None
    cpu_ratio = rows[-1]["cpu_s"] / rows[0]["cpu_s"] if len(rows) > 1 else None
    if ratio is not None:
        print(
            f"ratio {rows[-1]['tenants']:,} / {rows[0]['tenants']:,}: {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target <= {RATIO_TARGET})"
        )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    RESULTS_PATH.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "commit": commit,
                "cpus": os.cpu_count(),
                "load_avg_1m": [round(load_start, 2), round(load_end, 2)],
                "rows": rows,
                "ratio": round(ratio, 2) if ratio is not None else None,
                "cpu_ratio": round(cpu_ratio, 2) if cpu_ratio is not None else None,
                "seconds_target": SECONDS_TARGET,
                "ratio_target": RATIO_TARGET,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"results written to {RESULTS_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
