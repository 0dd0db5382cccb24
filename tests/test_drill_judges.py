"""The drill judge, tried the way an SRE tries it before a game day (issue 22): the dr replica's
stream is stalled (SIGSTOP on the primary's walsender) and the drill must say so, either by refusing
to start (preflight) or by failing with the loss and RPO an independent writer of our own measures:
client-generated ids and content, written through the front door, checked afterwards by content.

One sandbox for the module (they run in order: the preflight refusal leaves it untouched)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import httpx
import psutil
import pytest

from meridian.sandbox import postgres as pglib
from tests.helpers import ROOT, STACK, meridian_cmd, run_meridian, running_sandbox, until

pytestmark = pytest.mark.sandbox

WRITER_TYPE = "judge.writer"
RPO_TOLERANCE_S = 0.5
"""Both writers write every 50 ms at most; the drill's own RPO and ours may differ by where each
writer's last replicated write fell, and by scheduling on a loaded machine: half a second."""


@pytest.fixture(scope="module")
def sandbox():
    with running_sandbox("meridian-judge-") as state_dir:
        yield state_dir, json.loads((state_dir / STACK / "manifest.json").read_text())


def walsender_pid(manifest: dict) -> int:
    async def query() -> int:
        import asyncpg

        conn = await asyncpg.connect(pglib.dsn(manifest["regions"]["primary"]["db_port"], "postgres", "postgres"))
        try:
            pids = [r["pid"] for r in await conn.fetch("SELECT pid FROM pg_stat_replication")]
        finally:
            await conn.close()
        assert len(pids) == 1, f"expected one walsender, found {pids}"
        return pids[0]

    return asyncio.run(query())


