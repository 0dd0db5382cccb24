"""`meridian drill DRILL --stack S --target sandbox|aws [--execute] [--allow-production] [--break-lock] [--evidence DIR [--signing-key KEY]]`.

Dry run by default: the steps, their Target operations and the API calls each would make.
`--execute` runs it; a stack with `production: true` also needs `--allow-production`. Exit 0 when
the drill completed, measured every phase and met the stack's objectives, 1 when a step failed
(after rollback), an objective was missed, a phase went unmeasured ("incomplete") or a planned stop
was forced ("unclean"), 2 on a refused run, which writes no record (bad input or flags, target not
there, partial run to resolve, lock held, no tenant to write as, no or other AWS credentials, an
engine the drill cannot fail back).

One drill at a time per stack: the target holds the lock (`StackLock`: the sandbox in its state
folder, AWS in an SSM parameter), whatever `--records` says; `--break-lock` takes it from a holder
that is gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from meridian.choices import DrillMode, DrillName, Target
from meridian.errors import EXIT_GATE, EXIT_OK, BadInput, MeridianError
from meridian.output import report_console
from meridian.targets import ExecutionGuard, Explains, LockOwner, StackLock


@dataclass(frozen=True, kw_only=True)
class DrillRequest:
    drill: DrillName
    stack: str
    target: Target
    mode: DrillMode | None = None
    """database-failover only: planned (default) | unplanned."""
    execute: bool = False
    allow_production: bool = False
    evidence: Path | None = None
    resume: bool = False
    abandon: bool = False
    break_lock: bool = False
    """Take the stack's drill lock from its holder (after a human checked that no drill runs)."""
    project_dir: Path | None = None
    state_dir: Path | None = None
    outputs: Path | None = None
    records: Path | None = None
    """Where drill runs are recorded (default <project>/.meridian/drills/<stack>)."""
    signing_key: Path | None = None
    """--signing-key for the evidence bundle; None: $MERIDIAN_SIGNING_KEY, or unsigned when that is unset too."""
    lead_s: float | None = None
    """Seconds the probe writes before the fault (drills with a fault; default 5)."""


def _open(req: DrillRequest, project_dir: Path):
    from meridian.targets import open_target

    options = {"state_dir": req.state_dir} if req.target == "sandbox" else {"outputs": req.outputs}
    return open_target(req.target, req.stack, project_dir, **options)


def run_drill(req: DrillRequest, console: Console | None = None) -> int:
    console = console or report_console()
    from meridian.drills.catalog import build
    from meridian.project import find_project_dir, require_zone
    from meridian.stackconfig import load_validated
    from meridian.targets import TARGET_KINDS, TargetUnavailable, require

    drill = build(req.drill, req.mode or "planned")
    _refuse_flags_it_does_not_take(req, drill)
    if req.target not in TARGET_KINDS:
        raise BadInput(f"unknown target {req.target!r} (allowed: {', '.join(TARGET_KINDS)})")
    project_dir = find_project_dir(req.project_dir)
    require_zone(project_dir, req.stack)
    cfg = load_validated(project_dir, req.stack)
    if req.evidence is not None and not req.execute:
        raise BadInput("--evidence needs --execute: a dry run leaves no drill record to bundle")
    if req.signing_key is not None and req.evidence is None:
        raise BadInput("--signing-key signs the evidence bundle: it needs --evidence DIR")
    if req.execute and cfg.production and not req.allow_production:
        raise BadInput(
            f"stack {req.stack} is marked production (meridian:production: true): a drill takes its primary region "
            f"down; add --allow-production to run it anyway"
        )
    evidence_dir = None
    if req.evidence is not None:
        from meridian.evidence.bundle import prepare_out_dir
        from meridian.evidence.signature import signing_key_path

        evidence_dir = prepare_out_dir(req.evidence)
        signing_key_path(req.signing_key)  # an unusable key is refused before the drill runs, not after

    if not req.execute:
        try:
            target = _open(req, project_dir)
        except TargetUnavailable as exc:
            target = None
            console.print(f"[yellow]note:[/] {escape(str(exc))}; showing the plan without the target's calls")
        print_plan(drill, target, req, console)
        return EXIT_OK

    target = _open(req, project_dir)
    for ability in drill.requires:
        require(target, ability, f"drill {drill.name} needs it; on AWS restore by hand as docs/runbooks/dr-drill.md describes")
    if isinstance(target, ExecutionGuard):  # before any call that changes or even reads the stack
        target.refuse_unsafe(drill.name, promotes=any(o.action == "promote" for s in drill.steps for o in s.ops))
    return _execute(drill, target, cfg, req, project_dir, evidence_dir, console)


