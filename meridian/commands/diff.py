"""`meridian diff BASE HEAD` (and `meridian preview --diff BASE`): what a change does to a stack's plan."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from meridian.commands.common import show_diff, writable
from meridian.engine.plandiff import diff_plans, load_plan, to_markdown
from meridian.errors import EXIT_GATE, EXIT_OK
from meridian.output import Format, report_console


@dataclass(frozen=True, kw_only=True)
class DiffRequest:
    base: Path
    head: Path
    markdown_path: Path | None = None
    json_path: Path | None = None
    title: str | None = None
    format: Format = Format.text
    strict: bool = False  # exit 1 on what blocks `pulumi up` (CI's gate)


def run_diff(req: DiffRequest, console: Console | None = None) -> int:
    console = console or report_console()
    notes = console if req.format == Format.text else report_console(stderr=True)  # stdout: the document only
    markdown_path, json_path = writable(req.markdown_path), writable(req.json_path)
    diff = diff_plans(load_plan(req.base, "base"), load_plan(req.head, "head"))
    markdown = to_markdown(diff, req.title)
    document = json.dumps(diff.to_json(), indent=1)
    if req.format == Format.text:
        show_diff(markdown, console)
    else:
        console.out(document + "\n" if req.format == Format.json else markdown, highlight=False, end="")
    if markdown_path:
        markdown_path.write_text(markdown)
        notes.print(f"Markdown written to {markdown_path}")
    if json_path:
        json_path.write_text(document)
        notes.print(f"diff JSON written to {json_path}")
    return EXIT_GATE if req.strict and diff.blocked else EXIT_OK
