"""The drills: region-failover, database-failover (planned switchover / unplanned promotion),
failback. Each is a list of steps over Target operations; the checks measure through the front door.

    region-failover     the primary region goes dark (service killed, database crashed):
                        preflight -> fault -> detect -> fence -> promote dr -> verify -> fail back
    database-failover   the primary database stops (planned: clean shutdown, every committed write
                        shipped first; unplanned: a crash): preflight -> fault/fence -> promote dr
                        -> flip traffic -> verify -> fail back
    failback            a stack running on dr (after a failover whose failback did not run) comes
                        home: rebuild primary as a replica -> planned switchover -> verify
    restore-from-backup take a recovery point, keep writing, restore it into a new database beside
                        the pair -> every write acknowledged before the point is there; time to a
                        queryable copy (RTO) and the writes after the point (RPO) measured
"""

from __future__ import annotations

import time

from meridian.drills.machine import (
    TARGET_BOUNDED_S,
    Drill,
    Run,
    Step,
    StepFailed,
    check_acknowledged_writes,
    op,
    wait_for_recovery,
)
from meridian.drills.measure import DataLoss, Recovery
from meridian.errors import BadInput
from meridian.targets import Backups, require

DRILLS = ("region-failover", "database-failover", "failback", "restore-from-backup")
MODES = ("planned", "unplanned")
BASELINE_WRITES = 5


STREAM_STALL_S = 1.5
"""A dr replica that replayed nothing for this long while the primary wrote is stalled: the sandbox
replays within milliseconds and reports every 1 s (wal_receiver_status_interval); Aurora's global
lag is under a second in health. A stalled stream makes the RPO unbounded: it grows with the stall."""
SAMPLE_S = 0.25


def _lag_seen(health) -> tuple[float | None, int | None]:
    """(seconds behind while the primary writes, bytes behind): None seconds is no streaming replica."""
    lag = health.replication_lag_ms
    return (None if lag is None else lag / 1000), health.replication_bytes_behind


def _describe_lag(lag_s: float | None, behind: int | None) -> str:
    if lag_s is None:
        return "no streaming replica (or one that never replayed a write)" + (
            "" if behind is None else f", {behind} bytes behind"
        )
    return f"{lag_s:.3f} s since the replica last replayed a write" + ("" if behind is None else f", {behind} bytes behind")


def _lag_ok(run: Run) -> str:
    """Sample replication while the probe writes (an idle primary hides a stalled stream: nothing is
    behind); fail closed on no replica, a stall, or a lag beyond the RPO objective."""
    bound = min(STREAM_STALL_S, run.objectives.rpo_s)
    worst: tuple[float, int | None] = (0.0, None)
    until = time.monotonic() + STREAM_STALL_S + 2 * SAMPLE_S
    while time.monotonic() < until:
        lag_s, behind = _lag_seen(run.target.health())
        if lag_s is None:
            raise StepFailed("replication lag is unknown: the dr replica is not streaming (no replication row on the primary)")
        if lag_s > bound:
            raise StepFailed(
                f"replication is stalled or too far behind: {_describe_lag(lag_s, behind)} while the primary is writing "
                f"(bound {bound:.2f} s, RPO objective {run.objectives.rpo_s:.2f} s); a fault now would lose those writes"
            )
        worst = max(worst, (lag_s, behind), key=lambda w: w[0])
        time.sleep(SAMPLE_S)
    return f"replication within {bound:.2f} s while writing (worst {_describe_lag(*worst)})"


def preflight(expect_serving: str, expect_primary_db: str, *, failed_over: bool = False):
    """`failed_over`: the stack runs on dr after a failover, so the old primary may be down and
    nothing replicates yet; only the serving side is checked."""

    def check(run: Run) -> str:
        h = run.target.health()
        if not h.healthy and not failed_over:
            raise StepFailed(f"the stack is not healthy: {h.detail}")
        if h.serving != expect_serving:
            raise StepFailed(f"the front door serves {h.serving}, expected {expect_serving}")
        if h.regions[expect_primary_db].database != "primary":
            raise StepFailed(f"the {expect_primary_db} database is {h.regions[expect_primary_db].database}, expected primary")
        run.start_probe()
        deadline = time.monotonic() + 15
        while True:
            log = run.probe.log
            if len(log.acknowledged()) >= BASELINE_WRITES and any(o.kind == "read" and o.ok for o in log.outcomes):
                break
            if time.monotonic() > deadline:
                raise StepFailed("the front door took no writes before the fault: nothing to measure against")
            time.sleep(0.05)
        lag = "failed over, no replica yet" if failed_over else _lag_ok(run)
        return f"healthy, serving {h.serving}, {lag}; probe writing as {', '.join(log.tenants)} ({log.event_type})"

    return check


