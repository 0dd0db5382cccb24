"""`meridian preview`: the offline engine's main job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from components.config import Overrides
from meridian.errors import EXIT_GATE, EXIT_OK, BadInput
from meridian.project import find_project_dir, require_stack
from meridian.stackconfig import load_validated


@dataclass(frozen=True)
class PreviewRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None
    diagram_path: Path | None = None
    policy: bool = True
    bare: bool = False
    tenants: int | None = None


@dataclass
class Prepared:
    """A validated request: where the project is, the config in effect and its overrides."""

    project_dir: Path
    cfg: Any
    overrides: Overrides | None


def prepare(stack: str, project_dir: Path | None, tenants: int | None) -> Prepared:
    """Checks shared by every command that runs the program: bad input exits 2 before any program code runs."""
    project = find_project_dir(project_dir)
    require_stack(project, stack)
    overrides = None
    if tenants is not None:
        from meridian.scale import tenant_overrides

        overrides = tenant_overrides(project, stack, tenants)
    return Prepared(project, load_validated(project, stack, overrides), overrides)


def run_preview(req: PreviewRequest, console: Console | None = None) -> int:
    console = console or Console()
    prep = prepare(req.stack, req.project_dir, req.tenants)
    json_path = writable(req.json_path)
    diagram_path = writable(req.diagram_path)

    from meridian.engine.run import run_program

    if req.bare:
        run = run_program(prep.project_dir, req.stack, record=False, overrides=prep.overrides)
        console.print(f"{run.resource_count} resources in {run.seconds:.2f} s (bare)")
        return EXIT_OK

    from meridian.costmodel import estimate
    from meridian.engine.plan import Plan
    from meridian.render import cost_summary, print_plan

    run = run_program(prep.project_dir, req.stack, record=True, overrides=prep.overrides)
    plan = Plan("meridian", req.stack, run.registrations, run.outputs)
    policy: dict[str, Any] = {"evaluated": False, "reason": "--no-policy" if not req.policy else "no policy pack in this project yet", "violations": []}
    cost = estimate(plan.resource_dicts, prep.cfg, req.stack)

    print_plan(plan, console)
    console.print(cost_summary(cost))
    console.print(f"[bold]{len(plan.custom)}[/] resources in {run.seconds:.2f} s; policy: {policy['reason'] if not policy['evaluated'] else 'evaluated'}")
    if json_path:
        json_path.write_text(json.dumps(plan.to_json(policy, cost.to_json()), indent=1, default=str))
        console.print(f"plan written to {json_path}")
    if diagram_path:
        from meridian.engine.diagram import mermaid

        diagram_path.write_text(mermaid(plan))
        console.print(f"diagram written to {diagram_path}")
    mandatory = [v for v in policy["violations"] if v.get("level") == "mandatory"]
    for problem in cost.problems:
        console.print(f"[bold red]cost gate:[/] {problem}")
    return EXIT_GATE if mandatory or cost.problems else EXIT_OK


def writable(path: Path | None) -> Path | None:
    """Fail on a bad output path before the (slow) program runs, not after."""
    if path is None:
        return None
    parent = path.resolve().parent
    if not parent.is_dir():
        raise BadInput(f"cannot write {path}: directory {parent} does not exist")
    if path.is_dir():
        raise BadInput(f"cannot write {path}: it is a directory")
    return path.resolve()
