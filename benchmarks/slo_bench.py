"""SLO harness benchmark, on a sandbox of its own (time scale 10, as `make sandbox`), in one run:

1. ceiling: plain Locust, FastHttpUser without think time on the front door's /livez (the most
   this machine serves through HAProxy with Locust as the client);
2. harness overhead: the same tenant user class (loadtests/tenant_users.py), users and duration
   under plain Locust (no recorder, no verdict: Locust's own stats) and under `meridian slo`
   (raw timings, progress, verdict, report), one after the other against the same sandbox,
   ROUNDS times in alternating order (plain first in odd rounds, harness first in even ones, so
   drift in the machine's load falls on both sides): the medians' throughput and p95 ratios
   (target: within 10 %), and each round's ratios. Both p95s are Locust's estimator (every
   request, its rounded histogram), the harness's computed from its raw timings; the gate's own
   exact p95 (successful requests only) is printed beside it;
3. region-loss recovery: `meridian chaos region-loss` under load, CHAOS_RUNS times: kill to the
   first good response after the last error vs the failover detection bound (scaled) + 1 s.

The load average is printed at the start and the end: on a shared machine it says how much the
figures can be trusted.

    .venv/bin/python benchmarks/slo_bench.py [--users 20] [--seconds 15] [--rounds 4] [--chaos-runs 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from meridian.sandbox import manifest as mf
from meridian.slo.raw import read_raw

ROOT = Path(__file__).resolve().parent.parent
STACK = "us"
PY = sys.executable

PLAIN_LOCUSTFILE = """
import sys
sys.path.insert(0, {loadtests!r})
from locust import events
from meridian.slo.locust_plugin import add_arguments
events.init_command_line_parser.add_listener(add_arguments)  # --tenants-file etc., no recorder, no verdict
from tenant_users import TenantUser  # noqa: F401  the same user class meridian slo runs
"""

CEILING_LOCUSTFILE = """
from locust import FastHttpUser, task

class Livez(FastHttpUser):
    @task
    def livez(self):
        self.client.get("/livez")
"""


RECORDER_MICRO = """
import time
from meridian.slo.locust_plugin import Recorder
class R:
    status_code = 200
rec, resp, n = Recorder(), R(), 200_000
t0 = time.perf_counter()
for i in range(n):
    rec.on_request("GET", "/v1/tenants/[tenant]/events", 12.3, 100, response=resp, context={"tenant": "acme"},
                   exception=None, start_time=1.0e9 + i)
print((time.perf_counter() - t0) / n * 1e6)
"""


def sh(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    )
    return proc


def headless_locust(locustfile: Path, endpoint: str, users: int, seconds: int, csv_prefix: Path, *extra: str) -> list[str]:
    """Plain `locust --headless`: all users spawned in the first second, Locust's own CSV stats."""
    head = [PY, "-m", "locust", "-f", str(locustfile), "--headless", "--host", endpoint]
    load = ["-u", str(users), "-r", str(users), "-t", f"{seconds}s"]
    return [*head, *load, "--only-summary", "--csv", str(csv_prefix), "--loglevel", "WARNING", *extra]


def locust_stats(prefix: Path) -> dict:
    """Aggregated row of Locust's own --csv stats (its percentiles are rounded)."""
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {
        "rps": float(row["Requests/s"]),
        "p95_ms": float(row["95%"]),
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
    }