def lead(run: Run) -> str:
    """The probe writes for `run.lead_s` before the fault; replication is sampled all along and kept
    as evidence (verify judges it: a stream stalled before the fault is a missed objective)."""
    samples = []
    until = (run.probe.started_at or time.time()) + run.lead_s
    while True:
        lag_s, behind = _lag_seen(run.target.health())
        samples.append({"t": time.time(), "lag_s": lag_s, "bytes_behind": behind})
        if time.time() >= until:
            break
        time.sleep(min(SAMPLE_S, max(0.0, until - time.time())))
    run.state["replication_before_fault"] = samples
    worst = max(samples, key=lambda x: float("inf") if x["lag_s"] is None else x["lag_s"])
    return f"probe writing {run.lead_s:g} s before the fault; worst replication: {_describe_lag(worst['lag_s'], worst['bytes_behind'])}"


def _replication_missed(run: Run) -> list[str]:
    """A stream not streaming, or stalled, in the lead before the fault: the RPO was unbounded then."""
    samples = run.state.get("replication_before_fault") or []
    if not samples:
        return ["replication before the fault was not sampled: nothing shows the stream was healthy when the fault hit"]
    fault_t = run.event_time("fault") or samples[-1]["t"]
    bad = [x for x in samples if x["lag_s"] is None or x["lag_s"] > STREAM_STALL_S]
    if not bad:
        return []
    worst = max(bad, key=lambda x: float("inf") if x["lag_s"] is None else x["lag_s"])
    return [
        f"replication was stalled before the fault: {_describe_lag(worst['lag_s'], worst['bytes_behind'])}, "
        f"{fault_t - worst['t']:.2f} s before the fault (bound {STREAM_STALL_S:g} s)"
    ]


def detect(role: str):
    def check(run: Run) -> str:
        bound = run.target.detection_bound_s()
        deadline = time.monotonic() + 3 * bound + 5
        while time.monotonic() < deadline:
            h = run.target.health()
            if not h.regions[role].routable:
                run.mark("detected", detail=f"{role} failed its health checks")
                fault_t = run.event_time("fault") or time.time()
                run.state["detected_s"] = round(time.time() - fault_t, 4)  # verify judges it against the bound
                return f"{role} out of rotation {run.state['detected_s']:.2f} s after the fault (bound {bound:.2f} s)"
            time.sleep(0.05)
        raise StepFailed(f"the health checks did not take {role} out within {3 * bound + 5:.0f} s")

    return check


def verify(serving: str, fault_event: str, key: str, *, zero_loss: bool, since: str | None = None):
    """`since`: the state key holding where the previous phase's window ended; this phase judges only
    the writes acknowledged after it (a loss is counted once, in the phase that lost it)."""

    def check(run: Run) -> str:
        fault_t = run.event_time(fault_event)
        if run.probe is None or fault_t is None or (run.probe.started_at or fault_t) > fault_t:
            # a resumed run re-measures a phase whose fault its new probe saw (a failback after the
            # resume); one whose fault came before the crash cannot be: the verdict is "incomplete"
            h = run.target.health()
            run.measured[key] = {"measured": False, "reason": "resumed run: the probe did not see the fault"}
            if h.serving != serving:
                raise StepFailed(f"the front door serves {h.serving}, expected {serving}")
            return f"serving {serving} (not measured: resumed run)"
        rec = wait_for_recovery(run, fault_event, timeout_s=max(30.0, 4 * run.target.detection_bound_s()))
        run.mark(f"{key}: first good write", rec.recovered_write_t)
        run.mark(f"{key}: first good read", rec.recovered_read_t)
        loss, until = check_acknowledged_writes(run, fault_event, run.state.get(since) if since else None)
        run.state[f"{key}_judged_until"] = until
        h = run.target.health()
        if h.serving != serving:
            raise StepFailed(f"after recovery the front door serves {h.serving}, expected {serving}")
        run.measured[key] = {
            "measured": True,
            "recovery": rec.to_dict(),
            "data_loss": loss.to_dict(),
            "zero_loss_required": zero_loss,
            "missed": run.objectives.judge(
                rec, loss, zero_loss=zero_loss, detected_s=run.state.get("detected_s") if fault_event == "fault" else None
            )
            + (_replication_missed(run) if fault_event == "fault" and "lead" in {s.name for s in run.drill.steps} else []),
        }
        return (
            f"RTO {rec.rto_s:.3f} s, {rec.failed_requests} failed requests; "
            f"{loss.acknowledged} acknowledged writes, {len(loss.lost_ids)} lost (RPO {loss.rpo_s:.3f} s)"
        )

    return check


