"""The drill step machine on a recording target: resume-or-refuse after a partial run, one drill
at a time, per-step timeouts with rollback, and the RTO/RPO arithmetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from rich.console import Console

from meridian.drills.machine import Drill, Run, Step, claim, drills_root, execute, forget, op, refuse_claim, release, verdict
from meridian.drills.measure import Objectives, data_loss, recovery
from meridian.drills.probe import Outcome
from meridian.errors import BadInput
from meridian.targets import ActionResult, TenantCredential
from tests.helpers import dead_pid


class Recorder:
    """A Target that does nothing but remember what it was asked, in order."""

    kind = "fake"
    stack = "us"

    def __init__(self, slow: dict[str, float] | None = None, failing: set[str] = frozenset()):
        self.calls: list[str] = []
        self.slow = slow or {}
        self.failing = failing

    def endpoint(self):
        return "http://127.0.0.1:9"  # discard port: a resumed run's probe gets refused at once

    def tenants(self):
        return [TenantCredential("acme", "pro", "key", 10, 10)]

    def __getattr__(self, action):
        def call(*args, **kwargs):
            name = f"{action}({', '.join(map(repr, args))})"
            self.calls.append(name)
            time.sleep(self.slow.get(action, 0))
            if action in self.failing:
                raise RuntimeError(f"{action} broke")
            return ActionResult(action, args[0] if args else None, time.time(), 0.0, True, "ok")

        return call


DRILL = Drill(
    "demo",
    "a demo drill",
    (
        Step("fault", "break it", ops=(op("kill_region", "primary"),), undo=(op("restore_region", "primary"),), event="fault"),
        Step("fence", "drain it", ops=(op("flip_traffic", "dr"),), undo=(op("flip_traffic", "primary"),)),
        Step(
            "promote",
            "promote dr",
            ops=(op("promote", "dr"),),
            irreversible=True,
            safe_state=(op("flip_traffic", "dr"),),
            timeout_s=0.5,
        ),
        Step("finish", "home", ops=(op("flip_traffic", "primary"),)),
    ),
)


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"))


def start(tmp_path, target, drill=DRILL, **kw):
    root = drills_root(tmp_path, "us")
    run_dir, state = claim(root, drill, "fake", resume=kw.get("resume", False))
    return root, Run(drill, target, "us", Objectives(30, 90, 10), run_dir, quiet(), state)


def test_a_completed_run_releases_the_lock(tmp_path):
    target = Recorder()
    root, run = start(tmp_path, target)
    assert execute(run)["status"] == "completed"
    release(root)
    assert target.calls == ["kill_region('primary')", "flip_traffic('dr')", "promote('dr')", "flip_traffic('primary')"]
    assert not (root / "active.json").exists()


def test_a_partial_run_is_refused_then_resumed_from_its_first_unfinished_step(tmp_path):
    target = Recorder()
    root, run = start(tmp_path, target)
    # the process died after two steps: state says so, the lock stays with a dead pid
    run.state["steps"][0]["status"] = run.state["steps"][1]["status"] = "done"
    run.save()
    lock = json.loads((root / "active.json").read_text())
    (root / "active.json").write_text(json.dumps({**lock, "pid": dead_pid()}))

    with pytest.raises(BadInput, match="partial run of drill demo.*after step 'fence'.*--resume"):
        claim(root, DRILL, "fake", resume=False)
    other = Drill("other", "x", DRILL.steps)
    with pytest.raises(BadInput, match="not other on fake"):
        claim(root, other, "fake", resume=True)

    root, resumed = start(tmp_path, target, resume=True)
    assert resumed.state["resumed"] == 1
    assert execute(resumed)["status"] == "completed"
    assert resumed.probe is not None, "later steps of a resumed run still get a probe"
    assert target.calls == ["promote('dr')", "flip_traffic('primary')"], "done steps are not repeated"


def measuring_drill():
    """DRILL plus a verify step that measures the failover unless the run was resumed (then the
    probe never saw the fault), the way the catalog's verify does."""

    def check(run):
        if run.state.get("resumed"):
            run.measured["failover"] = {"measured": False, "reason": "resumed run: the probe did not see the fault"}
            return "not measured"
        run.measured["failover"] = {"measured": True, "missed": []}
        return "measured"

    return Drill("demo", "a demo drill", (*DRILL.steps[:3], Step("verify", "measure", check=check)), measures=("failover",))


def crash_after(root, run, steps: int) -> None:
    for record in run.state["steps"][:steps]:
        record["status"] = "done"
    run.save()
    lock = json.loads((root / "active.json").read_text())
    (root / "active.json").write_text(json.dumps({**lock, "pid": dead_pid()}))


def test_a_resumed_drill_that_cannot_measure_is_incomplete_never_passed(tmp_path):
    drill = measuring_drill()
    root, run = start(tmp_path, Recorder(), drill)
    crash_after(root, run, 3)  # killed after the promotion, before verify
    _, resumed = start(tmp_path, Recorder(), drill, resume=True)
    assert execute(resumed)["status"] == "completed"
    outcome, why = verdict(resumed)
    assert outcome == "incomplete" and why == ["failover not measured: resumed run: the probe did not see the fault"]


