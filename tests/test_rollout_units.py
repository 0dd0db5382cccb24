"""Progressive delivery, pure parts: steps, weights, the state machine's decisions, the judge,
provenance signing, the service's rehearsal fault. No sandbox, no load."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.errors import BadInput
from meridian.rollout import judge as judgelib
from meridian.rollout.plan import (
    RolloutPlan,
    check_steps,
    parse_region_order,
    parse_steps,
    plan_steps,
    share,
    split,
    weights_at,
)
from meridian.rollout.state import RolloutState, load, reconcile, save
from meridian.slo.evaluate import ERROR, OK, THROTTLED, Objectives, Sample
from meridian.slo.objectives import ChaosBudget, SloSpec

# --- steps and weights -------------------------------------------------------------------------


def test_steps_parse_and_refuse_bad_input():
    assert parse_steps("1,5,25,100") == (1, 5, 25, 100)
    assert parse_steps(" 50 , 100") == (50, 100)
    for bad in ("", "1,5,25", "5,1,100", "0,100", "1,1,100", "1,150", "a,100", "1.5,100"):
        with pytest.raises(BadInput):
            parse_steps(bad)
    with pytest.raises(BadInput, match="last step must be 100"):
        check_steps((1, 5))


def test_region_order():
    assert parse_region_order("dr,primary") == ("dr", "primary")
    assert parse_region_order("primary") == ("primary",)
    for bad in ("dr,dr", "eu,primary", ""):
        with pytest.raises(BadInput):
            parse_region_order(bad)


def test_plan_goes_region_by_region_and_done_regions_stay_at_100():
    plan = plan_steps(("dr", "primary"), (1, 5, 25, 100))
    assert [(s.role, s.percent) for s in plan][:5] == [("dr", 1), ("dr", 5), ("dr", 25), ("dr", 100), ("primary", 1)]
    assert [s.index for s in plan] == list(range(8))
    assert weights_at(plan, 0) == {"dr": 1, "primary": 0}
    assert weights_at(plan, 4) == {"dr": 100, "primary": 1}
    assert weights_at(plan, 7) == {"dr": 100, "primary": 100}


@given(st.integers(0, 100))
def test_split_weights_read_back_as_the_percentage(percent):
    stable, canary = split(percent)
    assert stable + canary == 100 and stable >= 0 and canary >= 0
    assert share(stable, canary) == percent


@pytest.mark.parametrize("bad", [-1, 101, 1.5, True, "5"])
def test_split_refuses_what_is_not_a_percentage(bad):
    with pytest.raises(BadInput):
        split(bad)


def test_share_of_an_empty_pair_is_zero():
    assert share(0, 0) == 0 and share(1, 0) == 0 and share(0, 3) == 100


def test_plan_hash_is_stable_and_changes_with_the_plan():
    a = RolloutPlan("us", "sandbox", "v2", "sha256:x", (1, 100), ("dr",), 3.0, 20)
    b = RolloutPlan("us", "sandbox", "v2", "sha256:x", (1, 100), ("dr",), 3.0, 20)
    c = RolloutPlan("us", "sandbox", "v3", "sha256:x", (1, 100), ("dr",), 3.0, 20)
    assert a.sha256 == b.sha256 != c.sha256


# --- state and resume --------------------------------------------------------------------------


def _state(**kw) -> RolloutState:
    base = dict(
        stack="us",
        target="sandbox",
        version="v2",
        digest="d",
        plan_sha256="h",
        steps=[1, 5, 100],
        region_order=["dr", "primary"],
    )
    return RolloutState(**{**base, **kw})


def test_state_is_saved_atomically_and_read_back(tmp_path):
    path = tmp_path / "rollout" / "us.json"
    st_ = _state(position=2, applied={"dr": 5, "primary": 0})
    save(path, st_)
    assert load(path) == st_
    assert [p.name for p in path.parent.iterdir()] == ["us.json"]  # no temp file left
    path.write_text("{not json")
    with pytest.raises(BadInput, match="--rollback"):
        load(path)
    path.write_text(json.dumps({"stack": "us"}))
    with pytest.raises(BadInput):
        load(path)
    assert load(tmp_path / "none.json") is None


def test_reconcile_decisions():
    zero = {"primary": 0, "dr": 0}
    assert reconcile(None, zero, "v2", 6).kind == "fresh"
    # a split nobody recorded is never continued
    d = reconcile(None, {"primary": 0, "dr": 5}, "v2", 6)
    assert d.kind == "rollback" and d.then_fresh
    # interrupted at step 2 with the recorded split live: resume there
    running = _state(position=1, applied={"dr": 5, "primary": 0})
    d = reconcile(running, {"primary": 0, "dr": 5}, "v2", 6)
    assert (d.kind, d.position) == ("resume", 1)
    # the live split differs from the record (someone or something changed it): roll back
    assert reconcile(running, {"primary": 0, "dr": 25}, "v2", 6).kind == "rollback"
    # interrupted before its first weight took (record says all stable, live says all stable): resume
    assert reconcile(_state(position=0, applied=zero), zero, "v2", 6).kind == "resume"
    # another version asked for while v2 is half-way: v2 is rolled back first
    d = reconcile(running, {"primary": 0, "dr": 5}, "v3", 6)
    assert d.kind == "rollback" and "v2" in d.reason
    promoted = _state(phase="promoted", position=6, applied={"dr": 100, "primary": 100})
    assert reconcile(promoted, {"dr": 100, "primary": 100}, "v2", 6).kind == "done"
    # a new version after a promoted one that is not stable yet: the move back to stable is said, not silent
    d = reconcile(promoted, {"dr": 100, "primary": 100}, "v3", 6)
    assert d.kind == "fresh" and "v2 was promoted on the canary track (dr 100 %, primary 100 %)" in d.reason
    assert "v2's traffic goes back to the stable image first" in d.reason and "workload.image_tag: v2" in d.reason
    assert reconcile(promoted, {"dr": 0, "primary": 0}, "v2", 6).kind == "fresh"
    rolled = _state(phase="rolled_back", applied=zero)
    assert reconcile(rolled, zero, "v2", 6).kind == "fresh"
    assert reconcile(rolled, {"dr": 1, "primary": 0}, "v2", 6).kind == "rollback"


# --- the judge ---------------------------------------------------------------------------------

SLO = SloSpec(Objectives(p95_ms=500, error_rate=0.01), {}, ChaosBudget())


def _samples(n: int, ms: float, version: str, outcome: str = OK, t0: float = 1000.0) -> list[Sample]:
    status = {OK: 200, ERROR: 500, THROTTLED: 429}[outcome]
    return [Sample(t0 + i * 0.01, "GET /x", ms, status, outcome, "acme", version) for i in range(n)]


def test_split_by_version_keeps_the_unattributed_apart():
    s = _samples(3, 10, "v2") + _samples(5, 10, "stable") + _samples(2, 10, "", ERROR)
    sp = judgelib.split_by_version(s, "v2")
    assert (len(sp.canary), len(sp.stable), len(sp.unattributed)) == (3, 5, 2)


def test_a_slow_canary_is_rolled_back_as_soon_as_it_has_enough_samples():
    sp = judgelib.split_by_version(_samples(5, 640, "v2") + _samples(495, 20, "stable"), "v2")
    j = judgelib.judge(sp, SLO, min_samples=5, elapsed_s=0.5, window_s=10, max_hold_s=40)
    assert j.decision == "rollback" and "p95_ms" in j.reason and "by 140.0 ms" in j.reason
    assert j.stable.passed  # the 99 % that went to stable met the objectives


def test_the_canary_is_judged_on_its_own_requests_not_diluted_by_stable():
    # pooled, 5 slow of 500 would leave p95 at 20 ms: the canary's own p95 is 640 ms
    from meridian.slo.evaluate import evaluate

    samples = _samples(5, 640, "v2") + _samples(495, 20, "stable")
    assert evaluate(samples, SLO.objectives).passed
    assert not judgelib.judge(
        judgelib.split_by_version(samples, "v2"), SLO, min_samples=5, elapsed_s=1, window_s=1, max_hold_s=4
    ).canary.passed


def test_too_few_samples_hold_then_roll_back_never_promote():
    sp = judgelib.split_by_version(_samples(3, 10, "v2"), "v2")
    assert judgelib.judge(sp, SLO, min_samples=5, elapsed_s=9, window_s=3, max_hold_s=12).decision == "hold"
    j = judgelib.judge(sp, SLO, min_samples=5, elapsed_s=12, window_s=3, max_hold_s=12)
    assert j.decision == "rollback" and "not enough evidence" in j.reason
    # throttled requests are the quota at work: they do not count as evidence
    sp = judgelib.split_by_version(_samples(3, 10, "v2") + _samples(10, 1, "v2", THROTTLED), "v2")
    assert judgelib.judge(sp, SLO, min_samples=5, elapsed_s=1, window_s=3, max_hold_s=12).canary_judged == 3


def test_a_good_canary_holds_for_the_window_then_promotes():
    sp = judgelib.split_by_version(_samples(30, 40, "v2"), "v2")
    assert judgelib.judge(sp, SLO, min_samples=5, elapsed_s=1, window_s=3, max_hold_s=12).decision == "hold"
    assert judgelib.judge(sp, SLO, min_samples=5, elapsed_s=3, window_s=3, max_hold_s=12).decision == "promote"


def test_an_erroring_canary_fails_the_error_rate():
    sp = judgelib.split_by_version(_samples(20, 40, "v2") + _samples(2, 40, "v2", ERROR), "v2")
    j = judgelib.judge(sp, SLO, min_samples=5, elapsed_s=1, window_s=3, max_hold_s=12)
    assert j.decision == "rollback" and "error_rate" in j.reason


# --- provenance --------------------------------------------------------------------------------


def _record() -> dict:
    return {"version": "v2", "finished_at": "2026-12-02T14:00:00.000+00:00", "decision": "promoted"}


def test_provenance_goes_into_the_bundle_and_the_manifest_covers_it(tmp_path):
    from meridian.evidence.manifest import verify
    from meridian.rollout.provenance import write_record

    bundle = tmp_path / "bundle"
    path = write_record(bundle, _record(), key_path=None)
    assert path.parent.name == "rollout" and json.loads(path.read_text())["version"] == "v2"
    assert verify(bundle).ok and verify(bundle).checked == 1
    # an existing bundle that verifies takes a second record; one that was tampered with does not
    (bundle / "plan.json").write_text("{}")
    with pytest.raises(BadInput, match="does not verify"):
        write_record(bundle, _record(), key_path=None)


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
def test_the_manifest_is_signed_with_the_operator_key(tmp_path, kind):
    from meridian.evidence.manifest import MANIFEST, verify
    from meridian.evidence.signature import check_signature
    from meridian.rollout.provenance import write_record

    key = tmp_path / "key"
    if kind == "hmac":
        key.write_bytes(b"0123456789abcdef-secret")
    else:
        ser = pytest.importorskip("cryptography.hazmat.primitives.serialization")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key.write_bytes(Ed25519PrivateKey.generate().private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
    bundle = tmp_path / "b"
    write_record(bundle, _record(), key_path=key)
    sig = json.loads((bundle / "MANIFEST.sha256.sig").read_text())
    assert sig["algorithm"] == ("hmac-sha256" if kind == "hmac" else "ed25519")
    assert verify(bundle).ok  # the signature is beside the manifest, not an extra file
    assert check_signature(bundle, key).ok
    (bundle / MANIFEST).write_text((bundle / MANIFEST).read_text() + "\n")
    assert not check_signature(bundle, key).ok


# --- rehearsal faults and the service's version header ------------------------------------------


def test_fault_option_and_versions_file(tmp_path):
    from meridian.commands.rollout import parse_fault, version_fault

    assert parse_fault("latency_ms=600") == {"latency_ms": 600.0, "error_rate": 0.0}
    for bad in ("latency=600", "latency_ms", "error_rate=2", "latency_ms=-1", "latency_ms=x"):
        with pytest.raises(BadInput):
            parse_fault(bad)
    f = tmp_path / "versions.yaml"
    f.write_text("versions:\n  bad: {fault: {latency_ms: 600}}\n  good: {}\n")
    assert version_fault("bad", f) == {"latency_ms": 600.0, "error_rate": 0.0}
    assert version_fault("good", f) is None and version_fault("other", f) is None
    f.write_text("versions:\n  bad: {fault: {latency_ms: 600, typo: 1}}\n")
    with pytest.raises(BadInput, match="typo"):
        version_fault("bad", f)


def test_the_service_answers_its_version_and_applies_its_fault():
    from service.app import create_app
    from service.settings import ServiceSettings, VersionFault
    from tests.helpers import KEYS, MemoryStore, TestClient, service_settings

    settings = ServiceSettings.from_dict(
        {**service_settings().to_dict(), "version": "v2", "fault": {"latency_ms": 1, "error_rate": 1.0}}
    )
    assert settings.fault == VersionFault(1.0, 1.0) and ServiceSettings.from_dict(settings.to_dict()) == settings
    assert "fault" not in service_settings().to_dict() and service_settings().version == "stable"
    with pytest.raises(ValueError):
        VersionFault(error_rate=1.5)
    with TestClient(create_app(settings, MemoryStore())) as client:
        live = client.get("/livez")
        assert live.status_code == 200 and live.headers["x-meridian-version"] == "v2"  # health is never faulted
        r = client.get("/v1/tenants/acme/events", headers={"Authorization": f"Bearer {KEYS['acme']}"})
        assert r.status_code == 500 and r.json()["error"] == "injected_fault" and r.headers["x-meridian-version"] == "v2"
    with TestClient(create_app(service_settings(), MemoryStore())) as client:
        r = client.get("/v1/tenants/acme/events", headers={"Authorization": f"Bearer {KEYS['acme']}"})
        assert r.status_code == 200 and r.headers["x-meridian-version"] == "stable"


# --- the sandbox's HAProxy config with region doors --------------------------------------------


def test_haproxy_accepts_the_config_with_region_doors(tmp_path):
    import re
    import subprocess

    from meridian.sandbox.haproxy import Backend, RegionDoor, ScaledFailover, render
    from tests.helpers import require_haproxy

    exe = require_haproxy()
    primary, dr = Backend("primary-x", "127.0.0.1", 18081, False), Backend("dr-y", "127.0.0.1", 18082, True)
    text = render(
        ScaledFailover(10, 3, 30, 60, 10.0),
        18080,
        [primary, dr],
        str(tmp_path / "h.sock"),
        doors=(RegionDoor("primary", 18083, primary), RegionDoor("dr", 18084, dr)),
    )
    assert re.findall(r"^\s*bind (\S+)", text, re.M) == ["127.0.0.1:18080", "127.0.0.1:18083", "127.0.0.1:18084"]
    # dr's door serves dr alone, as an active server (it is the backup only behind the front door)
    assert re.search(r"backend region-dr\n(?:.*\n)*?    server dr-y 127\.0\.0\.1:18082 check\n", text)
    assert "option allbackups" in text
    (tmp_path / "haproxy.cfg").write_text(text)
    out = subprocess.run([exe, "-c", "-f", str(tmp_path / "haproxy.cfg")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "ALERT" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_the_sandbox_digest_follows_code_and_settings():
    from meridian.sandbox.canary import version_digest

    assert version_digest("v2", None) == version_digest("v2", None)
    assert version_digest("v2", None) != version_digest("v3", None)
    assert version_digest("v2", None) != version_digest("v2", {"latency_ms": 600.0, "error_rate": 0.0})


# --- the drive loop against a target that has only the protocol's two methods ----------------------


class ProtocolOnlyTarget:
    """Stands in for the AWS target: `set_canary_weight` and `canary_weights` and nothing else of the
    canary surface. Each weight change makes the 'load' answer 200 requests split by that weight."""

    kind, stack = "aws", "us"

    def __init__(self, live_csv, canary_ms: float):
        self.live_csv, self.canary_ms = live_csv, canary_ms
        self.weights = {"primary": 0, "dr": 0}
        self.calls: list[tuple] = []

    def set_canary_weight(self, role, percent):
        from meridian.targets import ActionResult

        self.calls.append(("set_canary_weight", role, percent))
        self.weights[role] = percent
        self._answer(percent)
        return ActionResult("set_canary_weight", role, 0.0, 0.0, True)

    def canary_weights(self):
        self.calls.append(("canary_weights",))
        return dict(self.weights)

    def _answer(self, percent: int) -> None:
        import csv
        import time

        now = time.time() + 0.05
        with self.live_csv.open("a", newline="") as f:
            w = csv.writer(f)
            for i in range(200):
                canary = percent and i % (100 // percent) == 0
                ms = self.canary_ms if canary else 20.0
                w.writerow([now + i * 0.001, "GET /x", ms, 200, OK, "acme", "v2" if canary else "stable"])


def _runner(tmp_path, target, steps=(1, 5, 100), order=("primary",)):
    from meridian.rollout.drive import Runner
    from meridian.slo.raw import RAW_FIELDS

    live = target.live_csv
    live.write_text(",".join(RAW_FIELDS) + "\n" + f"{0.0},GET /x,1,200,ok,acme,stable\n")
    plan = RolloutPlan("us", "aws", "v2", "sha256:img", steps, order, 0.3, 2)
    stopped = []
    runner = Runner(target, plan, SLO, tmp_path / "state.json", lambda role: (live, lambda: stopped.append(role)))
    return runner, stopped


def test_the_rollout_drives_a_target_through_the_protocol_only(tmp_path):
    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=30.0)
    runner, stopped = _runner(tmp_path, target)
    outcome = runner.run()
    assert outcome.decision == "promoted" and [s.percent for s in outcome.steps] == [1, 5, 100]
    assert {c[0] for c in target.calls} == {"set_canary_weight", "canary_weights"}
    assert [c[1:] for c in target.calls if c[0] == "set_canary_weight"] == [("primary", 1), ("primary", 5), ("primary", 100)]
    assert stopped == ["primary"] and load(tmp_path / "state.json").phase == "promoted"


def test_a_slow_canary_is_rolled_back_at_the_first_step_through_the_protocol(tmp_path):
    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=640.0)
    runner, stopped = _runner(tmp_path, target)
    outcome = runner.run()
    assert outcome.decision == "rolled_back" and [s.decision for s in outcome.steps] == ["rollback"]
    assert outcome.rollback["step"] == 1 and "p95_ms" in outcome.reason
    assert target.weights == {"primary": 0, "dr": 0} and stopped == ["primary"]
    st_ = load(tmp_path / "state.json")
    assert st_.phase == "rolled_back" and st_.applied == {"primary": 0, "dr": 0}


def test_a_target_without_the_canary_methods_is_refused():
    from meridian.rollout.drive import require_canary_api
    from meridian.targets import Unsupported

    class Old:
        kind = "aws"

    with pytest.raises(Unsupported, match="set_canary_weight"):
        require_canary_api(Old())


def test_a_run_that_breaks_rolls_back_instead_of_leaving_a_split(tmp_path):
    from meridian.targets import ActionFailed

    class Liar(ProtocolOnlyTarget):
        def canary_weights(self):  # the balancer reads back something else than was set
            w = super().canary_weights()
            return {r: (7 if p == 5 else p) for r, p in w.items()}

    target = Liar(tmp_path / "live.csv", canary_ms=30.0)
    runner, stopped = _runner(tmp_path, target)
    with pytest.raises(ActionFailed, match="read back is 7 %"):
        runner.run()
    assert target.weights == {"primary": 0, "dr": 0} and stopped == ["primary"]
    assert load(tmp_path / "state.json").phase == "rolled_back"


# --- the traffic moves the report keeps --------------------------------------------------------


def _moves(outcome) -> list[tuple]:
    return [(m["role"], m["from_percent"], m["to_percent"], m["version"]) for m in outcome.moves]


def test_every_weight_the_run_sets_is_a_traffic_move_with_when_and_why(tmp_path):
    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=30.0)
    runner, _ = _runner(tmp_path, target)
    outcome = runner.run()
    assert _moves(outcome) == [("primary", 0, 1, "v2"), ("primary", 1, 5, "v2"), ("primary", 5, 100, "v2")]
    assert [m["why"] for m in outcome.moves] == [f"step {i} of the plan (primary {p} %)" for i, p in ((1, 1), (2, 5), (3, 100))]
    assert [m["at"] for m in outcome.moves] == sorted(m["at"] for m in outcome.moves)
    assert all(m["at_utc"].endswith("+00:00") for m in outcome.moves)


def test_the_rollback_is_a_traffic_move_that_says_the_judgement(tmp_path):
    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=640.0)
    runner, _ = _runner(tmp_path, target)
    outcome = runner.run()
    assert _moves(outcome) == [("primary", 0, 1, "v2"), ("primary", 1, 0, "v2")]
    assert outcome.moves[1]["why"].startswith("step 1 judged: ") and "p95_ms" in outcome.moves[1]["why"]


def test_a_version_promoted_on_the_canary_track_goes_back_to_stable_before_step_1_everywhere(tmp_path):
    # after v1 was promoted (both regions' canary at 100 %), rolling out v2 must first move every
    # region's v1 share back to stable, recorded as v1's moves; no region keeps v1 while v2 is judged
    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=30.0)
    target.weights = {"primary": 100, "dr": 100}
    state = RolloutState("us", "aws", "v1", "sha256:old", "x", [1, 100], ["dr", "primary"], phase="promoted")
    state.applied = {"primary": 100, "dr": 100}
    save(tmp_path / "state.json", state)
    runner, _ = _runner(tmp_path, target)
    events = []
    runner.on_event = lambda kind, data: events.append((kind, data))
    outcome = runner.run()
    assert _moves(outcome)[:3] == [("dr", 100, 0, "v1"), ("primary", 100, 0, "v1"), ("primary", 0, 1, "v2")]
    assert all("v1 was promoted on the canary track" in m["why"] for m in outcome.moves[:2])
    first_set = [c for c in target.calls if c[0] == "set_canary_weight"][:2]
    assert sorted(first_set) == [("set_canary_weight", "dr", 0), ("set_canary_weight", "primary", 0)]
    said = [d for k, d in events if k == "reconciled"]
    assert len(said) == 1 and [m["role"] for m in said[0]["moves"]] == ["dr", "primary"]


def test_a_v2_rolled_back_after_v1_was_promoted_records_only_v2_s_own_shares(tmp_path):
    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=640.0)
    target.weights = {"primary": 100, "dr": 100}
    state = RolloutState("us", "aws", "v1", "sha256:old", "x", [1, 100], ["dr", "primary"], phase="promoted")
    state.applied = {"primary": 100, "dr": 100}
    save(tmp_path / "state.json", state)
    runner, _ = _runner(tmp_path, target)
    outcome = runner.run()
    assert outcome.decision == "rolled_back"
    assert _moves(outcome) == [("dr", 100, 0, "v1"), ("primary", 100, 0, "v1"), ("primary", 0, 1, "v2"), ("primary", 1, 0, "v2")]


def test_an_unknown_split_rolled_back_before_step_1_is_a_traffic_move(tmp_path):
    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=30.0)
    target.weights["dr"] = 5  # nobody recorded this split
    runner, _ = _runner(tmp_path, target)
    outcome = runner.run()
    assert _moves(outcome)[0] == ("dr", 5, 0, "an unrecorded version")
    assert outcome.moves[0]["why"].startswith("reconcile before step 1: no rollout record")


def test_the_report_lists_the_traffic_moves_as_the_terminal_said_them(tmp_path):
    from meridian.rollout import report as reportlib

    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=640.0)
    runner, _ = _runner(tmp_path, target)
    outcome = runner.run()
    doc = {
        "plan": runner.plan.to_dict(),
        "plan_sha256": runner.plan.sha256,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "steps": [s.to_dict() for s in outcome.steps],
        "rollback": outcome.rollback,
        "traffic_moves": outcome.moves,
    }
    md = reportlib.markdown(doc)
    section = md.split("## Traffic moves", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| 20")]
    assert len(rows) == 2 and "| primary | 0 -> 1 | v2 | step 1 of the plan" in rows[0]
    assert "| primary | 1 -> 0 | v2 | step 1 judged: " in rows[1]
    assert reportlib.markdown(dict(doc, traffic_moves=[])).count("this run changed no weight") == 1


def test_every_input_file_s_mistake_is_refused_in_one_run(project_copy):
    """The stack config, the versions file and the SLO file used to be refused one per run."""
    from meridian.commands.rollout import RolloutRequest, run_rollout

    stack_file = project_copy / "Pulumi.us.yaml"
    stack_file.write_text(stack_file.read_text().replace("meridian:zone: us", "meridian:zone: us\n  meridian:colour: blue"))
    versions = project_copy / "versions.yaml"
    versions.write_text("versions:\n  bad: {fault: {latency_ms: -1}}\n")
    slo = project_copy / "slo.yaml"
    slo.write_text("version: 1\nobjectives: {p96_ms: 3}\n")
    request = RolloutRequest(stack="us", version="bad", versions_file=versions, slo_path=slo, project_dir=project_copy)
    with pytest.raises(BadInput) as refused:
        run_rollout(request)
    message = str(refused.value)
    assert "Pulumi.us.yaml: meridian:colour: unknown key" in message, message
    assert "versions.yaml: versions.bad.fault" in message, message
    assert "slo.yaml: objectives.p96_ms" in message, message


# --- what a step says when the canary was never judged -----------------------------------------


def test_a_side_never_judged_says_so_instead_of_percentiles():
    assert judgelib.fmt_summary({"requests": 14, "judged": 14}) == "14 req, 14 judged: too few to judge"
    assert judgelib.fmt_summary({"requests": 0}) == "no requests"
    v = judgelib.judge(
        judgelib.split_by_version(_samples(30, 40, "v2"), "v2"), SLO, min_samples=5, elapsed_s=3, window_s=3, max_hold_s=12
    )
    assert judgelib.fmt_summary(judgelib.summary(v.canary)).startswith("30 req, p95 40.0 ms")


def test_the_hold_clock_never_runs_past_its_limit():
    assert judgelib.hold_clock(2.04, 3, 12, short_of_samples=True) == "2.0/3 s"
    assert judgelib.hold_clock(10.1, 3, 12, short_of_samples=True) == "window 3 s over, short of requests 10.1/12 s"
    assert judgelib.hold_clock(12.3, 3, 12, short_of_samples=True).endswith("12.0/12 s")
    assert judgelib.hold_clock(5.1, 5, 20, short_of_samples=False) == "window 5 s done"


def test_not_enough_evidence_rolls_back_and_the_report_is_written(tmp_path):
    # the canary gets 1 % of 200 requests per weight change: never the 50 asked for
    from meridian.rollout import report as reportlib
    from meridian.rollout.drive import Runner
    from meridian.slo.raw import RAW_FIELDS

    target = ProtocolOnlyTarget(tmp_path / "live.csv", canary_ms=30.0)
    target.live_csv.write_text(",".join(RAW_FIELDS) + "\n0.0,GET /x,1,200,ok,acme,stable\n")
    plan = RolloutPlan("us", "aws", "v2", "sha256:img", (1, 100), ("primary",), 0.3, 50)
    lines = []

    def on_event(kind, data):
        if kind == "judged":
            r = data["record"]
            lines.append(f"canary {judgelib.fmt_summary(r.canary)}; stable {judgelib.fmt_summary(r.stable)}")

    runner = Runner(target, plan, SLO, tmp_path / "state.json", lambda role: (target.live_csv, lambda: None), on_event=on_event)
    runner.max_hold_s = 0.6
    outcome = runner.run()
    assert outcome.decision == "rolled_back" and "not enough evidence" in outcome.reason
    assert lines and "too few to judge" in lines[0]
    doc = {
        "plan": plan.to_dict(),
        "plan_sha256": plan.sha256,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "objectives": {},
        "steps": [s.to_dict() for s in outcome.steps],
        "rollback": outcome.rollback,
        "traffic_moves": outcome.moves,
    }
    paths = reportlib.write(tmp_path / "report", doc, outcome.samples, "v2")
    assert "too few to judge" in paths["md"].read_text()
