"""Rollout benchmark on the sandbox: how fast the gate takes a bad canary out, and how much traffic
it served before that.

`meridian rollout --version bad` (loadtests/versions.yaml: +600 ms on every API response) on the us
stack, `--region-order primary`, the stack's steps (1, 5, 25, 100) and its window (rollout.pause_s
scaled by the sandbox time scale), the default minimum of canary requests per step, N runs:

- breach onset -> 0 %: from the moment the 1 % weight was set and read back (the bad canary's first
  request can come right after) to the moment the rollback's weight was read back at 0 %, against
  the step's window (the gate judges as soon as it has its minimum of canary requests, it does not
  wait for the window);
- the requests the bad canary answered before 0 %, as a fraction of every request in that time,
  and that fraction against the step's traffic share (1 %): the target is < 1 % of all requests,
  i.e. a ratio <= 1 (weighted round robin gives the canary exactly its share, never more).

The sandbox runs at `--time-scale` BENCH_TIME_SCALE (10, as `make sandbox`) in a temporary state
dir and is brought down at the end whatever happens. 2 shared cores: the numbers are for comparing.
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

from meridian.commands.rollout import RolloutRequest, run_rollout  # noqa: E402
from meridian.errors import GateFailed  # noqa: E402
from meridian.sandbox import core  # noqa: E402
from meridian.stackconfig import load_validated  # noqa: E402

RUNS = int(os.environ.get("BENCH_ROLLOUT_RUNS", "3"))
TIME_SCALE = float(os.environ.get("BENCH_TIME_SCALE", "10"))
USERS = int(os.environ.get("BENCH_ROLLOUT_USERS", "40"))
STACK = "us"
OUT = ROOT / "benchmarks" / "results" / "rollout.json"


def main() -> int:
    console = Console(width=max(140, Console().width))
    cfg = load_validated(ROOT, STACK)
    state = Path(tempfile.mkdtemp(prefix="meridian-rollout-bench-"))
    os.chmod(state, 0o755)  # the postgres user must reach the data dirs
    root = core.root_of(ROOT, STACK, state)
    runs: list[dict] = []
    try:
        core.up(cfg, STACK, root, time_scale=TIME_SCALE)
        for i in range(RUNS):
            report = state / f"report-{i}"
            req = RolloutRequest(
                stack=STACK,
                target="sandbox",
                version="bad",
                region_order="primary",
                users=USERS,
                report_dir=report,
                evidence_dir=state / f"evidence-{i}",
                state_dir=state,
                project_dir=ROOT,
            )
            try:
                code = run_rollout(req)
            except GateFailed as exc:
                code = exc.exit_code
            doc = json.loads((report / "rollout.json").read_text())
            rb = doc["rollback"]
            runs.append({"code": code, "step": rb.get("step"), **{k: rb.get(k) for k in ROLLBACK_KEYS}})
            console.print(
                f"run {i + 1}/{RUNS}: exit {code}, onset -> 0 % {rb.get('onset_to_zero_s')} s, canary "
                f"{rb.get('canary_requests')}/{rb.get('requests')} requests"
            )
    finally:
        core.down(root, wipe=True)

    window = runs[0]["window_s"] if runs else None
    table = Table(
        title=f"bad canary (+600 ms) at the 1 % step, stack {STACK}, time scale {TIME_SCALE:g}, {USERS} users, {RUNS} runs"
    )
    for col in ("metric", "p50", "max", "against"):
        table.add_column(col)
    onset = [r["onset_to_zero_s"] for r in runs if r["onset_to_zero_s"] is not None]
    decide = [r["decision_to_zero_s"] for r in runs if r["decision_to_zero_s"] is not None]
    frac = [r["canary_fraction"] for r in runs if r["canary_fraction"] is not None]
    table.add_row("breach onset -> 0 % (s)", f"{statistics.median(onset):.2f}", f"{max(onset):.2f}", f"step window {window:g} s")
    table.add_row("decision -> 0 % (ms)", f"{statistics.median(decide) * 1000:.0f}", f"{max(decide) * 1000:.0f}", "")
    table.add_row(
        "canary share of requests before 0 %",
        f"{statistics.median(frac) * 100:.2f} %",
        f"{max(frac) * 100:.2f} %",
        f"target < 1 %; ratio to the 1 % step share: p50 {statistics.median(frac) / 0.01:.2f}, max {max(frac) / 0.01:.2f}",
    )
    console.print(table)
    # the gate's job: exit 1 at the first step every time; the share is reported, not gated (weighted
    # round robin routes exactly 1 in 100 requests to the canary, so it sits at 1 % by construction)
    ok = bool(runs) and all(r["code"] == 1 and r["step"] == 1 for r in runs)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {"stack": STACK, "time_scale": TIME_SCALE, "users": USERS, "runs": runs, "window_s": window, "ok": ok},
            indent=1,
        )
        + "\n"
    )
    console.print(f"{'OK' if ok else 'NOT MET'}: results in {OUT.relative_to(ROOT)}")
    return 0 if ok else 1


ROLLBACK_KEYS = ("onset_to_zero_s", "decision_to_zero_s", "window_s", "requests", "canary_requests", "canary_fraction")

if __name__ == "__main__":
    sys.exit(main())