@contextlib.contextmanager
def stalled(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield time.time()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


class Writer:
    """Our own writer: one tenant, client ids and content, through the front door; every
    acknowledged write kept with its time."""

    def __init__(self, endpoint: str, tenant: dict, rate_per_s: float = 20.0):
        self.url = f"{endpoint}/v1/tenants/{tenant['id']}/events"
        self.headers = {"Authorization": f"Bearer {tenant['api_key']}"}
        self.interval = 1.0 / rate_per_s
        self.acked: dict[str, tuple[float, dict]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                key, payload = str(uuid.uuid4()), {"n": n, "body": uuid.uuid4().hex}
                try:
                    r = client.post(self.url, json={"type": WRITER_TYPE, "payload": {"w": key, **payload}}, headers=self.headers)
                    if r.status_code == 201:
                        self.acked[key] = (time.time(), payload)
                except httpx.HTTPError:
                    pass
                self._stop.wait(self.interval)

    def lost(self) -> list[float]:
        """Times of the acknowledged writes missing now, or stored with other content."""
        stored, after = {}, 0
        with httpx.Client(timeout=5.0) as client:
            while True:
                r = client.get(self.url, params={"after": after, "type": WRITER_TYPE, "limit": 1000}, headers=self.headers)
                r.raise_for_status()
                events = r.json()["events"]
                if not events:
                    break
                stored.update({e["payload"].get("w"): e["payload"] for e in events})
                after = events[-1]["id"]
        return sorted(t for key, (t, payload) in self.acked.items() if stored.get(key) != {"w": key, **payload})


def drill(state_dir, records, *extra: str, name: str = "region-failover") -> subprocess.Popen:
    argv = ["drill", name, "--stack", STACK, "--target", "sandbox", "--execute"]
    argv += ["--state-dir", str(state_dir), "--records", str(records), *extra]
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.Popen(meridian_cmd(*argv), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_state(records) -> dict:
    for path in (records / STACK).glob("*/state.json"):
        with contextlib.suppress(ValueError):
            return json.loads(path.read_text())
    return {}


def test_preflight_fails_closed_on_a_stalled_stream(sandbox, tmp_path):
    """replay_lag keeps its last value while the stream is stalled: preflight must look at what is
    behind while the primary writes, and refuse to inject the fault."""
    state_dir, manifest = sandbox
    with stalled(walsender_pid(manifest)):
        cli = run_meridian(
            "drill", "region-failover", "--stack", STACK, "--target", "sandbox", "--execute",
            "--state-dir", str(state_dir), "--records", str(tmp_path / "records"), timeout=120,
        )  # fmt: skip
    assert cli.code == 1, cli.out + cli.err
    assert "preflight: FAILED" in cli.out and "stalled" in cli.out and "bytes behind" in cli.out, cli.out
    (timeline,) = (tmp_path / "records" / STACK).glob("*/timeline.json")
    doc = json.loads(timeline.read_text())
    assert doc["verdict"] == "failed" and "fault" not in [e["event"] for e in doc["events"]], "no fault on a stalled stream"
    assert until(lambda: run_meridian("sandbox", "status", "--stack", STACK, "--state-dir", str(state_dir)).code == 0, 30)


def test_stalled_stream_before_the_fault_fails_the_drill_with_the_loss_an_independent_writer_sees(sandbox, tmp_path):
    state_dir, manifest = sandbox
    records = tmp_path / "records"
    tenant = max(manifest["tenants"], key=lambda t: t["quota"]["ingest_eps"])
    with Writer(manifest["endpoint"], tenant) as ours:
        proc = drill(state_dir, records, "--lead", "9")
        try:
            preflight_done = until(
                lambda: any(s["name"] == "preflight" and s["status"] == "done" for s in run_state(records).get("steps", [])),
                60,
            )
            assert preflight_done, "the drill's preflight did not pass on a healthy stack"
            time.sleep(0.5)
            with stalled(walsender_pid(manifest)) as stall_t:
                assert until(lambda: "fault" in [e["event"] for e in run_state(records).get("events", [])], 30)
                # resumed only once the primary is going down: a walsender resumed before the crash
                # ships what was behind, and the stall would lose nothing
                assert until(lambda: primary_down(manifest), 30, step=0.02)
            out, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    lost_ours = ours.lost()

    (timeline,) = (records / STACK).glob("*/timeline.json")
    doc = json.loads(timeline.read_text())
    fault_t = next(e["t"] for e in doc["events"] if e["event"] == "fault")
    assert fault_t - stall_t > 3, "the stream must be stalled several seconds before the fault"
    failover, failback = doc["measured"]["failover"], doc["measured"]["failback"]

    # our writer saw writes lost; so must the drill, by content, and it must fail
    assert lost_ours, "the stall lost no write of ours: the test did not stall the stream"
    assert proc.returncode == 1 and doc["verdict"] != "passed", out
    assert any("replication was stalled before the fault" in m for m in doc["objectives_missed"]), doc["objectives_missed"]
    assert failover["data_loss"]["lost_ids"], out
    assert failback["data_loss"]["lost_ids"] == [], "failback judges its own window: the failover's losses are not its"

    # RPO: the span of acknowledged writes lost, measured the same way for both writers
    rpo_ours = max(fault_t, lost_ours[-1]) - lost_ours[0]
    assert rpo_ours > 3
    assert abs(failover["data_loss"]["rpo_s"] - rpo_ours) <= RPO_TOLERANCE_S, (failover["data_loss"], rpo_ours)

    # the loss count: every write the drill's probe had acknowledged, checked here by client id in
    # the database the stack ends on, against the drill's own count (each phase judged its own window)
    acked = [o for o in doc["probe"]["outcomes"] if o[1] == "write" and o[2] and o[6]]
    present = present_client_ids(manifest, doc["probe"]["event_type"])
    gone = sorted(o[6] for o in acked if o[6] not in present)
    assert gone == sorted(failover["data_loss"]["lost_ids"] + failback["data_loss"]["lost_ids"]), (len(gone), failover)


def step_status(records, name: str) -> str | None:
    return next((s["status"] for s in run_state(records).get("steps", []) if s["name"] == name), None)


def test_a_planned_switchover_that_had_to_be_forced_is_unclean(sandbox, tmp_path):
    """The clean stop of a planned switchover waits for the walsender to ship every write; with the
    stream stalled it cannot, and is forced: the verdict is "unclean", and the force took the whole
    PostgreSQL process group (the stopped walsender too)."""
    state_dir, manifest = sandbox
    records = tmp_path / "records"
    proc = drill(state_dir, records, "--mode", "planned", "--lead", "4", name="database-failover")
    try:
        assert until(lambda: step_status(records, "preflight") == "done", 60), "preflight did not pass on a healthy stack"
        walsender = walsender_pid(manifest)
        with stalled(walsender):
            assert until(lambda: step_status(records, "fence") in ("done", "failed"), 60)
            orphaned = psutil.pid_exists(walsender) and psutil.Process(walsender).status() != psutil.STATUS_ZOMBIE
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not orphaned, "the forced stop left the primary's walsender running"
    (timeline,) = (records / STACK).glob("*/timeline.json")
    doc = json.loads(timeline.read_text())
    assert proc.returncode == 1 and doc["verdict"] == "unclean", out
    assert "was forced" in doc["objectives_missed"][0] and "clean shutdown" not in doc["steps"][2]["found"].split(";")[0][-20:]
    assert until(lambda: run_meridian("sandbox", "status", "--stack", STACK, "--state-dir", str(state_dir)).code == 0, 30)


def primary_down(manifest: dict) -> bool:
    try:
        asyncio.run(pglib.role_of(manifest["regions"]["primary"]["db_port"], timeout=0.5))
    except Exception:
        return True
    return False


def present_client_ids(manifest: dict, event_type: str) -> set[str]:
    """Client ids of the drill's probe writes in the primary database, read there directly."""

    async def query() -> set[str]:
        import asyncpg

        conn = await asyncpg.connect(pglib.dsn(manifest["regions"]["primary"]["db_port"], "postgres", pglib.DB_NAME))
        try:
            rows = await conn.fetch("SELECT payload->>'probe' AS probe FROM events WHERE type = $1", event_type)
        finally:
            await conn.close()
        return {r["probe"] for r in rows}

    return asyncio.run(query())
