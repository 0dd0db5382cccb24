"""`meridian cost`: the offline monthly estimate of a stack against its caps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from meridian.commands.common import prepare, writable
from meridian.errors import EXIT_GATE, EXIT_OK
from meridian.output import Format, report_console


@dataclass(frozen=True, kw_only=True)
class CostRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None
    tenants: int | None = None
    format: Format = Format.text


def run_cost(req: CostRequest, console: Console | None = None) -> int:
    console = console or report_console()
    notes = console if req.format == Format.text else report_console(stderr=True)  # stdout: the document only
    prep = prepare(req.stack, req.project_dir, req.tenants)
    json_path = writable(req.json_path)

    from meridian.costmodel import estimate
    from meridian.engine.plan import Plan
    from meridian.engine.run import run_program
    from meridian.render import cost_markdown, print_cost

    with notes.status(f"running the {req.stack} program under mocks"):
        run = run_program(prep.project_dir, req.stack, record=True, overrides=prep.overrides)
    plan = Plan("meridian", req.stack, run.registrations, run.outputs)
    report = estimate(plan.resource_dicts, prep.cfg, req.stack)
    document = json.dumps(report.to_json(), indent=1) + "\n"
    if req.format == Format.json:
        console.out(document, highlight=False, end="")
    elif req.format == Format.markdown:
        console.out(cost_markdown(report), highlight=False, end="")
    else:
        print_cost(report, console)
        print_options(console)
    if json_path:
        json_path.write_text(document)
        notes.print(f"estimate written to {json_path}")
    for problem in report.problems:
        notes.print(f"[bold red]over cap:[/] {escape(problem)}")
    return EXIT_GATE if report.problems else EXIT_OK


def print_options(console: Console) -> None:
    from meridian.costmodel import options_not_in_plan

    for option in options_not_in_plan():
        console.print(
            f"option, not in the plan: {escape(option.name)} ${option.monthly_usd:,.2f}/month ({escape(option.detail)})",
            highlight=False,
        )
