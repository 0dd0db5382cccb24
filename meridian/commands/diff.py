"""`meridian diff BASE HEAD` (and `meridian preview --diff BASE`): what a change does to a stack's plan."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from meridian.commands.preview import writable
from meridian.engine.plandiff import PlanDiff, diff_plans, load_plan, to_markdown
from meridian.errors import EXIT_OK, BadInput


@dataclass(frozen=True)
class DiffRequest:
    base: Path
    head: Path
    markdown_path: Path | None = None
    json_path: Path | None = None
    title: str | None = None


def run_diff(req: DiffRequest, console: Console | None = None) -> int:
    console = console or Console()
    markdown_path, json_path = writable(req.markdown_path), writable(req.json_path)
    diff = diff_plans(load_plan(req.base, "base"), load_plan(req.head, "head"))
    markdown = to_markdown(diff, req.title)
    show(diff, markdown, console)
    if markdown_path:
        markdown_path.write_text(markdown)
        console.print(f"Markdown written to {markdown_path}")
    if json_path:
        json_path.write_text(json.dumps(diff.to_json(), indent=1))
        console.print(f"diff JSON written to {json_path}")
    return EXIT_OK


def show(diff: PlanDiff, markdown: str, console: Console) -> None:
    """The comment as the reviewer will see it, rendered in the terminal."""
    from rich.markdown import Markdown

    console.print(Markdown(markdown.split("\n", 1)[1]))  # without the HTML marker line


def load_base(path: Path, stack: str, bare: bool) -> dict[str, Any]:
    """`meridian preview --diff BASE`: read and check the base plan before the (slow) program runs."""
    if bare:
        raise BadInput("--diff needs the plan: it cannot be combined with --bare")
    base = load_plan(path, "base")
    if base["stack"] != stack:
        raise BadInput(f"base plan {path} is of stack '{base['stack']}', not '{stack}': diff a stack against its own base plan")
    return base


def print_against(base: dict[str, Any], head: dict[str, Any], console: Console) -> None:
    """The plan just made against the base plan, as plain JSON values (exactly as `--json` would write it)."""
    diff = diff_plans(base, json.loads(json.dumps(head, default=str)))
    console.rule("against the base plan")
    show(diff, to_markdown(diff), console)
