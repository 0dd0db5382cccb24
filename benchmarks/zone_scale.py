"""A zone previewed in parallel vs its floor: `meridian preview --zone us --tenants N` (the pack
judging every cell beside its platform, the zone's checks, one worker per core) against the sum of
each stack's `--bare` run divided by the cores (`meridian preview --zone us --tenants N --bare`:
every stack under mocks only, one at a time, each its own fresh process, timed from spawn to result).

Targets (issue 27): the ratio zone wall / (sum of bare / cores) <= 1.3; every worker's peak RSS
<= 2 GiB (each worker's own, from getrusage in the worker; its analyzer processes' peak beside it);
the zone's own process stays small (it holds summaries, never the plans).

BENCH_ZONE_TENANTS (default 10,000, the issue's size: the zone's cells past 4,997 tenants sit on
tenant cluster pairs, as meridian.scale places them; the zone's
tenants, its real ones counted), BENCH_CELL_SIZE
(default: the platform's cells.size, 1,000), BENCH_ZONE (default us). A small run:
BENCH_ZONE_TENANTS=1000 BENCH_CELL_SIZE=250 python benchmarks/zone_scale.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


ZONE = os.environ.get("BENCH_ZONE", "us")
TENANTS = int(os.environ.get("BENCH_ZONE_TENANTS", "10000"))
CELL_SIZE = os.environ.get("BENCH_CELL_SIZE")
RATIO_TARGET = 1.3
RSS_TARGET_MIB = 2048
RESULTS_PATH = ROOT / "benchmarks" / "results" / "zone_scale.json"


def run(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB, the process and what it reaped) and exit code of one fresh `meridian` process."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "meridian", *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):  # 1: a gate failed, which still measures the engine
            out.seek(0)
            raise SystemExit(f"meridian {' '.join(args)} failed ({code}): {out.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, code


def main() -> None:
    console = Console(width=max(Console().width, 140))
    cores = os.cpu_count() or 1
    load_at_start = os.getloadavg()[0]
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    scale = ["--zone", ZONE, "--tenants", str(TENANTS), *(["--cell-size", CELL_SIZE] if CELL_SIZE else [])]
    with tempfile.TemporaryDirectory() as bare_dir, tempfile.TemporaryDirectory() as zone_dir:
        with console.status(f"zone {ZONE}, {TENANTS:,} tenants: every stack bare, one at a time"):
            bare_wall, _, _ = run(["preview", *scale, "--bare", "--json", bare_dir])
        with console.status(f"zone {ZONE}, {TENANTS:,} tenants: the zone preview on {cores} cores"):
            zone_wall, zone_tree_rss, code = run(["preview", *scale, "--timings", "--json", zone_dir])
        bare = json.loads((Path(bare_dir) / "zone.json").read_text())
        zone = json.loads((Path(zone_dir) / "zone.json").read_text())
    bare_by_stack = {s["stack"]: s for s in bare["stacks"]}
    floor = sum(s["process_s"] for s in bare["stacks"]) / cores
    ratio = zone_wall / floor
    worst_worker = max(s["peak_rss_mib"] for s in zone["stacks"])
    worst_analyzer = max(s["analyzers_peak_rss_mib"] for s in zone["stacks"])

    table = Table(
        title=f"zone {ZONE}: {zone['tenants']:,} tenants in {len(zone['cells'])} cells, preview on {cores} cores vs bare"
    )
    for col in (
        "stack",
        "tenants",
        "resources",
        "bare process s",
        "program s (preview)",
        "worker peak RSS MiB",
        "analyzers peak RSS MiB",
        "mandatory",
        "advisory",
    ):
        table.add_column(col, justify="left" if col == "stack" else "right")
    rows = []
    for s in zone["stacks"]:
        b = bare_by_stack[s["stack"]]
        table.add_row(
            s["stack"],
            str(len(s["tenants"])),
            f"{s['resources']:,}",
            f"{b['process_s']:.1f}",
            f"{s['preview_s']:.1f}",
            f"{s['peak_rss_mib']:,}",
            f"{s['analyzers_peak_rss_mib']:,}",
            str(s["violations"]["mandatory"]),
            str(s["violations"]["advisory"]),
        )
        rows.append(
            {
                "stack": s["stack"],
                "tenants": len(s["tenants"]),
                "resources": s["resources"],
                "bare_process_s": b["process_s"],
                "bare_program_s": b["program_s"],
                "preview_program_s": s["preview_s"],
                "peak_rss_mib": s["peak_rss_mib"],
                "analyzers_peak_rss_mib": s["analyzers_peak_rss_mib"],
                "mandatory": s["violations"]["mandatory"],
                "advisory": s["violations"]["advisory"],
            }
        )
    console.print(table)
    ok_ratio, ok_rss = ratio <= RATIO_TARGET, worst_worker <= RSS_TARGET_MIB
    console.print(
        f"zone preview {zone_wall:.1f} s (exit {code}, zone checks: {len(zone['zone_problems'])} problems) vs floor "
        f"{floor:.1f} s (bare sum {floor * cores:.1f} s / {cores} cores; the bare run took {bare_wall:.1f} s): ratio "
        f"{ratio:.2f} ({'ok' if ok_ratio else 'missed'}, target <= {RATIO_TARGET}); worst worker peak RSS {worst_worker:,} MiB "
        f"({'ok' if ok_rss else 'missed'}, target <= {RSS_TARGET_MIB}); analyzers {worst_analyzer:,} MiB; the zone process "
        f"{zone['peak_rss_mib']['zone']:,} MiB"
    )
    # the platform's phase: every other core waits for its outputs (issue 27's idle core)
    platform = zone["stacks"][0]
    idle = max(0.0, cores * zone["platform_s"] - platform["cpu_s"])
    console.print(
        f"platform phase {zone['platform_s']:.1f} s of {zone_wall:.1f} s, {platform['cpu_s']:.1f} CPU s (worker and analyzer): "
        f"{idle:.1f} core-seconds idle, {idle / (cores * zone_wall):.1%} of the zone's core-seconds"
    )
    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "commit": commit or "unknown",
        "cpus": cores,
        "load_avg_1m": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
        "zone": ZONE,
        "tenants": zone["tenants"],
        "cell_size": int(CELL_SIZE) if CELL_SIZE else None,
        "cells": len(zone["cells"]),
        "resources": zone["resources"],
        "zone_s": round(zone_wall, 2),
        "bare_sum_s": round(floor * cores, 2),
        "floor_s": round(floor, 2),
        "ratio": round(ratio, 3),
        "worker_peak_rss_mib": worst_worker,
        "analyzers_peak_rss_mib": worst_analyzer,
        "zone_process_rss_mib": zone["peak_rss_mib"]["zone"],
        "zone_tree_rss_mib": round(zone_tree_rss),
        "exit_code": code,
        "platform_s": zone["platform_s"],
        "platform_cpu_s": platform["cpu_s"],
        "idle_core_s": round(idle, 2),
        "zone_problems": len(zone["zone_problems"]),
        "stacks": rows,
    }
    RESULTS_PATH.parent.mkdir(exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(result, indent=1) + "\n")
    console.print(f"results written to {RESULTS_PATH.relative_to(ROOT)}; `meridian docs --write` puts them in docs/benchmarks.md")


if __name__ == "__main__":
    main()
