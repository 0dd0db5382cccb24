"""`meridian chaos SCENARIO`: a Chaos Toolkit experiment under load, judged against slo.yaml; exit 1 on failure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meridian.choices import Target
from meridian.errors import BadInput, GateFailed
from meridian.output import report_console
from meridian.project import find_project_dir, require_zone
from meridian.reports import report_dir


class ChaosFailed(GateFailed):
    """The scenario broke an objective, the chaos budget, or the steady state (exit 1)."""


@dataclass(frozen=True, kw_only=True)
class ChaosRequest:
    scenario: str
    stack: str
    target: Target = Target.sandbox
    users: int = 20
    report_dir: Path | None = None
    slo_path: Path | None = None
    state_dir: Path | None = None
    project_dir: Path | None = None
    dry_run: bool = False


def run_chaos(req: ChaosRequest) -> int:

    from meridian.chaos import run as chaosrun
    from meridian.slo import gate, objectives
    from meridian.targets import open_target

    chaosrun.load_experiment(req.scenario)  # unknown scenario: exit 2 before anything starts
    if not 1 <= req.users <= 1000:
        raise BadInput(f"--users must be 1..1000 (got {req.users})")
    project_dir = find_project_dir(req.project_dir)
    require_zone(project_dir, req.stack)
    slo = objectives.load(project_dir, req.stack, req.slo_path)
    objectives.require_users_for_every_tenant(slo, req.users)
    options = {"state_dir": req.state_dir} if req.target == "sandbox" and req.state_dir else {}
    target = open_target(req.target, req.stack, project_dir, **options)
    console = report_console()
    if req.dry_run:
        from rich.markup import escape

        console.print(f"chaos {req.scenario} on {target.kind} ({req.stack}), dry run: nothing is done")
        from meridian.stackconfig import load_validated

        tenants = chaosrun.experiment_tenants(load_validated(project_dir, req.stack), req.stack)
        for phase, activity, lines in chaosrun.dry_run(req.scenario, target, tenants):
            console.print(f"  {phase:<8} {activity}")
            for line in lines:
                console.print(f"             {escape(line)}")
        return 0
    out = req.report_dir or report_dir(project_dir, f"chaos-{req.scenario}", req.stack)
    console.print(f"chaos {req.scenario}: {req.stack} on {target.kind} at {target.endpoint()}, {req.users} users")
    outcome = chaosrun.run_scenario(
        req.scenario,
        target,
        project_dir,
        slo,
        out,
        console=console,
        users=req.users,
        state_dir=req.state_dir,
        slo_path=req.slo_path,
    )
    result = gate.GateResult(outcome.verdict, outcome.paths, 0)
    gate.print_verdict(console, result)
    m = outcome.metrics
    if "mttr_s" in m:
        console.print(fault_summary(m))
    else:  # the journal's status can say completed when nothing was injected
        console.print(f"no fault window: the method never ran (journal {m['journal_status']})")
    if not outcome.verdict.passed:
        lines = [f"chaos {req.scenario} failed:"] + [f"  {c.message}" for c in outcome.verdict.failures]
        lines += [f"  {n}" for n in outcome.verdict.notes] + [f"report: {outcome.paths['md']}"]
        raise ChaosFailed("\n".join(lines))
    console.print(f"[green]chaos {req.scenario} passed[/]")
    return 0


def fault_summary(m: dict) -> str:
    """The fault window in words: what was detected when, and what users saw (no `None s`, no
    "recovered after 0.0 s" when nothing failed)."""
    detect = m.get("detect_s")
    detected = "never detected by the health checks" if detect is None else f"detected after {detect:.2f} s"
    if m.get("first_error_s") is None:
        users = "no request failed, so nothing to recover from"
    elif m.get("recovery_s") is None:
        users = f"first error after {m['first_error_s']:.2f} s, no good answer after the last error within the run"
    else:
        users = f"first error after {m['first_error_s']:.2f} s, recovered after {m['recovery_s']:.2f} s"
    return (
        f"fault window {m['mttr_s']:.2f} s: {detected} (detection bound {m['detection_bound_s']:g} s); "
        f"{users}; journal {m['journal_status']}"
    )
