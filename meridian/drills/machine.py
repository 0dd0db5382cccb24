"""The drill step machine, written once against `Target`.

A drill is a list of steps (preflight, fault, detect, fence, promote, flip traffic, verify, fail
back). Each step runs Target operations and/or a check, under a timeout; each knows how to undo
what it did, or says that it cannot (a promotion). A dry run (the default) prints every step, every
Target operation and, where the target can tell, every API call it would make, and touches nothing.

Safety:
- one drill at a time per stack: the target's lock (`StackLock`, taken by the drill command);
  within a records folder, `.meridian/drills/<stack>/active.json` is created exclusively;
- a run that died half-way leaves it behind: the next run refuses, or continues the same drill
  from the first unfinished step with `--resume`, or forgets it with `--abandon` (after a human
  checked the stack);
- a failed or timed-out step rolls back: before an irreversible step, by undoing every completed
  step in reverse; after one, by rolling forward to a safe state (traffic where the writer is)
  and saying that a failback is needed; either way, every injected fault is cleared last.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from meridian.drills.measure import DataLoss, Objectives, Recovery, data_loss, recovery
from meridian.drills.probe import Probe, ProbeLog, read_back
from meridian.errors import BadInput, GateFailed
from meridian.output import Progress
from meridian.targets import ActionResult, Target, check_operation, perform
from meridian.targets.lock import pid_alive

# Operations that wait on the target's own bound (sandbox: pg_promote 10 s, a rebuild within its
# ready timeout; AWS: polled until the member writes or rejoins, up to its WAIT_S of 900 s) get a
# timeout above that bound, never below it: a step or rollback operation that times out while the
# target still promotes would be followed by a rollback while the promotion goes on.
TARGET_BOUNDED_S = 960.0


class StepFailed(GateFailed):
    """A step did not complete (its error, or its timeout)."""


@dataclass(frozen=True)
class Op:
    """One Target operation, e.g. Op("promote", ("dr",))."""

    action: str
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_operation(self.action)

    def run(self, target: Target) -> ActionResult:
        return perform(target, self.action, *self.args, **dict(self.kwargs))

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.action}({', '.join(parts)})"


def op(action: str, *args: Any, **kwargs: Any) -> Op:
    return Op(action, args, tuple(sorted(kwargs.items())))


@dataclass(frozen=True)
class Step:
    name: str
    purpose: str
    ops: tuple[Op, ...] = ()
    check: Callable[[Run], str] | None = None
    """Runs after the ops; returns what it found, raises StepFailed when the stack is not as it must be."""
    undo: tuple[Op, ...] = ()
    irreversible: bool = False
    safe_state: tuple[Op, ...] = ()
    """For an irreversible step: the roll-forward if a later step fails (where traffic must go)."""
    timeout_s: float = 60.0
    event: str | None = None
    """Timeline event marked when the step's ops start (e.g. "fault")."""


@dataclass(frozen=True)
class Drill:
    name: str
    description: str
    steps: tuple[Step, ...]
    requires: tuple[type, ...] = ()
    """Abilities beyond the Target protocol the drill needs, e.g. `Backups` (a target without them
    is refused before anything runs)."""
    measures: tuple[str, ...] = ()
    """The phases its verdict needs measured (e.g. failover, failback): one missing is no pass."""


@dataclass
class Run:
    """One execution: the target, the probe, the timeline and the persisted state."""

    drill: Drill
    target: Target
    stack: str
    objectives: Objectives
    run_dir: Path
    console: Console
    state: dict[str, Any]
    probe: Probe | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)
    lead_s: float = 5.0
    """How long the probe writes before the fault (several replication intervals: a loss must not
    predate the probe, or the RPO would be bounded by when the probe started)."""

    def mark(self, name: str, t: float | None = None, detail: str = "") -> None:
        self.events.append({"t": t if t is not None else time.time(), "event": name, "detail": detail})
        self.state["events"] = self.events
        self.save()

    def event_time(self, name: str) -> float | None:
        return next((e["t"] for e in self.events if e["event"] == name), None)

    def save(self) -> None:
        self.state["measured"] = self.measured  # a resumed run keeps what was measured before the crash
        write_json(self.run_dir / "state.json", self.state)

    def start_probe(self) -> None:
        if self.probe is None:
            self.probe = Probe(self.target.endpoint(), self.target.tenants(), run_tag=self.state.get("run_id")).start()

    def probe_log(self) -> ProbeLog | None:
        return self.probe.log if self.probe is not None else None


