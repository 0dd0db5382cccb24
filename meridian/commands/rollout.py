"""`meridian rollout`: shift a region's traffic to a canary version in steps, judge the canary's own
requests at every step, promote or roll back; `--rollback` restores 100 % stable at once."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from meridian.choices import Target
from meridian.errors import BadInput
from meridian.output import Progress, report_console
from meridian.project import find_project_dir, require_zone

DEFAULT_VERSIONS_FILE = Path("loadtests") / "versions.yaml"
FAULT_KEYS = ("latency_ms", "error_rate")


@dataclass(frozen=True, kw_only=True)
class RolloutRequest:
    stack: str
    target: Target = Target.sandbox
    version: str = ""
    steps: str | None = None
    region_order: str = "dr,primary"
    dry_run: bool = False
    rollback: bool = False
    window_s: float | None = None
    report_dir: Path | None = None
    fault: str | None = None
    versions_file: Path | None = None
    min_samples: int | None = None
    users: int = 40
    evidence_dir: Path | None = None
    signing_key: Path | None = None
    digest: str | None = None
    slo_path: Path | None = None
    state_dir: Path | None = None
    project_dir: Path | None = None


def parse_fault(text: str) -> dict:
    """`latency_ms=600,error_rate=0.05` -> {"latency_ms": 600.0, "error_rate": 0.05}."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or key not in FAULT_KEYS:
            raise BadInput(f"--fault {text!r}: expected key=value pairs with keys {', '.join(FAULT_KEYS)} (e.g. latency_ms=600)")
        try:
            out[key] = float(value)
        except ValueError:
            raise BadInput(f"--fault {key}={value!r}: not a number") from None
    return _checked_fault(out, "--fault")


def _checked_fault(fault: dict, where: str) -> dict:
    from service.settings import VersionFault

    unknown = sorted(set(fault) - set(FAULT_KEYS))
    if unknown:
        raise BadInput(f"{where}: unknown fault key(s) {', '.join(unknown)} (allowed: {', '.join(FAULT_KEYS)})")
    try:
        VersionFault(**fault)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{where}: {exc}") from None
    return {k: float(fault.get(k, 0.0)) for k in FAULT_KEYS}


def version_fault(version: str, versions_file: Path) -> dict | None:
    """The rehearsal fault the versions file gives `version` (None: it runs clean)."""
    if not versions_file.exists():
        return None
    try:
        with versions_file.open(encoding="utf-8") as stream:  # a named stream: errors name the file
            doc = yaml.safe_load(stream) or {}
    except yaml.YAMLError as exc:
        raise BadInput(f"{versions_file}: not readable YAML: {exc}") from None
    versions = doc.get("versions") if isinstance(doc, dict) else None
    if not isinstance(versions, dict):
        raise BadInput(f"{versions_file}: expected a `versions:` mapping of version -> {{fault: {{latency_ms, error_rate}}}}")
    entry = versions.get(version)
    if entry is None:
        return None
    if not isinstance(entry, dict) or set(entry) - {"fault", "description"}:
        raise BadInput(f"{versions_file}: versions.{version}: allowed keys are fault, description")
    fault = entry.get("fault")
    if not fault:
        return None
    if not isinstance(fault, dict):
        raise BadInput(f"{versions_file}: versions.{version}.fault: a mapping of {', '.join(FAULT_KEYS)}")
    return _checked_fault(fault, f"{versions_file}: versions.{version}.fault")