def _refuse_failback_at_home(target) -> None:
    """Failback with nothing to fail back from is a wrong request (exit 2, no record), not a failed
    drill: the primary region serves and holds the primary database. Refused only when the target
    says so for certain (an unknown database role is left to the drill's own preflight)."""
    h = target.health()
    if h.serving == "primary" and h.regions["primary"].database == "primary":
        raise BadInput(
            "failback: the stack is home already (the front door serves primary, whose database is the primary): "
            "nothing to fail back; run region-failover or database-failover, which fail back themselves"
        )


def _refuse_flags_it_does_not_take(req: DrillRequest, drill) -> None:
    """A flag a drill ignores would make a run other than the one asked for: refuse it (exit 2)."""
    if req.mode is not None and drill.name != "database-failover":
        raise BadInput(f"--mode applies to database-failover only; drill {drill.name} has one way to run")
    for flag, given in (
        ("--resume", req.resume),
        ("--abandon", req.abandon),
        ("--lead", req.lead_s is not None),
        ("--break-lock", req.break_lock),
    ):
        if given and not req.execute:
            raise BadInput(f"{flag} needs --execute: a dry run neither resumes, abandons, takes the lock nor writes")
    if req.lead_s is not None:
        if "lead" not in {s.name for s in drill.steps}:
            raise BadInput(f"--lead applies to drills with a fault (region-failover, database-failover), not {drill.name}")
        if not 1.0 <= req.lead_s <= 600.0:
            raise BadInput(f"--lead {req.lead_s:g}: the probe's lead before the fault must be 1..600 s")


def print_plan(drill, target, req: DrillRequest, console: Console) -> None:
    console.print(f"[bold]drill {drill.name}[/] on stack {req.stack}, target {req.target}: {drill.description}")
    console.print("DRY RUN: nothing is changed. Add --execute to run it.\n")
    explain = target.explain if isinstance(target, Explains) else None
    for i, step in enumerate(drill.steps, start=1):
        flags = escape(" [irreversible]") if step.irreversible else ""
        console.print(f"[bold]{i}. {step.name}[/]{flags} (timeout {step.timeout_s:.0f} s): {step.purpose}", highlight=False)
        for o in step.ops:
            console.print(f"   -> {o}", highlight=False)
            if explain is not None:
                for call in explain(o.action, *o.args, **dict(o.kwargs)):
                    console.print(f"        {escape(call)}", highlight=False)
        if step.check is not None:
            console.print("   check: reads only (health, probe through the front door)", highlight=False)
        if step.undo:
            console.print(f"   rollback: {', '.join(map(str, step.undo))}", highlight=False)
        if step.safe_state:
            console.print(f"   if a later step fails: {', '.join(map(str, step.safe_state))}", highlight=False)


