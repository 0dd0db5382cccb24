"""`meridian slo`: run the load suite against a target, judge it on exact percentiles, report; exit 1 on breach."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meridian.choices import Shape, Target
from meridian.errors import GateFailed
from meridian.output import report_console
from meridian.project import find_project_dir, require_zone
from meridian.reports import report_dir


class SloBreached(GateFailed):
    """An objective was missed (exit 1); the message names it and by how much."""


@dataclass(frozen=True, kw_only=True)
class SloRequest:
    stack: str
    target: Target = Target.sandbox
    shape: Shape = Shape.steady
    users: int = 20
    spawn_rate: float = 10.0
    duration_s: float = 60.0
    slo_path: Path | None = None
    report_dir: Path | None = None
    workers: int = 0
    state_dir: Path | None = None
    project_dir: Path | None = None


def not_proven_line(verdict) -> str:
    """What a passing run did not prove (watched objectives short of evidence), for the headline."""
    if not verdict.not_proven:
        return ""
    from rich.markup import escape  # route names carry [tenant] and [id]

    return escape(" (" + "; ".join(c.message for c in verdict.not_proven) + ")")


def breach_message(verdict, paths, advice: str = "") -> str:
    head = "not enough evidence: the SLO is not proven" if verdict.not_enough_evidence else "SLO breached"
    lines = [f"{head}:"]
    for outcome, checks in verdict.unmet():  # each count is the list under it (and the table's rows)
        lines.append(f"  {len(checks)} objective(s) {outcome}:")
        lines += [f"    {c.message}" for c in checks]
    lines += [f"  note: {n}" for n in verdict.notes]
    lines.append(f"report: {paths['md']}")
    if advice:
        lines.append(advice)
    return "\n".join(lines)


def run_slo(req: SloRequest) -> int:

    from meridian.slo import gate, objectives
    from meridian.slo.run import LoadSpec
    from meridian.targets import open_target

    load = LoadSpec(req.shape, req.users, req.spawn_rate, req.duration_s, req.workers)  # validates first
    project_dir = find_project_dir(req.project_dir)
    require_zone(project_dir, req.stack)
    slo = objectives.load(project_dir, req.stack, req.slo_path)
    objectives.require_users_for_every_tenant(slo, load.users)
    options = {"state_dir": req.state_dir} if req.target == "sandbox" and req.state_dir else {}
    target = open_target(req.target, req.stack, project_dir, **options)
    out = req.report_dir or report_dir(project_dir, "slo", req.stack)
    console = report_console()
    console.print(
        f"SLO gate: {req.stack} on {target.kind} at {target.endpoint()}: {load.shape}, {load.users} users, "
        f"{load.duration_s:g} s{f', {load.workers} workers' if load.workers else ''}"
    )
    result = gate.run_gate(target, project_dir, slo, load, out, console=console, slo_path=req.slo_path)
    gate.print_verdict(console, result)
    if not result.verdict.passed:
        raise SloBreached(breach_message(result.verdict, result.paths))
    console.print(f"[green]SLO met[/]{not_proven_line(result.verdict)}")
    return 0
