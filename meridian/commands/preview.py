"""`meridian preview`: the offline engine's main job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from meridian.errors import EXIT_GATE, EXIT_OK
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


def run_preview(req: PreviewRequest, console: Console | None = None) -> int:
    console = console or Console()
    project_dir = find_project_dir(req.project_dir)
    require_stack(project_dir, req.stack)
    load_validated(project_dir, req.stack)  # bad config: exit 2 with every problem, before any program code runs
    json_path = _writable(req.json_path)
    diagram_path = _writable(req.diagram_path)

    from meridian.engine.run import run_program

    if req.bare:
        run = run_program(project_dir, req.stack, record=False)
        console.print(f"{run.resource_count} resources in {run.seconds:.2f} s (bare)")
        return EXIT_OK

    from meridian.engine.plan import Plan
    from meridian.render import print_plan

    run = run_program(project_dir, req.stack, record=True)
    plan = Plan("meridian", req.stack, run.registrations, run.outputs)
    policy: dict[str, Any] = {"evaluated": False, "reason": "--no-policy" if not req.policy else "no policy pack in this project yet", "violations": []}
    cost: dict[str, Any] = {"evaluated": False, "reason": "no cost model in this project yet"}

    print_plan(plan, console)
    console.print(f"[bold]{len(plan.custom)}[/] resources in {run.seconds:.2f} s; policy: {policy['reason'] if not policy['evaluated'] else 'evaluated'}")
    if json_path:
        json_path.write_text(json.dumps(plan.to_json(policy, cost), indent=1, sort_keys=False, default=str))
        console.print(f"plan written to {json_path}")
    if diagram_path:
        from meridian.engine.diagram import mermaid

        diagram_path.write_text(mermaid(plan))
        console.print(f"diagram written to {diagram_path}")
    mandatory = [v for v in policy["violations"] if v.get("level") == "mandatory"]
    return EXIT_GATE if mandatory else EXIT_OK


def _writable(path: Path | None) -> Path | None:
    """Fail on a bad output path before the (slow) program runs, not after."""
    from meridian.errors import BadInput

    if path is None:
        return None
    parent = path.resolve().parent
    if not parent.is_dir():
        raise BadInput(f"cannot write {path}: directory {parent} does not exist")
    if path.is_dir():
        raise BadInput(f"cannot write {path}: it is a directory")
    return path.resolve()