def test_a_resumed_drill_keeps_what_it_measured_before_the_crash(tmp_path):
    drill = measuring_drill()
    root, run = start(tmp_path, Recorder(), drill)
    execute(run)
    assert verdict(run) == ("passed", [])
    crash_after(root, run, 4)  # every step done, the process died before the verdict: resume
    _, resumed = start(tmp_path, Recorder(), drill, resume=True)
    execute(resumed)
    assert verdict(resumed) == ("passed", []), "the measurement survives in state.json"
    (run.run_dir / "state.json").write_text(json.dumps({**json.loads((run.run_dir / "state.json").read_text()), "measured": {}}))
    _, bare = start(tmp_path, Recorder(), drill, resume=True)
    execute(bare)
    assert verdict(bare)[0] == "incomplete", "a phase with no measurement at all is no pass"


def test_a_planned_stop_that_had_to_be_forced_is_unclean(tmp_path):
    class Forcing(Recorder):
        def stop_database(self, role, *, planned=False):
            self.calls.append(f"stop_database({role!r})")
            return ActionResult("stop_database", role, time.time(), 10.2, True, "clean shutdown did not finish; forced", True)

    drill = Drill(
        "switch",
        "planned switchover",
        (Step("fence", "stop cleanly", ops=(op("stop_database", "primary", planned=True),)), *measuring_drill().steps[1:]),
        measures=("failover",),
    )
    _, run = start(tmp_path, Forcing(), drill)
    assert execute(run)["status"] == "completed"
    outcome, why = verdict(run)
    assert outcome == "unclean" and "stop_database('primary', planned=True) was forced" in why[0]


def test_a_live_drill_blocks_another_and_abandon_clears_a_dead_one(tmp_path):
    root, run = start(tmp_path, Recorder())
    lock = json.loads((root / "active.json").read_text())
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (root / "active.json").write_text(json.dumps({**lock, "pid": sleeper.pid}))
        with pytest.raises(BadInput, match="is running on this stack"):
            claim(root, DRILL, "fake", resume=True)
    finally:
        sleeper.kill()
        sleeper.wait()
    (root / "active.json").write_text(json.dumps({**lock, "pid": dead_pid()}))
    assert forget(root) == lock["run_id"] and not (root / "active.json").exists()  # forgotten, nothing started
    assert (root / lock["run_id"]).is_dir()  # its records stay
    for flag in ("resume", "abandon"):  # nothing left to resume or abandon: a refusal, not a new run
        with pytest.raises(BadInput, match=f"--{flag}: no partial run in"):
            refuse_claim(root, DRILL, "fake", **{"resume": flag == "resume", "abandon": flag == "abandon"})


def test_a_step_that_times_out_before_the_promotion_is_undone_in_reverse(tmp_path):
    target = Recorder(slow={"promote": 2.0})
    _, run = start(tmp_path, target)
    state = execute(run)
    assert state["status"] == "failed" and "timeout" in state["error"]
    assert state["rollback"]["operations"] == ["flip_traffic('primary')", "restore_region('primary')", "clear_faults()"]
    assert target.calls[-3:] == ["flip_traffic('primary')", "restore_region('primary')", "clear_faults()"]


def test_a_failure_after_the_promotion_rolls_forward(tmp_path):
    target = Recorder(failing={"flip_traffic"})
    drill = Drill("late", "x", (DRILL.steps[2], Step("home", "home", ops=(op("flip_traffic", "primary"),))))
    _, run = start(tmp_path, target, drill)
    state = execute(run)
    assert state["rollback"]["mode"].startswith("roll forward") and state["rollback"]["failback_needed"]
    assert state["rollback"]["errors"], "a rollback operation that fails is reported, not hidden"


# --- measurement ---------------------------------------------------------------------------------


def outcomes(spec):
    """(t, kind, ok[, id]) tuples -> Outcomes of tenant acme; a write with database id n carries
    client id pn and content digest dn."""
    return [
        Outcome(t, kind, ok, 201 if ok else None, *rest[:1], None, "acme", *((f"p{rest[0]}", f"d{rest[0]}") if rest else ()))
        for t, kind, ok, *rest in spec
    ]


def stored(*ids, **changed):
    """What a read-back found: writes n stored with their own content; changed: pn -> another digest."""
    return {("acme", f"p{n}"): f"d{n}" for n in ids} | {("acme", k): v for k, v in changed.items()}


def test_rto_runs_to_the_first_success_after_the_last_failure_of_both_kinds():
    log = outcomes(
        [
            (9.0, "write", True),
            (10.5, "write", False),
            (11.0, "write", True),
            (11.5, "write", False),
            (12.0, "write", True),
            (10.6, "read", False),
            (12.4, "read", True),
            (20.0, "write", False),
        ]
    )
    rec = recovery(log, fault_t=10.0, end_t=15.0)
    assert rec.recovered_write_t == 12.0 and rec.recovered_read_t == 12.4 and rec.rto_s == 2.4
    assert rec.failed_requests == 3
    assert recovery(log, fault_t=10.0, end_t=11.8).rto_s is None, "reads had not recovered yet"


