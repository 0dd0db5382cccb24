"""Preview overhead and scale: `meridian preview` vs the SDK floor `meridian preview --bare`.

Table 1: each real stack, both modes in fresh processes, alternating, BENCH_REPEAT times (medians).
Both tables also show the policy pack's cost (from the plan's `policy.timings`): the analyzer's own
CPU time (Analyze per resource + AnalyzeStack, startup excluded), how much of it ran hidden behind
the program and the report (streamed while the program registers), and the wall time the run
actually waited for policy results.
Table 2: the us stack with 0, 100, 500, 1000 synthetic tenants (BENCH_TENANTS), both modes side by side:
wall time, peak RSS, ms per resource, the ratio (target <= 1.3), and time per tenant against the
smallest non-zero run (target: within 1.2x, i.e. linear).
Table 3: the same runs by CPU seconds, which other work on a shared machine moves far less than
wall time: the program (the bare run's whole process), the pack's analyzers (startup included) and
the engine (what the preview process spends beyond the bare run: recording, the analyzer protocol,
plan, cost, report, preflight, plan JSON). The process's CPU comes from the kernel (`wait4`: it
includes the analyzers it reaped), the analyzers' from /proc, in the plan's `policy.timings`.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("us", "eu", "apac")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
TENANTS = [int(n) for n in os.environ.get("BENCH_TENANTS", "0,100,500,1000").split(",") if n]
RATIO_TARGET = 1.3
LINEAR_TARGET = 1.2
RSS_TARGET_MIB = 2048
# Every run's figures, for docs/scale.md (`meridian docs --write` renders them; a test checks they
# were measured on the program as it is now).
RESULTS_PATH = ROOT / "benchmarks" / "results" / "preview_scale.json"
RESULTS: dict = {"stacks": [], "tenants": []}


@dataclass
class Run:
    wall: float
    rss_mib: float
    resources: int
    policy: dict | None = None
    cpu: float = 0.0  # user + system CPU of the process and the analyzers it started

    def analyzer_cpu(self) -> float | None:
        """All the analyzers' CPU, startup included (None when the run did not report it)."""
        t = (self.policy or {}).get("timings") or {}
        if t.get("analyzer_cpu_s") is None or t.get("startup_cpu_s") is None:
            return None
        return t["analyzer_cpu_s"] + t["startup_cpu_s"]

    def policy_cells(self) -> list[str]:
        """analyzer CPU s, hidden share, wait s (from the plan JSON's policy.timings)."""
        t = (self.policy or {}).get("timings") or {}
        cpu, hidden = t.get("analyzer_cpu_s"), t.get("hidden_cpu_s")
        if cpu is None:
            return ["-", "-", "-"]
        return [f"{cpu:.2f}", f"{hidden:.2f} ({hidden / cpu:.0%})" if cpu else "-", f"{t.get('waited_s', 0):.2f}"]