def start_plain(work: Path, endpoint: str, tenants: Path, users: int, seconds: int, i: int):
    locustfile = work / "plain_locustfile.py"
    locustfile.write_text(PLAIN_LOCUSTFILE.format(loadtests=str(ROOT / "loadtests")))
    prefix = work / f"plain-{i}"
    proc = subprocess.Popen(
        headless_locust(locustfile, endpoint, users, seconds, prefix, "--tenants-file", str(tenants)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, prefix


def finish_plain(proc, prefix: Path) -> dict:
    _, err = proc.communicate(timeout=600)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"plain locust failed ({proc.returncode}): {err[-2000:]}")
    return locust_stats(prefix)


def start_harness(work: Path, state_dir: Path, users: int, seconds: int, i: int):
    report = work / f"harness-{i}"
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "meridian",
            "slo",
            "--stack",
            STACK,
            "--state-dir",
            str(state_dir),
            "--shape",
            "flat",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--duration",
            str(seconds),
            "--out",
            str(report),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, report


def locust_p95(ms: list[float]) -> float:
    """The p95 as plain Locust reports it, from the same raw timings: every request (429s and
    errors too), rounded into its histogram buckets (locust.stats.bucket_response_time and
    calculate_response_time_percentile), so the two sides compare like with like."""

    def bucket(t: float) -> int:
        return round(t) if t < 100 else int(round(t, -1 if t < 1000 else -2 if t < 10000 else -3))

    counts = Counter(bucket(t) for t in ms)
    keep, seen = int(len(ms) * 0.95), 0
    for t in sorted(counts, reverse=True):
        seen += counts[t]
        if len(ms) - seen <= keep:
            return float(t)
    return 0.0


def finish_harness(proc, report: Path, seconds: int) -> dict:
    _, err = proc.communicate(timeout=600)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"meridian slo failed ({proc.returncode}): {err[-2000:]}")
    overall = json.loads((report / "report.json").read_text())["verdict"]["overall"]
    samples = read_raw(report / "raw.csv")
    return {
        "rps": overall["rps"],  # as Locust counts its Requests/s: requests over the span in which they were made
        "p95_ms": locust_p95([x.ms for x in samples]),  # compared with plain Locust's
        "gate_p95_ms": overall["p95_ms"],  # the gate's own: exact, successful requests only
        "requests": overall["requests"],
        "failures": overall["errors"],
        "passed": proc.returncode == 0,
    }


def ratio(a: float | None, b: float | None) -> float:
    return float("nan") if not a or not b else a / b


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def ceiling_run(work: Path, endpoint: str, users: int) -> dict:
    ceiling_file = work / "ceiling.py"
    ceiling_file.write_text(CEILING_LOCUSTFILE)
    sh(headless_locust(ceiling_file, endpoint, users, 10, work / "ceiling"))
    return locust_stats(work / "ceiling")


def overhead_rounds(work: Path, state_dir: Path, endpoint: str, tenants: Path, args) -> tuple[list[dict], list[dict]]:
    plain, harness = [], []
    for i in range(args.rounds):
        order = ("plain", "harness") if i % 2 == 0 else ("harness", "plain")
        for side in order:
            if side == "plain":
                plain.append(finish_plain(*start_plain(work, endpoint, tenants, args.users, args.seconds, i)))
            else:
                harness.append(finish_harness(*start_harness(work, state_dir, args.users, args.seconds, i), args.seconds))
        p, h = plain[-1], harness[-1]
        print(
            f"round {i + 1} ({' then '.join(order)}): plain {p['rps']:.1f} req/s, p95 {p['p95_ms']:.0f} ms (rounded) | "
            f"meridian slo {h['rps']:.1f} req/s, p95 {h['p95_ms']:.0f} ms (same estimator; the gate's exact p95 {h['gate_p95_ms']:.1f} ms) | "
            f"ratios: throughput {ratio(h['rps'], p['rps']):.3f}, p95 {ratio(h['p95_ms'], p['p95_ms']):.3f}",
            flush=True,
        )
    return plain, harness