def healthy_on(serving: str):
    def check(run: Run) -> str:
        deadline = time.monotonic() + max(15.0, 3 * run.target.detection_bound_s())
        while True:
            h = run.target.health()
            if h.healthy and h.serving == serving:
                return f"healthy, serving {serving}, lag {h.replication_lag_ms} ms"
            if time.monotonic() > deadline:
                raise StepFailed(f"not back to healthy on {serving}: {h.detail} (serving {h.serving})")
            time.sleep(0.1)

    return check


def recovery_point(run: Run) -> str:
    run.mark("recovery point")
    return "recovery point taken"


def later_writes(run: Run) -> str:
    """Writes after the recovery point: what a restore from it must (and may only) miss."""
    point = run.event_time("recovery point")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = [o for o in run.probe.log.acknowledged() if o.t > point]
        if len(after) >= BASELINE_WRITES:
            return f"{len(after)} writes acknowledged after the recovery point"
        time.sleep(0.05)
    raise StepFailed("the front door took no writes after the recovery point")


def verify_restore(run: Run) -> str:
    """Every write acknowledged before the backup began is in the restored copy."""
    started, point, requested = (
        run.event_time("backup started"),
        run.event_time("recovery point"),
        run.event_time("restore requested"),
    )
    if run.state.get("resumed") or None in (started, point, requested) or run.probe is None:
        run.measured["restore"] = {"measured": False, "reason": "resumed run: the probe did not see the recovery point"}
        return "not measured (resumed run)"
    restore = next(s for s in run.state["steps"] if s["name"] == "restore")
    ready = restore["results"][-1]["started_at"] + restore["results"][-1]["seconds"]
    acked = [o for o in run.probe.log.acknowledged() if o.tenant == run.probe.tenant.id]
    before = [o for o in acked if o.t < started]
    after = [o for o in acked if o.t > point]
    held = require(run.target, Backups).restored_ids(run.probe.tenant.id, [o.event_id for o in before + after])
    rec = Recovery(requested, None, ready, ready, 0)
    loss = DataLoss(len(before), sorted(o.event_id for o in before if o.event_id not in held), round(requested - point, 4))
    run.mark("restore: copy queryable", ready)
    run.measured["restore"] = {
        "measured": True,
        "recovery": rec.to_dict(),
        "data_loss": loss.to_dict(),
        "zero_loss_required": True,
        "after_recovery_point": {"acknowledged": len(after), "in_copy": sum(1 for o in after if o.event_id in held)},
        "missed": run.objectives.for_restore().judge(rec, loss, zero_loss=True),
    }
    return (
        f"restore queryable {rec.rto_s:.3f} s after it was requested; {len(before)} writes before the point, "
        f"{len(loss.lost_ids)} missing; {len(after)} after it (lost to a restore: RPO {loss.rpo_s:.3f} s)"
    )


def _failback_steps() -> tuple[Step, ...]:
    """dr is the primary and serves; bring the primary region home with a planned switchover."""
    return (
        Step(
            "failback-rebuild",
            "rebuild the old primary as a replica of dr, restart its service",
            ops=(op("restore_database", "primary"), op("restore_region", "primary")),
            timeout_s=TARGET_BOUNDED_S,
        ),
        # three steps, so a failure lands on a known side: before the promotion dr holds the data
        # (restarted, traffic stays there); after it, primary does (traffic home)
        Step(
            "failback-fence",
            "planned switchover back, 1/3: stop dr cleanly (every committed write ships to primary)",
            ops=(op("stop_database", "dr", planned=True),),
            undo=(op("restore_database", "dr"),),
            event="failback",
            timeout_s=60,
        ),
        Step(
            "failback-promote",
            "planned switchover back, 2/3: promote primary",
            ops=(op("promote", "primary"),),
            irreversible=True,
            safe_state=(op("flip_traffic", "primary"),),
            timeout_s=TARGET_BOUNDED_S,
        ),
        Step("failback-home", "planned switchover back, 3/3: traffic home", ops=(op("flip_traffic", "primary"),), timeout_s=30),
        Step(
            "failback-verify",
            "writes and reads home again, no acknowledged write lost",
            check=verify("primary", "failback", "failback", zero_loss=True, since="failover_judged_until"),
            timeout_s=120,
        ),
        Step(
            "failback-reprotect",
            "rebuild dr as the replica of primary",
            ops=(op("restore_database", "dr"),),
            check=healthy_on("primary"),
            timeout_s=TARGET_BOUNDED_S,
        ),
    )


