"""`meridian teardown`: what stops `pulumi destroy` of a stack, for how long, and the steps, in order.

A dry run, offline: it runs the program under mocks and reads the plan and the config (no AWS is
called, nothing is deleted). Exit 0 when every blocker clears with time and the steps; 1 when a
vault is locked in compliance mode, which makes the stack undeletable for good once its grace has
passed, or when a platform still has cells (listed in its `cells.names`, or a cell file naming it),
which must be destroyed first; 2 on bad input.
"""

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
class TeardownRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None
    format: Format = Format.text


def run_teardown(req: TeardownRequest, console: Console | None = None) -> int:
    console = console or report_console()
    notes = console if req.format == Format.text else report_console(stderr=True)  # stdout: the document only
    prep = prepare(req.stack, req.project_dir, None)
    json_path = writable(req.json_path)

    from meridian.engine.plan import Plan
    from meridian.engine.run import run_program
    from meridian.preflight.teardown import analyze
    from stackconfig.zone import cells_of

    with notes.status(f"running the {req.stack} program under mocks"):
        run = run_program(prep.project_dir, req.stack, record=True, overrides=prep.overrides)
    plan = Plan("meridian", req.stack, run.registrations, run.outputs)
    cells = () if prep.cfg.platform else (*prep.cfg.cells.names, *(c.stack for c in cells_of(prep.project_dir, req.stack)))
    report = analyze(plan.resource_dicts, prep.cfg, req.stack, cells)
    document = json.dumps(report.to_json(), indent=1) + "\n"
    if req.format == Format.json:
        console.out(document, highlight=False, end="")
    elif req.format == Format.markdown:
        console.out(teardown_markdown(report), highlight=False, end="")
    else:
        print_teardown(report, console)
    if json_path:
        json_path.write_text(document)
        notes.print(f"teardown written to {json_path}")
    for b in report.permanent:
        notes.print(f"[bold red]cannot always be torn down:[/] {escape(b.wait)}", highlight=False)
    if report.cells:
        notes.print(
            f"[bold red]destroy the cells first:[/] {escape(', '.join(b.name for b in report.cells))} "
            f"stand on {escape(req.stack)} (step 1)",
            highlight=False,
        )
    return EXIT_GATE if report.permanent or report.cells else EXIT_OK


def _summary(report) -> list[str]:
    lock = (
        "governance (removable)"
        if report.vault_lock_changeable_days is None
        else f"compliance after {report.vault_lock_changeable_days} days (then permanent)"
    )
    counts: dict[str, int] = {}
    for b in report.blockers:
        counts[b.kind] = counts.get(b.kind, 0) + 1
    return [
        f"teardown of {report.stack} (dry run, from the plan; nothing was deleted): "
        f"{'production' if report.production else 'not production'}, vault lock {lock}, "
        f"force delete of buckets and images {'on' if report.force_delete else 'off'}",
        "blockers: " + ", ".join(f"{kind} x{n}" for kind, n in sorted(counts.items())),
    ]


def print_teardown(report, console: Console) -> None:
    for line in _summary(report):
        console.print(escape(line), highlight=False, soft_wrap=True)
    for i, (step, blockers) in enumerate(report.steps(), start=1):
        console.print(f"\n[bold]{i}. {escape(step.title)}[/]: {escape(step.how)}", highlight=False, soft_wrap=True)
        shown = blockers if step.key != "unprotect" else []
        for b in shown:
            where = f" ({b.region})" if b.region else ""
            console.print(f"   - {escape(b.name)}{where}: {escape(b.blocks)}; {escape(b.wait)}", highlight=False, soft_wrap=True)
        if step.key == "unprotect":
            console.print(
                f"   {len(blockers)} protected resources (their URNs: --format json or --json PATH, key `blockers`, "
                "kind `protected`)",
                highlight=False,
            )


def teardown_markdown(report) -> str:
    lines = [f"## Teardown of `{report.stack}`", "", *(f"{line}  " for line in _summary(report)), ""]
    for i, (step, blockers) in enumerate(report.steps(), start=1):
        lines += [f"{i}. **{step.title}**: {step.how}"]
        if step.key == "unprotect":
            lines += [f"   - {len(blockers)} protected resources"]
            continue
        lines += [f"   - `{b.name}`{f' ({b.region})' if b.region else ''}: {b.blocks}; {b.wait}" for b in blockers]
    return "\n".join(lines) + "\n"