def timed(args: list[str]) -> Run:
    """Wall seconds, peak RSS and resource count of one fresh `meridian` process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "meridian", *args], cwd=ROOT, stdout=out, stderr=err, env={**os.environ, "COLUMNS": "200"}
        )
        _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves: rusage of exactly this child
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code not in (0, 1):  # 1: a gate failed, which still measures the engine
        raise SystemExit(f"meridian {' '.join(args)} failed ({code}): {stderr.decode()[-2000:]}")
    found = re.search(rb"(\d+) resources in", stdout)
    policy = None
    if "--json" in args:
        plan_path = Path(args[args.index("--json") + 1])
        if plan_path.is_file():
            policy = json.loads(plan_path.read_text()).get("policy")
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, usage.ru_maxrss / 1024, int(found.group(1)) if found else 0, policy, cpu)


def stacks_table(console: Console, tmp: str) -> Table:
    table = Table(title=f"1. meridian preview vs --bare per stack (median of {REPEAT}, fresh process each)")
    for col in (
        "stack",
        "resources",
        "bare s",
        "preview s",
        "ratio",
        "target",
        "analyzer CPU s",
        "hidden by overlap",
        "policy wait s",
    ):
        table.add_column(col, justify="right")
    with console.status("stacks") as status:
        for stack in STACKS:
            bare, full = [], []
            for i in range(REPEAT):
                status.update(f"{stack}: run {i + 1}/{REPEAT}")
                bare.append(timed(["preview", "--stack", stack, "--bare"]))
                full.append(timed(["preview", "--stack", stack, "--timings", "--json", f"{tmp}/{stack}.json"]))
            b, f = statistics.median(r.wall for r in bare), statistics.median(r.wall for r in full)
            median_run = sorted(full, key=lambda r: r.wall)[len(full) // 2]
            table.add_row(
                stack,
                str(full[0].resources),
                f"{b:.2f}",
                f"{f:.2f}",
                f"{f / b:.2f}",
                _verdict(f / b <= RATIO_TARGET),
                *median_run.policy_cells(),
            )
            RESULTS["stacks"].append(
                {
                    "stack": stack,
                    "resources": full[0].resources,
                    "bare_s": round(b, 3),
                    "preview_s": round(f, 3),
                    "rss_mib": round(median_run.rss_mib),
                    "policy": (median_run.policy or {}).get("timings"),
                }
            )
    return table


def cpu_table() -> Table:
    """Table 3, from the runs table 2 made (RESULTS["tenants"])."""
    table = Table(title="3. the same runs by CPU seconds: program (bare) vs analyzers vs engine")
    for col in ("tenants", "bare CPU s", "preview CPU s", "CPU ratio", "analyzers CPU s", "engine CPU s"):
        table.add_column(col, justify="right")
    for row in RESULTS["tenants"]:
        analyzers = row.get("analyzers_cpu_s")
        engine = None if analyzers is None else row["cpu_s"] - analyzers - row["bare_cpu_s"]
        table.add_row(
            str(row["tenants"]),
            f"{row['bare_cpu_s']:.1f}",
            f"{row['cpu_s']:.1f}",
            f"{row['cpu_s'] / row['bare_cpu_s']:.2f}",
            "-" if analyzers is None else f"{analyzers:.1f}",
            "-" if engine is None else f"{engine:.1f}",
        )
    return table


def tenants_table(console: Console, tmp: str) -> Table:
    table = Table(title="2. us stack at scale: preview vs --bare with the same synthetic tenants")
    for col in (
        "tenants",
        "resources",
        "bare s",
        "preview s",
        "ratio",
        "ms/resource",
        "s/tenant",
        "vs smallest",
        "preview RSS MiB",
        "targets",
        "analyzer CPU s",
        "hidden by overlap",
        "policy wait s",
    ):
        table.add_column(col, justify="right")
    per_tenant_base = None
    base_wall = None
    with console.status("tenants") as status:
        for n in TENANTS:
            status.update(f"{n} tenants: bare")
            bare = timed(["preview", "--stack", "us", "--tenants", str(n), "--bare"])
            status.update(f"{n} tenants: preview")
            full = timed(["preview", "--stack", "us", "--tenants", str(n), "--timings", "--json", f"{tmp}/us-{n}.json"])
            ratio = full.wall / bare.wall
            if n == 0:
                base_wall = full.wall
                per_tenant, linear = None, None
            else:
                per_tenant = (full.wall - (base_wall or 0)) / n
                per_tenant_base = per_tenant_base or per_tenant
                linear = per_tenant / per_tenant_base
            ok = ratio <= RATIO_TARGET and (linear is None or linear <= LINEAR_TARGET) and full.rss_mib <= RSS_TARGET_MIB
            table.add_row(
                str(n),
                str(full.resources),
                f"{bare.wall:.1f}",
                f"{full.wall:.1f}",
                f"{ratio:.2f}",
                f"{1000 * full.wall / max(full.resources, 1):.2f}",
                "-" if per_tenant is None else f"{per_tenant:.3f}",
                "-" if linear is None else f"{linear:.2f}",
                f"{full.rss_mib:.0f}",
                _verdict(ok),
                *full.policy_cells(),
            )
            RESULTS["tenants"].append(
                {
                    "tenants": n,
                    "resources": full.resources,
                    "bare_s": round(bare.wall, 3),
                    "preview_s": round(full.wall, 3),
                    "bare_rss_mib": round(bare.rss_mib),
                    "rss_mib": round(full.rss_mib),
                    "bare_cpu_s": round(bare.cpu, 2),
                    "cpu_s": round(full.cpu, 2),
                    "analyzers_cpu_s": None if full.analyzer_cpu() is None else round(full.analyzer_cpu(), 2),
                    "policy": (full.policy or {}).get("timings"),
                }
            )
    return table


def _verdict(ok: bool) -> str:
    return "[green]ok[/]" if ok else "[red]missed[/]"


def main() -> None:
    console = Console(width=max(Console().width, 140))
    load_at_start = os.getloadavg()[0]  # other work on the machine slows both columns alike, not the ratio
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        console.print(stacks_table(console, tmp))
        console.print(tenants_table(console, tmp))
        console.print(cpu_table())
    console.print(
        f"targets: ratio <= {RATIO_TARGET}; s/tenant within {LINEAR_TARGET}x of the smallest run; peak RSS <= {RSS_TARGET_MIB} MiB"
    )
    RESULTS.update(
        date=time.strftime("%Y-%m-%d", time.gmtime()),
        commit=commit or "unknown",
        cpus=os.cpu_count(),
        repeat=REPEAT,
        load_avg_1m=[round(load_at_start, 2), round(os.getloadavg()[0], 2)],
    )
    RESULTS_PATH.parent.mkdir(exist_ok=True)
    RESULTS_PATH.write_text(json.dumps(RESULTS, indent=1) + "\n")
    console.print(f"results written to {RESULTS_PATH.relative_to(ROOT)}; `meridian docs --write` puts them in docs/scale.md")


if __name__ == "__main__":
    main()
