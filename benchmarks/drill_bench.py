"""Drill benchmark on the sandbox: recovery times of the DR drills, p50 and max over N runs.

1. `region-failover` (primary service killed, primary database crashed, dr promoted): RTO measured
   through the front door (fault -> first good write and read) against the stack's failover
   objective `failover.rto_target_s`, scaled by the sandbox's time scale. The detection bound
   (interval x threshold + TTL, scaled) is printed beside it: a write needs the dr database promoted
   after the front door moved, so the write RTO is detection + promotion, not detection alone.
2. `database-failover --mode planned` (clean shutdown, promotion, traffic flip): RTO <= 2 s with 0
   acknowledged writes lost.

3. `restore-from-backup` once at the end: time from the restore request to a queryable copy, and
   every write acknowledged before the recovery point present in it.

The two failover drills alternate (run i of each back to back) on one sandbox, which every drill
leaves healthy (it fails back). The sandbox runs the us stack at `--time-scale` BENCH_TIME_SCALE (10, as
`make sandbox`), in a temporary state dir, and is brought down at the end whatever happens.
The 2 cores are shared with everything else on the machine: the numbers are for comparing.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from meridian.commands.drill import DrillRequest, run_drill  # noqa: E402
from meridian.sandbox import core  # noqa: E402
from meridian.stackconfig import load_validated  # noqa: E402

RUNS = int(os.environ.get("BENCH_DRILL_RUNS", "5"))
TIME_SCALE = float(os.environ.get("BENCH_TIME_SCALE", "10"))
STACK = "us"
PLANNED_RTO_TARGET_S = 2.0


def main() -> int:
    console = Console(width=max(140, Console().width))
    cfg = load_validated(ROOT, STACK)
    state = Path(tempfile.mkdtemp(prefix="meridian-drill-bench-"))
    os.chmod(state, 0o755)  # the postgres user must reach the data dirs
    records = state / "records"
    quiet = Console(file=open(os.devnull, "w"))
    results: dict[str, list[dict]] = {"region-failover": [], "database-failover": []}
    root = core.root_of(ROOT, STACK, state)
    try:
        doc = core.up(cfg, STACK, root, time_scale=TIME_SCALE).manifest
        bound = float(doc.failover.detection_bound_scaled_s)
        for i in range(RUNS):
            for drill in results:
                code = run_drill(
                    DrillRequest(
                        drill=drill,
                        stack=STACK,
                        target="sandbox",
                        mode="planned" if drill == "database-failover" else None,  # --mode is database-failover's only
                        execute=True,
                        project_dir=ROOT,
                        state_dir=state,
                        records=records,
                    ),
                    quiet,
                )
                (latest,) = sorted((records / STACK).glob("*/timeline.json"), key=lambda p: p.stat().st_mtime)[-1:]
                timeline = json.loads(latest.read_text())
                failover = timeline["measured"].get("failover", {})
                results[drill].append(
                    {
                        "code": code,
                        "rto": failover.get("recovery", {}).get("rto_s"),
                        "lost": len(failover.get("data_loss", {}).get("lost_ids", [])),
                        "acked": failover.get("data_loss", {}).get("acknowledged"),
                        "failback_rto": timeline["measured"].get("failback", {}).get("recovery", {}).get("rto_s"),
                    }
                )
                console.print(
                    f"run {i + 1}/{RUNS} {drill}: exit {code}, RTO {results[drill][-1]['rto']} s, "
                    f"lost {results[drill][-1]['lost']} of {results[drill][-1]['acked']}"
                )
        restore_code = run_drill(
            DrillRequest(
                drill="restore-from-backup",
                stack=STACK,
                target="sandbox",
                execute=True,
                project_dir=ROOT,
                state_dir=state,
                records=state / "restores",
            ),
            quiet,
        )
        (restore_timeline,) = (state / "restores" / STACK).glob("*/timeline.json")
        restore = json.loads(restore_timeline.read_text())["measured"]["restore"]
    finally:
        core.down(root, wipe=True)

    table = Table(title=f"sandbox drills, stack {STACK}, time scale {TIME_SCALE:g}, {RUNS} runs each")
    for col in ("drill", "RTO p50 s", "RTO max s", "target s", "met", "lost writes (max)", "failback RTO p50 s", "exit codes"):
        table.add_column(col)
    targets = {"region-failover": cfg.failover.rto_target_s / TIME_SCALE, "database-failover": PLANNED_RTO_TARGET_S}
    ok = True
    for drill, runs in results.items():
        if not runs:
            continue
        rtos = [r["rto"] for r in runs if r["rto"] is not None]
        lost = max((r["lost"] for r in runs), default=0)
        met = len(rtos) == len(runs) and max(rtos) <= targets[drill] and (drill != "database-failover" or lost == 0)
        ok &= met
        failback = [r["failback_rto"] for r in runs if r["failback_rto"] is not None]
        table.add_row(
            drill,
            f"{statistics.median(rtos):.3f}" if rtos else "-",
            f"{max(rtos):.3f}" if rtos else "-",
            f"{targets[drill]:.2f}" + (" (rto_target_s, scaled)" if drill == "region-failover" else ""),
            "yes" if met else "NO",
            str(lost),
            f"{statistics.median(failback):.3f}" if failback else "-",
            ",".join(str(r["code"]) for r in runs),
        )
    console.print(table)
    lost = restore["data_loss"]["lost_ids"]
    ok &= restore_code == 0 and not lost
    console.print(
        f"restore-from-backup: exit {restore_code}, copy queryable {restore['recovery']['rto_s']:.3f} s after the request, "
        f"{restore['data_loss']['acknowledged']} writes before the recovery point, {len(lost)} missing; "
        f"{restore['after_recovery_point']['acknowledged']} after it (RPO {restore['data_loss']['rpo_s']:.3f} s)"
    )
    console.print(
        f"detection bound (scaled): {bound:.2f} s = ({cfg.failover.health_check_interval_s} x {cfg.failover.failure_threshold}"
        f" + {cfg.failover.dns_ttl_s}) / {TIME_SCALE:g}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
