"""Sandbox benchmark: up time, service throughput direct vs through HAProxy, replication lag under load.

1. `sandbox up` wall time, cold (initdb) and warm (kept data): target <= 15 s.
2. Reads and writes per second against the primary region's service directly and through HAProxy
   (the front door), same load generator, same concurrency: HAProxy overhead target <= 15 %.
3. Replication lag (pg_stat_replication.replay_lag on the primary, sampled every 20 ms) during the
   write load: p50 / p95 / max.

Load: a keep-alive HTTP/1.1 client on raw asyncio streams (one process, BENCH_CONCURRENCY connections,
BENCH_SECONDS per run after a 1 s warm-up), 127.0.0.1 only, bounded in time. The 2 cores are shared by
the generator, the service, PostgreSQL and HAProxy: numbers are for comparing, not absolutes.
The sandbox runs in a temporary state dir with one synthetic high-quota tenant (quotas would
otherwise be what is measured), and is brought down at the end whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from meridian.sandbox import core  # noqa: E402
from meridian.sandbox import manifest as mf  # noqa: E402
from meridian.stackconfig import load_validated  # noqa: E402
from stackconfig import Overrides  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))  # rounds, alternating which path goes first
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
MAX_REQUESTS = 2_000_000  # a hard bound on any one run
UP_TARGET_S = 15.0
OVERHEAD_TARGET = 0.15
BENCH_TENANT = "bench"


def bench_config():
    big = {"gql_qps": 10_000_000, "ingest_eps": 10_000_000, "storage_gb": 1000}
    tenants = [{"id": BENCH_TENANT, "plan": "enterprise", "monthly_budget_usd": 100, "data_tier": "pool", "quota": big}]
    return load_validated(ROOT, "us", Overrides({"tenants": tenants}, "sandbox_bench"))


async def _load(url: str, method: str, body: bytes, key: str, seconds: float) -> tuple[float, list[float], int]:
    """Requests per second, latencies (s) and non-2xx count over `seconds` after a 1 s warm-up."""
    host, _, rest = url.removeprefix("http://").partition("/")
    h, _, p = host.partition(":")
    path = "/" + rest
    req = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0
    count = 0
    clock = time.perf_counter  # uvloop's loop.time() has millisecond resolution
    start_measure = clock() + 1.0
    stop = start_measure + seconds

    async def worker():
        nonlocal errors, count
        reader, writer = await asyncio.open_connection(h, int(p))
        try:
            while clock() < stop and count < MAX_REQUESTS:
                t0 = clock()
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                t1 = clock()
                if t0 >= start_measure:
                    count += 1
                    latencies.append(t1 - t0)
                    if not 200 <= status < 300:
                        errors += 1
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), seconds + 30)
    return count / seconds, latencies, errors


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


async def _sample_lag(port: int, stop: asyncio.Event) -> list[float]:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    lags: list[float] = []
    try:
        while not stop.is_set():
            v = await conn.fetchval(
                "SELECT EXTRACT(EPOCH FROM replay_lag)::float8 FROM pg_stat_replication WHERE application_name = 'dr'"
            )
            if v is not None:
                lags.append(v)
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return lags


async def _writes_with_lag(url: str, key: str, pg_port: int):
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_lag(pg_port, stop))
    try:
        res = await _load(url, "POST", json.dumps({"type": "bench", "payload": {"n": 1}}).encode(), key, SECONDS)
    finally:
        stop.set()
    return res, await sampler


def main() -> int:
    console = Console()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    cfg = bench_config()
    state = Path(tempfile.mkdtemp(prefix="meridian-sandbox-bench-"))
    os.chmod(state, 0o755)
    root = state / "us"
    try:
        cold = core.up(cfg, "us", root, time_scale=10.0).seconds
        core.down(root)
        warm = core.up(cfg, "us", root, time_scale=10.0).seconds
        doc = mf.read(root)
        key = doc.tenants[0].api_key
        direct, front = doc.regions["primary"].service_url, doc.endpoint
        # seed a few rows to read
        asyncio.run(_load(f"{direct}/v1/tenants/{BENCH_TENANT}/events", "POST", b'{"type":"seed"}', key, 0.5))
        read_path = f"/v1/tenants/{BENCH_TENANT}/events?limit=10"
        write_path = f"/v1/tenants/{BENCH_TENANT}/events"
        results: dict = {}
        lag: dict = {}
        paths = (("direct", direct), ("haproxy", front))
        for rnd in range(REPEAT):
            for label, base in paths if rnd % 2 == 0 else paths[::-1]:
                results.setdefault(("read", label), []).append(asyncio.run(_load(base + read_path, "GET", b"", key, SECONDS)))
            for label, base in paths if rnd % 2 == 0 else paths[::-1]:
                res, lags = asyncio.run(_writes_with_lag(base + write_path, key, doc.regions["primary"].db_port))
                results.setdefault(("write", label), []).append(res)
                lag.setdefault(label, []).extend(lags)
        # median rps over the rounds; latencies and errors pooled
        results = {
            k: (statistics.median(r[0] for r in runs), [x for r in runs for x in r[1]], sum(r[2] for r in runs))
            for k, runs in results.items()
        }
    finally:
        down = core.down(root, wipe=True)
        import shutil

        shutil.rmtree(state, ignore_errors=True)
        if down.ports_busy:
            console.print(f"[red]ports left busy: {down.ports_busy}[/]")

    t1 = Table(title="1. meridian sandbox up (us pair: 2 PostgreSQL, 2 services, HAProxy)")
    for col in ("run", "seconds", "target"):
        t1.add_column(col)
    for run, s in (("cold (initdb)", cold), ("warm (kept data)", warm)):
        t1.add_row(run, f"{s:.2f}", f"<= {UP_TARGET_S:g} s " + ("ok" if s <= UP_TARGET_S else "MISSED"))
    console.print(t1)

    t2 = Table(
        title=f"2. service throughput, direct vs through HAProxy ({CONCURRENCY} keep-alive connections, median of {REPEAT} x {SECONDS:g} s)"
    )
    for col in ("op", "path", "rps", "p50 ms", "p99 ms", "errors", "HAProxy overhead", "target"):
        t2.add_column(col)
    summary = {"up_cold_s": round(cold, 3), "up_warm_s": round(warm, 3)}
    for op in ("read", "write"):
        d_rps = results[(op, "direct")][0]
        for label in ("direct", "haproxy"):
            rps, lat, errs = results[(op, label)]
            over = ""
            verdict = ""
            if label == "haproxy":
                o = (d_rps - rps) / d_rps if d_rps else float("nan")
                over = f"{o * 100:+.1f} %"
                verdict = f"<= {OVERHEAD_TARGET * 100:g} % " + ("ok" if o <= OVERHEAD_TARGET else "MISSED")
                summary[f"{op}_haproxy_overhead_pct"] = round(o * 100, 2)
            summary[f"{op}_{label}_rps"] = round(rps, 1)
            t2.add_row(
                op, label, f"{rps:,.0f}", f"{pct(lat, 0.5) * 1000:.2f}", f"{pct(lat, 0.99) * 1000:.2f}", str(errs), over, verdict
            )
    console.print(t2)

    t3 = Table(title="3. replication lag (replay_lag) during the write load")
    for col in ("write path", "samples", "p50 ms", "p95 ms", "max ms"):
        t3.add_column(col)
    for label, xs in lag.items():
        t3.add_row(
            label,
            str(len(xs)),
            f"{pct(xs, 0.5) * 1000:.2f}",
            f"{pct(xs, 0.95) * 1000:.2f}",
            f"{max(xs, default=float('nan')) * 1000:.2f}",
        )
        summary[f"replication_lag_p95_ms_{label}"] = round(pct(xs, 0.95) * 1000, 3)
    console.print(t3)
    console.print_json(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
