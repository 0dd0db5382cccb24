"""Judges suite, SLO gate: seed a failure the gate used to pass and assert the verdict fails.

On recorded (synthetic) timings judged exactly as `meridian slo` and the Locust plugin judge them
(`objectives.judge` with the us stack's objectives and tenants): a run too short to prove its
objectives, a throttled tenant, a run mostly refused with 429. Two bounded Locust runs against a
local stand-in server (no sandbox): a request hanging when the run stops, and plain `locust` with
no sandbox (exit 2, as docs/slo.md says).
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meridian.errors import BadInput
from meridian.slo import objectives as objlib
from meridian.slo import report
from meridian.slo.evaluate import ERROR, OK, THROTTLED, Evidence, Objectives, Sample, Window, evaluate, samples_needed
from tests.conftest import ROOT

LIST, GET, WRITE = (
    "GET /v1/tenants/[tenant]/events",
    "GET /v1/tenants/[tenant]/events/[id]",
    "POST /v1/tenants/[tenant]/events",
)
T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def us():
    return objlib.load(ROOT, "us")


def ok(t: float, name: str, tenant: str, ms: float = 40.0) -> Sample:
    return Sample(t, name, ms, 201 if name == WRITE else 200, OK, tenant)


def healthy_run(tenants, seconds: int, per_second: int = 2) -> list[Sample]:
    """Every tenant, `per_second` requests of each endpoint every second, all fast and good."""
    return [
        ok(T0 + s + k / (per_second * 4), name, tenant, 20.0 + (s * 7 + k) % 60)
        for s in range(seconds)
        for k in range(per_second)
        for tenant in tenants
        for name in (LIST, GET, WRITE)
    ]


def by_scope(verdict) -> dict[tuple[str, str], object]:
    return {(c.scope, c.objective): c for c in verdict.checks}


def test_samples_needed_follow_the_rule_of_three():
    assert [samples_needed(q, 100) for q in ("p50_ms", "p95_ms", "p99_ms")] == [6, 60, 300]
    assert samples_needed("error_rate", 0.01) == 300
    assert samples_needed("error_rate", 0.005) == 600
    assert samples_needed("availability", 0.999) == 3000
    assert samples_needed("throttled_share", 0.01) == 300
    assert math.isinf(samples_needed("error_rate", 0.0)) and math.isinf(samples_needed("availability", 1.0))


def test_a_2_s_run_is_not_enough_evidence(us):
    """`slo -t 4 -u 2` once "proved" p99 and 99.9 % availability with 25 requests from 2 of 4 tenants."""
    samples = [ok(T0 + i * 0.08, (LIST, GET, WRITE)[i % 3], ("acme", "globex")[i % 2]) for i in range(25)]
    assert evaluate(samples, us.objectives, us.endpoints).passed  # what the gate judged before: all fast, no error
    v = objlib.judge(us, samples)
    assert not v.passed and v.not_enough_evidence
    checks = by_scope(v)
    p99 = checks[("all", "p99_ms")]
    assert p99.insufficient and (p99.had, p99.needed) == (25, 300)
    assert "p99_ms: not enough evidence (25 successful requests, needs 300)" in p99.message
    # watched (slo.yaml `evidence.watch`): never "met" from 2 s; reported not proven, a miss would fail
    availability = checks[("all", "availability")]
    assert availability.ok and not availability.proven and availability.needed == 3000
    assert "availability: not proven by this run" in availability.message and availability in v.not_proven
    assert checks[("all", "duration_s")].insufficient
    assert checks[(LIST, "p95_ms")].insufficient  # a route's p95 from 9 samples
    for missing in ("tenant initech", "tenant umbrella"):  # never requested: not measurable, not a pass
        assert not checks[(missing, "error_rate")].ok and checks[(missing, "error_rate")].measured is None


def test_a_watched_objective_fails_on_a_miss_and_is_proven_by_a_long_enough_run(us):
    run = healthy_run(sorted(us.tenant_quotas), 60, per_second=20)
    v = objlib.judge(us, run)
    assert v.passed and [c.objective for c in v.not_proven] == ["availability"]
    down = [replace(s, outcome=ERROR, status=503) if T0 + 10 <= s.start < T0 + 12 else s for s in run]  # 2 bad seconds of 60
    missed = by_scope(objlib.judge(us, down))[("all", "availability")]
    assert not missed.ok and not missed.insufficient and "below the objective" in missed.message
    long = objlib.judge(us, healthy_run(sorted(us.tenant_quotas), 3000, per_second=1))
    assert by_scope(long)[("all", "availability")].proven and not long.not_proven


def test_a_run_long_enough_passes_and_a_breach_is_a_breach_at_any_size(us):
    run = healthy_run(sorted(us.tenant_quotas), 3000, per_second=1)
    v = objlib.judge(us, run)
    assert v.passed, [c.message for c in v.failures]
    # a measured miss is a breach however few the samples: only a pass needs proof
    slow = [replace(s, ms=900.0) for s in run[:30]]
    breach = objlib.judge(us, slow)
    assert not breach.not_enough_evidence
    assert not by_scope(breach)[(WRITE, "p95_ms")].insufficient


def test_a_throttled_tenant_fails_the_gate(us):
    """globex's read quota cut from 200 to 2 in the running service: 34 % of its requests refused
    with 429 at a rate far below the quota its plan sells. That once passed as "SLO met"."""
    run = healthy_run(sorted(us.tenant_quotas), 3000, per_second=1)
    refused = {id(s) for i, s in enumerate(x for x in run if x.tenant == "globex") if i % 3 == 0}
    throttled = [replace(s, status=429, outcome=THROTTLED) if id(s) in refused else s for s in run]
    assert evaluate(throttled, us.objectives, us.endpoints).passed  # before: 429s were not judged at all
    v = objlib.judge(us, throttled)
    assert not v.passed and not v.not_enough_evidence
    globex = v.tenants["globex"]
    assert globex.throttled_share == pytest.approx(1 / 3, abs=0.01)
    assert globex.error_rate == pytest.approx(1 / 3, abs=0.01)  # under quota: each 429 is an error
    checks = by_scope(v)
    assert not checks[("tenant globex", "throttled_share")].ok
    assert not checks[("tenant globex", "error_rate")].ok
    assert checks[("tenant acme", "throttled_share")].ok and checks[("tenant acme", "error_rate")].ok
    assert any("below its plan quota" in n for n in v.notes)


def test_a_cell_whose_tenants_the_run_never_reached_fails_the_zone_gate(us):
    """The zone us serves its cell us-cell-001's tenants through the same front door. A run that
    never reached them (the service lost the cell's tenant file, or the load was handed only the
    platform's tenants) used to pass with fewer tenants: the gate judged the tenants of one stack
    file. Now the zone's tenants come from every stack's config, not from what a target serves, and
    each stack's requests are counted and judged by name."""
    cell = {t for t, s in us.tenant_stacks.items() if s == "us-cell-001"}
    assert cell == {"stark", "vandelay", "wonka"} and set(us.tenant_quotas) >= cell
    platform_only = healthy_run(sorted(set(us.tenant_quotas) - cell), 3000, per_second=1)
    v = objlib.judge(us, platform_only)
    assert not v.passed  # a failure for want of evidence (exit 1 all the same): no request is no proof
    assert v.stacks["us-cell-001"].requests == 0 and v.stacks["us"].requests == len(platform_only)
    failed = {c.scope for c in v.failures}
    assert failed == {"stack us-cell-001"} | {f"tenant {t}" for t in cell}, failed
    assert by_scope(v)[("stack us-cell-001", "error_rate")].note == "no requests"
    # the cell's tenants reached but refused (401: the service does not serve them): fails by name too
    whole = healthy_run(sorted(us.tenant_quotas), 3000, per_second=1)
    refused = [replace(s, status=401, outcome=ERROR) if s.tenant in cell else s for s in whole]
    v = objlib.judge(us, refused)
    assert not v.passed and not by_scope(v)[("stack us-cell-001", "error_rate")].ok
    assert by_scope(v)[("stack us", "error_rate")].ok
    passed = objlib.judge(us, whole)
    assert passed.passed, [c.message for c in passed.failures]
    assert passed.stacks["us-cell-001"].requests == 3000 * 3 * len(cell)  # the evidence per stack
    assert "## Per stack of the zone" in report.markdown("SLO", {}, us, passed)


def test_fewer_users_than_the_zone_has_tenants_is_refused_before_any_load(us):
    with pytest.raises(BadInput, match=r"--users 6 is fewer than the zone's 7 tenants \(us 4, us-cell-001 3\)"):
        objlib.require_users_for_every_tenant(us, 6)
    objlib.require_users_for_every_tenant(us, 7)


def test_a_429_above_the_plan_quota_is_throttling_not_an_error(us):
    """A tenant that really exceeds its quota (initech: 50 reads/s) is refused by design: counted
    as throttled, not as an error; still judged by its throttled share."""
    burst = [Sample(T0 + i / 100, LIST, 5.0, 200 if i < 50 else 429, OK if i < 50 else THROTTLED, "initech") for i in range(80)]
    spec = replace(us, evidence=None, tenant_quotas={"initech": us.tenant_quotas["initech"]})
    v = objlib.judge(spec, burst)
    assert v.tenants["initech"].errors == 0 and v.tenants["initech"].throttled == 30
    assert not by_scope(v)[("tenant initech", "throttled_share")].ok


def test_ninety_percent_throttled_fails(us):
    run = healthy_run(sorted(us.tenant_quotas), 3000, per_second=1)
    throttled = [replace(s, status=429, outcome=THROTTLED) if i % 10 else s for i, s in enumerate(run)]
    v = objlib.judge(us, throttled)
    assert not v.passed
    assert not by_scope(v)[("all", "throttled_share")].ok
    assert v.overall.throttled_share == pytest.approx(0.9, abs=0.001)


def test_out_of_window_rate_divides_by_the_time_outside_the_window():
    """100 requests in 10 s, a 5 s fault window in the middle: 50 outside in 5 s are 10/s, not 5/s."""
    samples = [Sample(T0 + i / 10, LIST, 10.0, 200, OK, "acme") for i in range(101)]
    window = Window(T0 + 2.5, T0 + 7.5, "db-latency")
    v = evaluate(samples, Objectives(p95_ms=500), windows=[window])
    assert v.overall.seconds == pytest.approx(5.0, abs=0.2)
    assert v.overall.rps == pytest.approx(10.0, rel=0.05)


def test_duration_is_judged_outside_fault_windows():
    samples = [Sample(T0 + i / 10, LIST, 10.0, 200, OK, "acme") for i in range(101)]
    v = evaluate(samples, Objectives(), windows=[Window(T0 + 1, T0 + 9, "x")], evidence=Evidence(min_duration_s=5))
    assert by_scope(v)[("all", "duration_s")].insufficient


def test_the_client_timeout_follows_the_objectives(us):
    assert objlib.hang_after_s(us) == pytest.approx(1.0)  # the stack's p99 of 1,000 ms, the loosest
    assert objlib.client_timeout_s(us) == pytest.approx(3.0)  # 3 x that
    slower = replace(us, endpoints={**us.endpoints, WRITE: Objectives(p99_ms=2500)})
    assert objlib.client_timeout_s(slower) == pytest.approx(7.5)


# --- bounded Locust runs against a local stand-in (no sandbox) ---------------------------------


class _Hang(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        time.sleep(20)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def _locust(tmp_path: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless", "--only-summary"]
        + ["--loglevel", "WARNING", "--stack", "us", "-u", "2", "-r", "2", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_requests_in_flight_at_the_stop_are_recorded_as_timeouts(tmp_path):
    """Every request hangs; the run stops after 2 s (+1 s stop timeout). Before, the killed users'
    requests left no sample: 0 requests. Now each is a failed sample with its time waited."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hang)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "tenants.json").write_text(json.dumps([{"id": "acme", "plan": "enterprise", "api_key": "k"}]))
    # p99 1.5 s: a request unanswered for 1.5 s is a hang; the client timeout (4.5 s) comes after the stop (~3 s)
    (tmp_path / "slo.yaml").write_text("version: 1\nobjectives:\n  p99_ms: 1500\n")
    try:
        ran = _locust(
            tmp_path,
            *("-t", "2s", "--stop-timeout", "1", "--host", f"http://127.0.0.1:{server.server_address[1]}"),
            *("--tenants-file", str(tmp_path / "tenants.json"), "--slo", str(tmp_path / "slo.yaml")),
            *("--raw-out", str(tmp_path / "out")),
        )
    finally:
        server.shutdown()
    assert ran.returncode == 1, ran.stdout + ran.stderr
    with (tmp_path / "out" / "raw.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows, "the hung requests left no sample"
    assert all(r["outcome"] == ERROR and r["status"] == "0" and float(r["ms"]) >= 1500 for r in rows)
    assert "StoppedInFlight" in ran.stdout + ran.stderr


def test_plain_locust_without_a_sandbox_exits_2(tmp_path):
    ran = _locust(tmp_path, "-t", "20s", "--state-dir", str(tmp_path / "no-sandbox"), timeout=60)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "no tenants to load: the us sandbox is not up" in ran.stderr
    assert "Traceback" not in ran.stderr


# --- an update not applied: the gate tests what was previewed ---------------------------------


class _PlannedTarget:
    kind, stack = "sandbox", "us"

    def __init__(self, sha: str | None):
        self.sha = sha

    def plan_sha256(self) -> str | None:
        return self.sha


def test_the_gate_refuses_a_target_running_another_plan(tmp_path, monkeypatch):
    """`up` previewed plan "new"; the sandbox still runs "old" (the update was not applied): the
    gate fails before any load, instead of judging the old deployment and printing "gates passed"."""
    from meridian.slo import gate, run

    monkeypatch.setattr(run, "start", lambda *a, **kw: pytest.fail("load started against the old deployment"))
    for running in ("old", None):
        with pytest.raises(gate.PlanNotTested, match="not the previewed plan new: the update was not applied") as exc:
            gate.run_gate(_PlannedTarget(running), ROOT, None, None, tmp_path, console=None, previewed_sha256="new")
        assert exc.value.exit_code == 1
    assert gate.check_tested_plan(_PlannedTarget("new"), "new") == "new"
    assert gate.check_tested_plan(_PlannedTarget(None), None) is None  # `meridian slo`: reported, not compared


def test_a_running_sandbox_is_restarted_when_its_plan_changed(tmp_path, monkeypatch):
    """Before, `up` on a running sandbox returned "already up" whatever the program rendered now:
    new settings, quotas and versions were never started. Now a running sandbox started from
    another program is stopped and started from the new plan; one started from this program is
    reused, and the preview's hash recorded."""
    from meridian.sandbox import core, fromplan
    from meridian.sandbox import manifest as mf
    from meridian.stackconfig import load_validated

    class Restarting(Exception):
        pass

    def stop_all(doc):
        raise Restarting(doc.plan)

    monkeypatch.setattr(core, "check_parts", lambda: (None, None))
    monkeypatch.setattr(core.pglib, "run_as", lambda: "postgres")
    monkeypatch.setattr(core.procs, "alive", lambda ref: True)
    monkeypatch.setattr(core, "_stop_all", stop_all)
    cfg = load_validated(ROOT, "us")
    program = fromplan.program_hash(ROOT, "us")

    def running(plan):  # a manifest `sandbox up` wrote (captured), up and alive, started from `plan`
        doc = mf.Manifest.from_json(json.loads((ROOT / "tests" / "data" / "sandbox_manifest_us_fault_proxies.json").read_text()))
        doc.state, doc.plan = "up", plan
        mf.write(tmp_path, doc)

    running(mf.PlanRecord("0ld0ld0ld0ld0ld0", "old"))
    with pytest.raises(Restarting):
        core.up(cfg, "us", tmp_path, time_scale=10, project_dir=ROOT, previewed=core.PreviewedPlan(program, "new"))

    running(None)  # started before plans were recorded: nothing says what it runs
    with pytest.raises(Restarting):
        core.up(cfg, "us", tmp_path, time_scale=10, project_dir=ROOT)

    running(mf.PlanRecord(program, None))
    res = core.up(cfg, "us", tmp_path, time_scale=10, project_dir=ROOT, previewed=core.PreviewedPlan(program, "new"))
    assert res.already_up and mf.read(tmp_path).plan == mf.PlanRecord(program, "new")
    # a preview of another program vouches for nothing
    assert core.plan_record(program, core.PreviewedPlan("other", "new")) == mf.PlanRecord(program, None)


def test_each_check_says_in_one_word_what_its_evidence_showed(us):
    """The tables (terminal and report.md) once said FAILED for an objective short of evidence and
    ok for one a run could not prove."""
    v = objlib.judge(us, [ok(T0 + i * 0.08, (LIST, GET, WRITE)[i % 3], ("acme", "globex")[i % 2]) for i in range(25)])
    checks = by_scope(v)
    assert checks[("all", "p99_ms")].outcome == "not enough evidence"
    assert checks[("all", "availability")].outcome == "not proven"
    assert checks[("tenant initech", "error_rate")].outcome == "not enough evidence"  # never requested: nothing measured
    slow = objlib.judge(us, [replace(s, ms=900.0) for s in healthy_run(sorted(us.tenant_quotas), 30)])
    assert by_scope(slow)[(WRITE, "p95_ms")].outcome == "FAILED"
    long = objlib.judge(us, healthy_run(sorted(us.tenant_quotas), 3000, per_second=1))
    assert {c.outcome for c in long.checks} == {"ok"}


@pytest.mark.parametrize(
    "evidence, says",
    [
        ("{watch: [p99_ms, error_rate]}", "evidence.watch.0"),  # 102 requests once "met" p99 this way
        ("{min_duration_s: 5}", "evidence.min_duration_s"),
    ],
)
def test_an_slo_file_can_make_the_gate_stricter_never_looser(tmp_path, evidence, says):
    from meridian.errors import BadInput

    path = tmp_path / "slo.yaml"
    path.write_text(f"version: 1\nevidence: {evidence}\n")
    with pytest.raises(BadInput, match=says.replace(".", r"\.")):
        objlib.read_slo_file(path)
    path.write_text("version: 1\nevidence: {min_duration_s: 120, watch: []}\n")  # stricter: accepted
    assert objlib.read_slo_file(path).evidence.watch == []