def test_rpo_names_every_lost_write_and_how_far_before_the_fault():
    acks = outcomes([(1.0, "write", True, 1), (2.0, "write", True, 2), (9.5, "write", True, 3), (9.9, "write", True, 4)])
    loss = data_loss(acks, stored(1, 2), fault_t=10.0)
    assert loss.lost_ids == ["p3", "p4"] and loss.rpo_s == 0.5 and loss.changed == 0
    obj = Objectives(rto_s=5, rpo_s=0.2, time_scale=10)
    missed = obj.judge(None, loss, zero_loss=True)
    assert any("lost in a planned switchover" in m for m in missed) and any("RPO 0.50 s exceeds" in m for m in missed)
    assert obj.judge(None, data_loss(acks, stored(1, 2, 3, 4), 10.0), zero_loss=True) == []


def test_a_write_whose_id_now_holds_other_content_is_lost():
    """After an async promotion the database hands the lost writes' ids out again: present by id,
    gone by content."""
    acks = outcomes([(1.0, "write", True, 1), (9.0, "write", True, 2)])
    loss = data_loss(acks, stored(1, p2="another event's digest"), fault_t=10.0)
    assert loss.lost_ids == ["p2"] and loss.changed == 1 and loss.rpo_s == 1.0
    tampered = data_loss(acks, {("acme", "p1"): "d1", ("acme", "p2"): None}, fault_t=10.0)
    assert tampered.lost_ids == ["p2"], "content that no longer matches its digest is a loss"


def test_rpo_spans_every_lost_write_even_after_the_fault():
    acks = outcomes([(3.0, "write", True, 1), (4.0, "write", True, 2), (12.5, "write", True, 3)])
    loss = data_loss(acks, stored(1), fault_t=10.0)
    assert loss.rpo_s == 8.5 and (loss.first_lost_t, loss.last_lost_t) == (4.0, 12.5)


# --- restore-from-backup's verification -----------------------------------------------------------


def test_restore_verification_requires_every_write_acknowledged_before_the_backup(tmp_path):
    from types import SimpleNamespace

    from meridian.drills.catalog import build, verify_restore
    from meridian.drills.probe import ProbeLog

    class Restored(Recorder):
        def __init__(self, held):
            super().__init__()
            self.held = held

        def restored_ids(self, tenant, ids):
            return {i for i in ids if i in self.held}

    def measured(held):
        drill = build("restore-from-backup")
        _, run = start(tmp_path / str(len(held)), Restored(held), drill)
        log = ProbeLog(
            "acme",
            ["acme"],
            "drill.probe.test",
            outcomes([(1.0, "write", True, 1), (2.0, "write", True, 2), (5.0, "write", True, 3), (6.0, "write", True, 4)]),
        )
        run.probe = SimpleNamespace(log=log, tenant=SimpleNamespace(id="acme"))
        run.events = [
            {"t": 3.0, "event": "backup started"},
            {"t": 4.0, "event": "recovery point"},
            {"t": 7.0, "event": "restore requested"},
        ]
        restore = next(s for s in run.state["steps"] if s["name"] == "restore")
        restore["results"] = [{"started_at": 7.0, "seconds": 2.5}]
        verify_restore(run)
        return run.measured["restore"]

    whole = measured({1, 2})
    assert whole["data_loss"]["lost_ids"] == [] and whole["missed"] == []
    assert whole["recovery"]["rto_s"] == 2.5 and whole["data_loss"]["rpo_s"] == 3.0
    assert whole["after_recovery_point"] == {"acknowledged": 2, "in_copy": 0}
    torn = measured({1})
    assert torn["data_loss"]["lost_ids"] == [2] and any("lost" in m for m in torn["missed"])


# --- refusals: exit 2, no drill record -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("region-failover", "--mode", "unplanned", "--execute"), "--mode applies to database-failover only"),
        (("failback", "--mode", "planned"), "--mode applies to database-failover only"),
        (("region-failover", "--abandon"), "--abandon needs --execute"),
        (("region-failover", "--resume"), "--resume needs --execute"),
        (("restore-from-backup", "--lead", "3", "--execute"), "--lead applies to drills with a fault"),
        (("region-failover", "--lead", "0.2", "--execute"), "must be 1..600 s"),
    ],
)
def test_flags_a_drill_does_not_take_are_refused_without_a_record(tmp_path, args, says):
    from tests.helpers import run_meridian

    cli = run_meridian(
        "drill", *args, "--stack", "us", "--target", "sandbox", "--state-dir", str(tmp_path / "none"),
        "--records", str(tmp_path / "records"),
    )  # fmt: skip
    assert cli.code == 2 and says in " ".join((cli.out + cli.err).split()), cli.out + cli.err
    assert not (tmp_path / "records").exists()