def build(name: str, mode: str = "planned") -> Drill:
    if name not in DRILLS:
        raise BadInput(f"unknown drill {name!r} (allowed: {', '.join(DRILLS)})")
    if mode not in MODES:
        raise BadInput(f"unknown mode {mode!r} (allowed: {', '.join(MODES)})")
    # Once dr is promoted, a later failure leaves traffic where the writer is.
    promote_dr = Step(
        "promote",
        "promote the dr database to primary",
        ops=(op("promote", "dr"),),
        irreversible=True,
        safe_state=(op("flip_traffic", "dr"),),
        timeout_s=TARGET_BOUNDED_S,
    )
    if name == "region-failover":
        steps = (
            Step(
                "preflight",
                "healthy, serving primary, replication lag within the RPO; start the probe",
                check=preflight("primary", "primary"),
                timeout_s=30,
            ),
            Step(
                "lead",
                "the probe writes a lead before the fault; replication is sampled as evidence",
                check=lead,
                timeout_s=120,
            ),
            Step(
                "fault",
                "the primary region goes dark: its service is killed, its database crashes",
                ops=(op("kill_region", "primary"), op("stop_database", "primary", planned=False)),
                undo=(op("restore_database", "primary"), op("restore_region", "primary")),
                event="fault",
            ),
            Step("detect", "the health checks take the primary out of rotation", check=detect("primary"), timeout_s=120),
            Step(
                "fence",
                "drain the old primary: it gets no traffic even if it comes back",
                ops=(op("flip_traffic", "dr"),),
                undo=(op("flip_traffic", "primary"),),
            ),
            promote_dr,
            Step(
                "verify",
                "first good write and read through the front door; every acknowledged write present",
                check=verify("dr", "fault", "failover", zero_loss=False),
                timeout_s=120,
            ),
            *_failback_steps(),
        )
        return Drill(name, "unplanned loss of the primary region", steps, measures=("failover", "failback"))
    if name == "database-failover":
        planned = mode == "planned"
        steps = (
            Step(
                "preflight",
                "healthy, serving primary, replication lag within the RPO; start the probe",
                check=preflight("primary", "primary"),
                timeout_s=30,
            ),
            Step(
                "lead",
                "the probe writes a lead before the fault; replication is sampled as evidence",
                check=lead,
                timeout_s=120,
            ),
            Step(
                "fence",
                "stop the primary database "
                + ("cleanly: every committed write ships to dr first" if planned else "abruptly (crash)"),
                ops=(op("stop_database", "primary", planned=planned),),
                undo=(op("restore_database", "primary"),),
                event="fault",
            ),
            promote_dr,
            Step("flip-traffic", "send traffic to dr, where the writer now is", ops=(op("flip_traffic", "dr"),)),
            Step(
                "verify",
                "first good write and read through the front door; every acknowledged write present",
                check=verify("dr", "fault", "failover", zero_loss=planned),
                timeout_s=60,
            ),
            *_failback_steps(),
        )
        return Drill(
            name,
            f"{mode} database failover (" + ("switchover, RPO 0" if planned else "promotion, RPO = replication lag") + ")",
            steps,
            measures=("failover", "failback"),
        )
    if name == "restore-from-backup":
        steps = (
            Step("preflight", "healthy, serving primary; start the probe", check=preflight("primary", "primary"), timeout_s=30),
            Step(
                "backup",
                "take a recovery point of the primary database",
                ops=(op("backup", "primary"),),
                check=recovery_point,
                event="backup started",
                timeout_s=120,
            ),
            Step("later-writes", "writes go on after the recovery point", check=later_writes, timeout_s=30),
            Step(
                "restore",
                "restore the latest recovery point into a new database beside the pair",
                ops=(op("restore_backup", "primary"),),
                undo=(op("discard_restore"),),
                event="restore requested",
                timeout_s=180,
            ),
            Step(
                "verify", "every write acknowledged before the recovery point is in the copy", check=verify_restore, timeout_s=60
            ),
            Step("discard", "stop and delete the restored copy", ops=(op("discard_restore"),), timeout_s=60),
        )
        return Drill(
            name,
            "restore the primary database from its latest recovery point",
            steps,
            requires=(Backups,),
            measures=("restore",),
        )
    steps = (
        Step(
            "preflight",
            "the stack runs on dr: dr database primary, front door serving dr; start the probe",
            check=preflight("dr", "dr", failed_over=True),
            timeout_s=30,
        ),
        *_failback_steps(),
    )
    return Drill(name, "bring a failed-over stack home (planned switchover)", steps, measures=("failback",))