def region_loss_runs(work: Path, state_dir: Path, args) -> list[dict]:
    runs = []
    for i in range(args.chaos_runs):
        out = work / f"chaos-{i}"
        c = sh(
            [
                PY,
                "-m",
                "meridian",
                "chaos",
                "region-loss",
                "--stack",
                STACK,
                "--state-dir",
                str(state_dir),
                "--out",
                str(out),
                "--users",
                str(args.users),
            ]
        )
        if not (out / "report.json").exists():
            raise SystemExit(f"chaos region-loss wrote no report ({c.returncode}): {c.stdout[-2000:]}{c.stderr[-2000:]}")
        doc = json.loads((out / "report.json").read_text())
        m = {**doc["chaos"], "exit": c.returncode, "failures": doc["verdict"]["failures"]}
        bound = m["detection_bound_s"] + 1.0
        print(
            f"region loss {i + 1}: detected {m['detect_s']} s, recovered {m['recovery_s']} s after the kill "
            f"(bound {bound:g} s: {'within' if m['recovery_s'] is not None and m['recovery_s'] <= bound else 'OVER'}), "
            f"{m['errors_in_window']} errors in the {m['mttr_s']:.1f} s window; exit {c.returncode}"
            + "".join(f"\n  failed: {f}" for f in m["failures"]),
            flush=True,
        )
        runs.append(m)
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--chaos-runs", type=int, default=3)
    args = ap.parse_args()
    load_start = loadavg()
    print(f"load average (1/5/15 min) at the start: {load_start} on {os.cpu_count()} cores", flush=True)
    work = Path(tempfile.mkdtemp(prefix="meridian-slo-bench-"))
    os.chmod(work, 0o755)
    state_dir = work / "sandbox"
    state_dir.mkdir()
    os.chmod(state_dir, 0o755)
    up = sh([PY, "-m", "meridian", "sandbox", "up", "--stack", STACK, "--state-dir", str(state_dir), "--time-scale", "10"])
    if up.returncode != 0:
        raise SystemExit(f"sandbox up failed: {up.stdout}{up.stderr}")
    try:
        manifest = mf.read(state_dir / STACK)
        endpoint = manifest.endpoint
        tenants = work / "tenants.json"
        tenants.write_text(json.dumps([{"id": t.id, "plan": t.plan, "api_key": t.api_key} for t in manifest.tenants]))
        os.chmod(tenants, 0o600)

        ceiling = ceiling_run(work, endpoint, args.users)
        print(
            f"ceiling: plain Locust on /livez through the front door, {args.users} users, no think time, 10 s: "
            f"{ceiling['rps']:.0f} req/s, p95 {ceiling['p95_ms']:.0f} ms",
            flush=True,
        )

        plain, harness = overhead_rounds(work, state_dir, endpoint, tenants, args)
        p_rps, h_rps = statistics.median(r["rps"] for r in plain), statistics.median(r["rps"] for r in harness)
        p_p95, h_p95 = statistics.median(r["p95_ms"] for r in plain), statistics.median(r["p95_ms"] for r in harness)
        rps_ratio, p95_ratio = ratio(h_rps, p_rps), ratio(h_p95, p_p95)
        within = abs(rps_ratio - 1) <= 0.1 and abs(p95_ratio - 1) <= 0.1
        print(
            f"harness overhead ({args.users} tenant users, {args.seconds} s per run, median of {args.rounds} alternating rounds): "
            f"plain {p_rps:.1f} req/s p95 {p_p95:.0f} ms, meridian slo {h_rps:.1f} req/s p95 {h_p95:.0f} ms; "
            f"meridian slo / plain: throughput {rps_ratio:.3f}, p95 {p95_ratio:.3f} ({'within' if within else 'NOT within'} 10 %); "
            f"the tenant class at {h_rps / ceiling['rps']:.1%} of the /livez ceiling",
            flush=True,
        )

        # what the harness adds per request inside Locust: the recorder's request listener (in a
        # process of its own: importing Locust monkey-patches with gevent)
        micro = sh([PY, "-c", RECORDER_MICRO])
        per_request_us = float(micro.stdout.strip() or "nan")
        print(f"recorder cost per request: {per_request_us:.2f} us (a request here takes milliseconds)", flush=True)

        chaos = region_loss_runs(work, state_dir, args)
        recoveries = [m["recovery_s"] for m in chaos if m["recovery_s"] is not None]
        bound = chaos[0]["detection_bound_s"] + 1.0
        if recoveries:
            print(
                f"region loss (time scale 10), {len(chaos)} runs: kill -> first good response median "
                f"{statistics.median(recoveries):.2f} s, max {max(recoveries):.2f} s; bound (detection "
                f"{chaos[0]['detection_bound_s']:g} s + 1 s) {bound:g} s: "
                f"{'within' if len(recoveries) == len(chaos) and max(recoveries) <= bound else 'OVER'}"
            )
        load_end = loadavg()
        print(f"load average (1/5/15 min) at the end: {load_end}")
        summary = {
            "load_average_start": load_start,
            "load_average_end": load_end,
            "args": vars(args),
            "ceiling": ceiling,
            "plain": plain,
            "harness": harness,
            "throughput_ratio": rps_ratio,
            "p95_ratio": p95_ratio,
            "recorder_us": per_request_us,
            "region_loss": chaos,
        }
        out = ROOT / "benchmarks" / "results"
        (out / "slo_bench.json").write_text(json.dumps(summary, indent=2) + "\n")
        plot = ROOT / ".meridian" / "bench"
        plot.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "chaos-0" / "latency.png", plot / "slo_bench_region_loss.png")
        print(f"details: {out / 'slo_bench.json'}, plot of the first region loss: {plot / 'slo_bench_region_loss.png'}")
    finally:
        sh([PY, "-m", "meridian", "sandbox", "down", "--stack", STACK, "--state-dir", str(state_dir), "--wipe"])
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