def run_rollout(req: RolloutRequest) -> int:

    from meridian.rollout import drive
    from meridian.rollout.plan import RolloutPlan, check_steps, parse_region_order, parse_steps
    from meridian.rollout.state import state_path
    from meridian.slo import objectives
    from meridian.stackconfig import load_validated
    from meridian.targets import TARGET_KINDS, CanaryHost, RegionDoors, open_target

    console = report_console()
    if req.target not in TARGET_KINDS:
        raise BadInput(f"unknown target {req.target!r} (allowed: {', '.join(TARGET_KINDS)})")
    if not req.rollback and not req.version:
        raise BadInput("--version is required (the version to roll out), unless --rollback")
    if req.version and not all(c.isalnum() or c in "._-" for c in req.version):
        raise BadInput(f"--version {req.version!r}: letters, digits, '.', '_' and '-' only")
    if req.window_s is not None and not 0.5 <= req.window_s <= 86400:
        raise BadInput(f"--window must be 0.5..86400 s (got {req.window_s:g})")
    if req.min_samples is not None and not 1 <= req.min_samples <= 100_000:
        raise BadInput(f"--min-samples must be 1..100000 (got {req.min_samples})")
    if not 1 <= req.users <= 10_000:
        raise BadInput(f"--users must be 1..10000 (got {req.users})")
    order = parse_region_order(req.region_order)
    project_dir = find_project_dir(req.project_dir)
    require_zone(project_dir, req.stack)
    # every input file read before any is refused: the stack config, the versions file and the SLO
    # file each name their own mistakes in one run (exit 2), not one per run
    refused: list[BadInput] = []

    def attempt(read):
        try:
            return read()
        except BadInput as exc:
            refused.append(exc)
            return None

    cfg = attempt(lambda: load_validated(project_dir, req.stack))
    steps = attempt(lambda: parse_steps(req.steps) if req.steps else cfg and check_steps(cfg.rollout.steps, "rollout.steps"))
    fault = attempt(lambda: parse_fault(req.fault)) if req.fault else None
    if fault is None and not req.fault and req.version and req.target == "sandbox":
        fault = attempt(lambda: version_fault(req.version, req.versions_file or project_dir / DEFAULT_VERSIONS_FILE))
    slo_file = req.slo_path or (project_dir / (cfg.rollout.slo_file if cfg else objectives.DEFAULT_SLO_FILE))
    slo_spec = attempt(lambda: objectives.read_slo_file(slo_file, objectives.shown_path(slo_file, project_dir)))
    if refused:
        raise BadInput("\n".join(str(exc) for exc in refused))
    if fault is not None and req.target != "sandbox":
        raise BadInput("--fault / a versions-file fault is a sandbox rehearsal; on AWS the canary is what `pulumi up` deployed")
    from meridian.evidence.signature import signing_key_path

    key_path = signing_key_path(req.signing_key)
    slo = objectives.spec_of(project_dir, req.stack, cfg, slo_file, slo_spec)
    options = {"state_dir": req.state_dir} if req.target == "sandbox" and req.state_dir else {}
    target = open_target(req.target, req.stack, project_dir, **options)
    drive.require_canary_api(target)
    # a sandbox given its own state dir keeps its rollout record there too (it describes that sandbox)
    spath = state_path(project_dir, req.stack, req.state_dir if req.target == "sandbox" else None)

    if req.rollback:
        return _rollback(console, target, spath)

    window = req.window_s if req.window_s is not None else cfg.rollout.pause_s / target.time_scale()
    min_samples = req.min_samples if req.min_samples is not None else drive.judgelib.DEFAULT_MIN_SAMPLES
    if isinstance(target, CanaryHost):
        digest = target.canary_digest(req.version, fault)
    else:
        digest = req.digest or "unknown (pass --digest: the image digest `pulumi up` deployed)"
    plan = RolloutPlan(req.stack, target.kind, req.version, digest, steps, order, window, min_samples)
    console.print(
        f"Rollout of [bold]{req.version}[/] on {req.stack} ({target.kind}): steps {', '.join(f'{s} %' for s in steps)}, "
        f"regions {' -> '.join(order)}, window {window:g} s, >= {min_samples} canary requests per step"
        + (f", rehearsal fault {', '.join(f'{k} {v:g}' for k, v in fault.items())}" if fault else "")
    )
    if req.dry_run:
        return _dry_run(console, target, plan, spath)

    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = req.report_dir or project_dir / ".meridian" / "reports" / f"rollout-{req.stack}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    runs: list = []

    def load_for(role: str):
        from meridian.slo import run as loadrun

        door = target.region_endpoint(role) if isinstance(target, RegionDoors) else target.endpoint()
        cap = min(86400.0, window * drive.judgelib.HOLD_FACTOR * len(steps) + 120)
        spec = loadrun.LoadSpec("flat", req.users, float(req.users), cap)
        run = loadrun.start(target, project_dir, spec, out / f"load-{role}", slo_path=slo_file, host=door)
        runs.append(run)

        def stop() -> None:
            try:
                run.end_now()
            except loadrun.LoadFailed:
                run.stop()
            finally:
                loadrun.finish(run)

        return run.out_dir / "live.csv", stop

    def prepare_region(role: str) -> None:
        if isinstance(target, CanaryHost):
            res = target.start_canary(role, req.version, fault)
            console.print(f"  {role}: {res.detail} ({res.seconds:.1f} s)")

    from rich.markup import escape

    status = Progress(console)

    def on_event(kind: str, data: dict) -> None:
        if kind == "reconcile":
            console.print(f"  state: {data['decision']}: {data['reason']}")
        elif kind == "reconciled":
            shifted = ", ".join(f"{m['role']} {m['from_percent']} % -> {m['to_percent']} %" for m in data["moves"])
            console.print(
                f"  before step 1: {data['version']}'s canary traffic back to the stable image ({shifted}) "
                f"in {data['seconds'] * 1000:.0f} ms; canary weights now {drive.fmt_weights(data['live'])}"
            )
        elif kind == "step":
            step = data["step"]
            console.print(
                f"  step {step.index + 1}: {step.role}: canary {data['before']} % -> {step.percent} % ({plan.version}); "
                + (
                    f"the stable image serves the other {100 - step.percent} %"
                    if step.percent < 100
                    else "the stable image serves none"
                )
            )
            status.update(f"step {step.index + 1}: {step.role} {step.percent} % set and read back; holding")
            status.start()
        elif kind == "look":
            step, j = data["step"], data["judgement"]
            clock = drive.judgelib.hold_clock(
                data["elapsed"], window, data["max_hold"], short_of_samples=j.canary_judged < plan.min_samples
            )
            status.update(f"step {step.index + 1}: {step.role} {step.percent} %, {clock}: {escape(j.reason)}")
        elif kind == "judged":
            status.stop()
            r = data["record"]
            colour = {"promote": "green", "rollback": "red"}.get(r.decision, "yellow")
            console.print(
                f"  step {r.index + 1} {r.role} {r.percent} %: [{colour}]{r.decision}[/] after {r.ended_at - r.started_at:.1f} s; "
                f"canary {drive.judgelib.fmt_summary(r.canary)}; stable {drive.judgelib.fmt_summary(r.stable)}"
            )

    runner = drive.Runner(target, plan, slo, spath, load_for, prepare_region, on_event)
    try:
        outcome = runner.run()
    finally:
        status.stop()
    if outcome.decision == "done":
        console.print(f"[green]{outcome.reason}[/]: nothing to do")
        return 0
    if outcome.decision == "rolled_back" and isinstance(target, CanaryHost):
        for role in order:  # the sandbox's bad version serves nothing at 0 %: its process goes too
            target.stop_canary(role)
    doc = _report_doc(plan, outcome, slo, project_dir)
    from meridian.rollout import provenance
    from meridian.rollout import report as reportlib

    evidence = req.evidence_dir or project_dir / ".meridian" / "evidence" / f"rollout-{req.stack}-{stamp}"
    record = provenance_record(plan, outcome, project_dir)
    prov_path = provenance.write_record(evidence, record, key_path=key_path)
    # where the record is, from the report's own folder: a report read elsewhere still finds it
    doc["provenance"] = os.path.relpath(prov_path, out)
    paths = reportlib.write(out, doc, outcome.samples, req.version)
    console.print(f"report: {paths['md']}  provenance: {prov_path}{' (signed)' if key_path else ''}")
    if outcome.decision == "rolled_back":
        rb = outcome.rollback
        raise drive.RolledBack(
            f"rolled back at step {rb['step']} ({rb['role']} {rb['percent']} %): {outcome.reason.split(': ', 1)[-1]}; "
            f"canary at 0 % {rb['onset_to_zero_s']:.2f} s after it got traffic; report: {paths['md']}"
        )
    console.print(f"[green]{req.version} promoted to 100 % in {', '.join(order)}[/]")
    return 0