def _execute(drill, target, cfg, req: DrillRequest, project_dir: Path, evidence_dir: Path | None, console: Console) -> int:
    from meridian.drills import timeline
    from meridian.drills.machine import Run, claim, drills_root, execute, forget, refuse_claim, release, verdict
    from meridian.drills.measure import Objectives
    from meridian.targets import require
    from meridian.targets.lock import drill_ttl_s

    # The sandbox runs the stack's failover timings faster by its time scale; the objectives follow.
    time_scale = cfg.failover.detection_bound_s / target.detection_bound_s()
    objectives = Objectives(
        rto_s=cfg.failover.rto_target_s / time_scale,  # the stack's failover objective, not dr.rto_minutes
        rpo_s=cfg.dr.rpo_minutes * 60 / time_scale,
        time_scale=time_scale,
        # the bound (interval x threshold + TTL) plus one check interval: a fault lands anywhere in
        # the interval before the first failing check (Route 53's checkers and HAProxy's alike)
        detection_s=target.detection_bound_s() + cfg.failover.health_check_interval_s / time_scale,
        restore_rto_s=cfg.dr.rto_minutes * 60 / time_scale,
    )
    # no credentials or tenant keys is a refusal (exit 2, no drill record), not a failed drill
    if not target.tenants():
        raise BadInput(f"the {req.target} target has no tenant to write as: the drill cannot measure anything")
    root = req.records / req.stack if req.records is not None else drills_root(project_dir, req.stack)
    if drill.name == "failback" and not req.resume:
        _refuse_failback_at_home(target)
    locker = require(target, StackLock, "one drill at a time per stack")
    # what the records folder allows (a partial run to resume or abandon, or none) is settled before
    # the stack's lock is touched: a refusal leaves the lock as it was, a crashed run's included
    refuse_claim(root, drill, req.target, resume=req.resume, abandon=req.abandon)
    claimant = LockOwner.new(drill.name, drill_ttl_s([s.timeout_s for s in drill.steps]))
    taken_over = locker.acquire_drill_lock(claimant, resume=req.resume or req.abandon, break_lock=req.break_lock)
    if taken_over:
        console.print(f"[yellow]drill lock:[/] {escape(taken_over)}")
    if req.abandon:  # forget the partial run and stop: abandoning never starts a new drill
        forgotten = forget(root)
        _release_stack_lock(locker, claimant, console)
        console.print(
            f"abandoned partial run {escape(forgotten)} of drill {drill.name} (its records stay in {root}); nothing else "
            f"was done: check the stack (`meridian sandbox status` / the console) and bring it home by hand if it is "
            f"still failed over"
        )
        return EXIT_OK
    try:
        run_dir, state = claim(root, drill, req.target, resume=req.resume)
    except BaseException:
        _release_stack_lock(locker, claimant, console)  # refused (a partial run to resolve): the stack is not ours
        raise
    console.print(f"[bold]drill {drill.name}[/] on {req.stack} ({req.target}), run {state['run_id']}: {drill.description}")
    console.print(
        f"objectives: RTO {objectives.rto_s:.2f} s (failover.rto_target_s), RPO {objectives.rpo_s:.2f} s (dr.rpo_minutes), "
        f"detection {objectives.detection_s:.2f} s (failover detection bound + one check interval), each / time scale {time_scale:g}"
    )
    run = Run(drill, target, req.stack, objectives, run_dir, console, state, lead_s=req.lead_s or 5.0)
    run.save()
    try:
        execute(run)
    finally:
        state = run.state
        if state.get("status") == "running":  # interrupted (Ctrl-C): leave the lock for --resume
            state["status"] = "interrupted"
            run.save()
    outcome, missed = verdict(run)
    doc = timeline.document(
        state,
        stack=req.stack,
        description=drill.description,
        objectives={
            "rto_s": objectives.rto_s,
            "rpo_s": objectives.rpo_s,
            "time_scale": time_scale,
            "detection_s": objectives.detection_s,
            "rto_target_s": cfg.failover.rto_target_s,
            "restore_rto_s": objectives.restore_rto_s,
            "rto_minutes": cfg.dr.rto_minutes,
            "rpo_minutes": cfg.dr.rpo_minutes,
        },
        measured=run.measured,
        verdict=outcome,
        missed=missed,
        log=run.probe_log(),
    )
    files = timeline.write(run_dir, doc)
    rollback_errors = (state.get("rollback") or {}).get("errors")
    if not rollback_errors:
        release(root)
        _release_stack_lock(locker, claimant, console)
    else:
        console.print(
            "[bold red]rollback did not finish:[/] the stack's drill lock stays until it expires "
            f"({time.strftime('%H:%M:%S UTC', time.gmtime(claimant.expires))}); fix the stack, then --resume or --abandon"
        )
    for phase, m in run.measured.items():
        if m.get("measured"):
            rec, loss = m["recovery"], m["data_loss"]
            rto_objective = (objectives.for_restore() if phase == "restore" else objectives).rto_s
            console.print(
                f"{phase}: RTO [bold]{rec['rto_s']} s[/] (objective {rto_objective:.2f} s), "
                f"{len(loss['lost_ids'])} of {loss['acknowledged']} acknowledged writes lost, RPO {loss['rpo_s']} s "
                f"(objective {objectives.rpo_s:.2f} s)"
            )
    for m in missed:
        console.print(f"[bold red]objective missed:[/] {escape(m)}")
    style = "green" if outcome == "passed" else "bold red"
    lost = sum(len(m["data_loss"]["lost_ids"]) for m in run.measured.values() if m.get("measured"))
    rpo = max((m["data_loss"]["rpo_s"] or 0.0 for m in run.measured.values() if m.get("measured")), default=0.0)
    # a pass within the RPO objective may still have lost writes: the last line says so
    within = (
        f" ({lost} acknowledged writes lost, RPO {rpo} s <= {objectives.rpo_s:.2f} s)" if lost and outcome == "passed" else ""
    )
    console.print(f"drill {drill.name}: [{style}]{outcome}[/]{within}; timeline in {run_dir}")
    code = EXIT_OK if outcome == "passed" else EXIT_GATE
    if evidence_dir is not None:
        from meridian.commands.evidence import EvidenceRequest, build

        evidence_code = build(
            EvidenceRequest(stack=req.stack, out=evidence_dir, project_dir=project_dir, signing_key=req.signing_key),
            console,
            drill_files=files,
        )
        code = max(code, evidence_code)
    return code


def _release_stack_lock(locker, claimant, console: Console) -> None:
    """Give the stack's lock back; a release that fails (network, permissions) must not hide the
    drill's verdict: the lock then expires by itself."""
    try:
        locker.release_drill_lock(claimant)
    except (MeridianError, OSError) as exc:
        console.print(
            f"[yellow]the stack's drill lock was not released ({escape(str(exc))}); it expires at "
            f"{time.strftime('%H:%M:%S UTC', time.gmtime(claimant.expires))}[/]"
        )
