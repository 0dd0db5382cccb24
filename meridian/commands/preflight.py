"""`meridian preflight`: run the program offline and judge the plan against what only `up` would reveal."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from meridian.errors import EXIT_GATE, EXIT_OK
from meridian.output import Progress, report_console


@dataclass(frozen=True, kw_only=True)
class PreflightRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None
    tenants: int | None = None
    online: bool = False


def run_preflight(req: PreflightRequest, console: Console | None = None) -> int:
    from meridian.commands.common import prepare, writable

    console = console or report_console()
    prep = prepare(req.stack, req.project_dir, req.tenants)
    json_path = writable(req.json_path)

    from meridian.engine.plan import Plan
    from meridian.engine.run import run_program
    from meridian.preflight.checks import Context, run_checks
    from meridian.preflight.run import print_report, summary_line, to_json

    with Progress(console, f"running the {req.stack} program offline"):
        run = run_program(prep.project_dir, req.stack, record=True, overrides=prep.overrides)
    plan = Plan("meridian", req.stack, run.registrations, run.outputs)
    results = run_checks(plan, prep.cfg, prep.project_dir)
    if req.online:
        import boto3

        from meridian.preflight.online import Aws, run_online_checks

        with Progress(console, f"asking AWS about {req.stack} (read-only)"):
            online = run_online_checks(Context.of(plan, prep.cfg, prep.project_dir), Aws(boto3.session.Session()))
        asked = {r.check for r in online}  # an offline check asked again online (image: ECR's platforms) is replaced
        results = [r for r in results if r.check not in asked] + online
    print_report(results, console)
    console.print(f"preflight of {req.stack} ({len(plan.custom)} resources): {summary_line(results)}")
    if json_path:
        json_path.write_text(json.dumps(to_json(results), indent=1))
        console.print(f"preflight written to {json_path}")
    return EXIT_OK if all(r.passed for r in results) else EXIT_GATE