def _report_doc(plan, outcome, slo, project_dir: Path) -> dict:
    from dataclasses import asdict

    return {
        "kind": "meridian-rollout",
        "plan": plan.to_dict(),
        "plan_sha256": plan.sha256,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "objectives": asdict(slo.objectives),
        "steps": [s.to_dict() for s in outcome.steps],
        "rollback": outcome.rollback,
        "traffic_moves": outcome.moves,
    }


def provenance_record(plan, outcome, project_dir: Path) -> dict:
    from meridian.evidence.bundle import git_revision
    from meridian.rollout import drive

    return {
        "kind": "meridian-rollout-provenance",
        "version": plan.version,
        "digest": plan.digest,
        "stack": plan.stack,
        "target": plan.target,
        "rollout_plan_sha256": plan.sha256,
        "plan": plan.to_dict(),
        "source": git_revision(project_dir),
        "steps": [
            {
                "step": s.index + 1,
                "region": s.role,
                "weight_percent": s.percent,
                "window_s": s.window_s,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "decision": s.decision,
                "slo": {"canary": s.canary, "stable": s.stable, "reason": s.reason},
            }
            for s in outcome.steps
        ],
        "decision": outcome.decision,
        "reason": outcome.reason,
        "rollback": outcome.rollback or None,
        "traffic_moves": outcome.moves,
        "ran_by": drive.actor(),
        "finished_at": drive.now_iso(),
    }


def _dry_run(console, target, plan, spath: Path) -> int:
    from meridian.rollout import drive
    from meridian.rollout.plan import weights_at
    from meridian.rollout.state import load, reconcile

    steps = plan.steps_list()
    live = target.canary_weights()
    decision = reconcile(load(spath), live, plan.version, len(steps))
    console.print(f"  live canary weights {drive.fmt_weights(live)}; state {spath}: {decision.kind} ({decision.reason})")
    for step in steps:
        console.print(
            f"  step {step.index + 1}: {step.label} -> canary weights {drive.fmt_weights(weights_at(steps, step.index))}, "
            f"hold {plan.window_s:g} s"
        )
    console.print("dry run: nothing changed")
    return 0


def _rollback(console, target, spath: Path) -> int:
    from meridian.rollout import drive
    from meridian.rollout.state import load, save
    from meridian.targets import CanaryHost

    before = target.canary_weights()
    seconds, after = drive.rollback_all(target)
    if isinstance(target, CanaryHost):
        for role in after:
            target.stop_canary(role)
    state = load(spath)
    if state is not None:
        state.phase, state.applied, state.updated_at = "rolled_back", after, drive.now_iso()
        state.reason = f"--rollback (was {drive.fmt_weights(before)})"
        save(spath, state)

    console.print(
        f"[green]rolled back[/]: canary weights {drive.fmt_weights(before)} -> {drive.fmt_weights(after)} "
        f"in {seconds * 1000:.0f} ms; "
        "the stable image serves everything"
    )
    return 0