def write_json(path: Path, doc: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


# --- the lock and partial runs ----------------------------------------------------------------


def drills_root(project_dir: Path, stack: str) -> Path:
    return project_dir / ".meridian" / "drills" / stack


def partial_run(root: Path) -> dict[str, Any] | None:
    """The records folder's partial run (`active.json`: run id, drill, target, pid), None if none.
    Refuses (exit 2) while the process that holds it still runs."""
    active = root / "active.json"
    if not active.exists():
        return None
    try:
        lock = json.loads(active.read_text())
    except ValueError:
        lock = {}
    pid = int(lock.get("pid") or 0)
    if pid and pid != os.getpid() and pid_alive(pid):
        raise BadInput(f"drill {lock.get('drill')} is running on this stack (pid {pid}, run {lock.get('run_id')}); wait for it")
    return lock


def refuse_claim(root: Path, drill: Drill, target_kind: str, *, resume: bool, abandon: bool) -> dict[str, Any] | None:
    """Every reason this execution may not claim the records folder, checked before the stack's lock
    is touched (a refusal must leave the lock, and a partial run's, as they were). Returns the
    partial run it would resume or abandon."""
    lock = partial_run(root)
    if lock is None:
        if resume or abandon:
            flag = "--resume" if resume else "--abandon"
            raise BadInput(
                f"{flag}: no partial run in {root}; nothing to {flag[2:]} (an interrupted run's records are where its "
                f"--records pointed: pass the same folder)"
            )
        return None
    state_file = root / str(lock.get("run_id", "")) / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    done = [s["name"] for s in state.get("steps", []) if s.get("status") == "done"]
    where = f"after step {done[-1]!r}" if done else "before its first step finished"
    if not (resume or abandon):
        raise BadInput(
            f"a partial run of drill {lock.get('drill')} ({lock.get('run_id')}, status {state.get('status', '?')}) "
            f"stopped {where}; the stack may be half failed over. Check it (`meridian sandbox status` / the console), "
            f"then rerun with --resume to continue that drill from there, or --abandon to forget it"
        )
    if resume and (lock.get("drill") != drill.name or lock.get("target") != target_kind):
        raise BadInput(
            f"--resume: the partial run is drill {lock.get('drill')} on {lock.get('target')}, "
            f"not {drill.name} on {target_kind}; resume that one, or --abandon it"
        )
    return lock


def forget(root: Path) -> str:
    """--abandon: forget the partial run (its records stay); nothing else is done."""
    lock = partial_run(root) or {}
    (root / "active.json").unlink(missing_ok=True)
    return str(lock.get("run_id", "?"))


def claim(root: Path, drill: Drill, target_kind: str, *, resume: bool) -> tuple[Path, dict[str, Any]]:
    """The run directory and state for this execution: a new run, or the partial run to resume
    (`refuse_claim` has checked that it may)."""
    root.mkdir(parents=True, exist_ok=True)
    active = root / "active.json"
    lock = refuse_claim(root, drill, target_kind, resume=resume, abandon=False)
    if lock is not None:
        run_dir = root / str(lock.get("run_id", ""))
        state_file = run_dir / "state.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        state["resumed"] = state.get("resumed", 0) + 1
        state["status"] = "running"
        lock["pid"] = os.getpid()
        write_json(active, lock)
        return run_dir, state
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    try:
        fd = os.open(active, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise BadInput(f"another drill claimed {root} just now; rerun when it is done") from None
    with os.fdopen(fd, "w") as fh:
        json.dump({"run_id": run_id, "drill": drill.name, "target": target_kind, "pid": os.getpid()}, fh)
    state = {
        "run_id": run_id,
        "drill": drill.name,
        "target": target_kind,
        "status": "running",
        "resumed": 0,
        "started_at": time.time(),
        "steps": [{"name": s.name, "status": "pending"} for s in drill.steps],
        "events": [],
    }
    return run_dir, state


def release(root: Path) -> None:
    (root / "active.json").unlink(missing_ok=True)


# --- running ---------------------------------------------------------------------------------


def _with_timeout(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name=f"step-{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise StepFailed(f"{what} did not finish within its {timeout_s:.0f} s timeout")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def execute(run: Run) -> dict[str, Any]:
    """Run the remaining steps; roll back on failure. Returns the result document."""
    console, steps = run.console, run.drill.steps
    states = {s["name"]: s for s in run.state["steps"]}
    run.events = list(run.state.get("events", []))
    run.measured = {**run.state.get("measured", {}), **run.measured}
    if run.state.get("resumed") and any(s.get("status") == "done" for s in run.state["steps"]):
        run.start_probe()  # later steps read the probe; what it saw before the crash is gone (not measured)
    total = len(steps)
    failure: str | None = None
    for index, step in enumerate(steps, start=1):
        record = states[step.name]
        if record.get("status") == "done":
            console.print(f"[dim][{index}/{total}] {step.name}: done in an earlier attempt[/]")
            continue
        record.update(status="running", started_at=time.time(), results=[])
        run.save()
        t0 = time.monotonic()
        try:
            with Progress(console, f"[{index}/{total}] {step.name}: {step.purpose}"):
                found = _with_timeout(lambda s=step, r=record: _run_step(run, s, r), step.timeout_s, step.name)
        except Exception as exc:
            record.update(status="failed", seconds=round(time.monotonic() - t0, 3), error=str(exc))
            run.save()
            console.print(f"[bold red][{index}/{total}] {step.name}: FAILED[/] {escape(str(exc))}")
            failure = f"step {step.name} failed: {exc}"
            break
        record.update(status="done", seconds=round(time.monotonic() - t0, 3), found=found)
        run.save()
        console.print(f"[green][{index}/{total}] {step.name}[/] ({record['seconds']:.2f} s) {escape(found or '')}")
    if failure is not None:
        run.state["status"] = "failed"
        run.state["rollback"] = rollback(run)
        run.state["error"] = failure
    else:
        run.state["status"] = "completed"
    if run.probe is not None:
        run.probe.stop()
    run.state["finished_at"] = time.time()
    run.save()
    return run.state


def _run_step(run: Run, step: Step, record: dict[str, Any]) -> str:
    if step.event:
        run.mark(step.event)
    found = []
    for o in step.ops:
        result = o.run(run.target)
        record["results"].append(result.to_dict())
        if result.forced:  # a planned, clean stop that had to be forced: the switchover is not clean
            run.state.setdefault("unclean", []).append(f"step {step.name}: {o} was forced: {result.detail}")
        run.save()
        found.append(f"{o}: {result.detail}" if result.detail else str(o))
    if step.check is not None:
        found.append(step.check(run))
    return "; ".join(f for f in found if f)


def rollback(run: Run) -> dict[str, Any]:
    """Undo completed steps in reverse, unless an irreversible one completed: then undo what ran
    after it and roll forward to its safe state; either way every fault the target injected is lifted last. Every
    operation is attempted; what failed is reported."""
    done = [s for s in run.drill.steps if _status(run, s.name) in ("done", "running", "failed")]
    irreversible = [s for s in done if s.irreversible and _status(run, s.name) == "done"]
    if irreversible:
        # what ran after the irreversible step is undone first (e.g. a stopped database restarted),
        # then its safe state: traffic where the data is
        later = done[done.index(irreversible[-1]) + 1 :]
        plan = [o for s in reversed(later) for o in s.undo] + list(irreversible[-1].safe_state)
        mode = f"roll forward (after irreversible {irreversible[-1].name})"
    else:
        plan, mode = [o for s in reversed(done) for o in s.undo], "undo in reverse"
    if not any(o.action == "clear_faults" for o in plan):
        # whatever the drill reached, no injected fault outlives it (on AWS: a running FIS experiment)
        plan.append(Op("clear_faults"))
    run.console.print(f"[yellow]rolling back: {mode}[/]")
    results, errors = [], []
    for o in plan:
        try:
            result = _with_timeout(lambda o=o: o.run(run.target), TARGET_BOUNDED_S, str(o))
            results.append(result.to_dict())
            run.console.print(f"  [yellow]{o}[/] {escape(result.detail)}")
        except Exception as exc:
            errors.append(f"{o}: {exc}")
            run.console.print(f"  [bold red]{o} failed:[/] {escape(str(exc))}")
    return {
        "mode": mode,
        "operations": [str(o) for o in plan],
        "results": results,
        "errors": errors,
        "failback_needed": bool(irreversible),
    }


def _status(run: Run, name: str) -> str | None:
    return next((s.get("status") for s in run.state["steps"] if s["name"] == name), None)


# --- the verdict ---------------------------------------------------------------------------------


def verdict(run: Run) -> tuple[str, list[str]]:
    """(verdict, what it rests on): "passed" only on a completed run with every phase the drill
    measures measured and every objective met. Otherwise "failed" (a step failed), "unclean" (a
    planned stop had to be forced), "incomplete" (a phase not measured: exit 1, never a pass) or
    "objectives missed"."""
    missed = [m for phase in run.measured.values() for m in phase.get("missed", [])]
    if run.state.get("status") != "completed":
        return "failed", missed
    unclean = run.state.get("unclean") or []
    if unclean:
        return "unclean", unclean + missed
    unmeasured = [p for p in run.drill.measures if not run.measured.get(p, {}).get("measured")]
    if unmeasured:
        reasons = [f"{p} not measured: {run.measured.get(p, {}).get('reason', 'no measurement recorded')}" for p in unmeasured]
        return "incomplete", reasons + missed
    return ("passed" if not missed else "objectives missed"), missed


# --- measuring (used by the catalog's checks) ----------------------------------------------------


def wait_for_recovery(run: Run, fault_event: str = "fault", timeout_s: float = 60.0) -> Recovery:
    """Poll the probe until writes and reads through the front door work again after the fault."""
    fault_t = run.event_time(fault_event)
    if fault_t is None or run.probe is None:
        raise StepFailed("no fault time or probe to measure recovery from (resumed run?)")
    deadline = time.monotonic() + timeout_s
    while True:
        rec = recovery(run.probe.log.outcomes, fault_t, time.time())
        settled = rec.rto_s is not None and time.time() - max(rec.recovered_write_t, rec.recovered_read_t) > 0.3
        if settled:
            # measured over the window up to now: a later failure would move recovery on
            rec = recovery(run.probe.log.outcomes, fault_t, time.time())
            if rec.rto_s is not None:
                return rec
        if time.monotonic() > deadline:
            raise StepFailed(f"the front door did not serve a good write and read within {timeout_s:.0f} s of the fault")
        time.sleep(0.05)


def check_acknowledged_writes(run: Run, fault_event: str, since: float | None) -> tuple[DataLoss, float]:
    """Every write acknowledged in the window (after `since`: the phase's own; until now) must be
    readable from the serving region's database with the content it was acknowledged with. Returns
    the loss and the end of the window (the next phase judges from there: no write twice)."""
    fault_t = run.event_time(fault_event)
    assert run.probe is not None and fault_t is not None
    until = time.time()  # acknowledged later, a write may be stored after the read-back passed it
    acked = [o for o in run.probe.log.acknowledged() if (since is None or o.t > since) and o.t < until]
    endpoint, event_type = run.target.endpoint(), run.probe.event_type
    stored = {
        (tenant.id, probe_id): digest
        for tenant in run.probe.tenants.values()
        for probe_id, digest in read_back(endpoint, tenant, event_type).items()
    }
    return data_loss(acked, stored, fault_t), until
