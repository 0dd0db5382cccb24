"""What several commands share, below all of them: preparing a stack run, checking output paths,
printing a policy report, reading a base plan and showing a plan diff.

Commands import from here, never from each other, so `preview`, `policy`, `diff`, `cost`,
`preflight` and `evidence` stay independent rooms.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from meridian.errors import BadInput
from meridian.output import section
from meridian.project import find_project_dir, require_stack
from meridian.stackconfig import load_validated
from stackconfig import Overrides


@dataclass(frozen=True, kw_only=True)
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
    return Prepared(project_dir=project, cfg=load_validated(project, stack, overrides), overrides=overrides)


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


# --- the policy report ---------------------------------------------------------------------------

_ORDER = {"mandatory": 0, "advisory": 1, "remediate": 2, "disabled": 3}
UNVERIFIABLE = "unverifiable at preview: "


def policy_line(report) -> str:
    mandatory, advisory = len(report.mandatory), len(report.violations) - len(report.mandatory)
    t = report.timings
    cpu = (
        f"; analyzer {t.analyzer_cpu_s:.2f} s CPU, {t.hidden_cpu_s:.2f} s of it hidden behind the program and report"
        if t.analyzer_cpu_s is not None
        else ""
    )
    status = "[bold red]FAILED[/]" if mandatory else "[green]passed[/]"
    return (
        f"{status} ({len(report.pack.policies)} rules, {mandatory} mandatory / {advisory} advisory violations, "
        f"{report.analyzed} resources analyzed{cpu}, +{t.waited_s:.2f} s wait)"
    )


def unverifiable(report: Any) -> list[Any]:
    """Findings the pack could not decide because a value is only known after apply (the rule named enforces them at `up`)."""
    return [v for v in report.violations if v.message.startswith(UNVERIFIABLE)]


def print_unverifiable(report: Any, console: Console) -> None:
    """What a preview cannot verify, grouped by the rule that will enforce it at `pulumi up`."""
    by_rule: dict[str, list[Any]] = defaultdict(list)
    for v in unverifiable(report):
        by_rule[v.policy].append(v)
    if not by_rule:
        return
    console.print(
        f"[yellow]UNVERIFIABLE AT PREVIEW[/] {sum(map(len, by_rule.values()))} checks; enforced at `pulumi up` by the rule named:",
        highlight=False,
    )
    for name in sorted(by_rule):
        props = sorted({v.message[len(UNVERIFIABLE) :].split(";")[0] for v in by_rule[name]})
        console.print(
            f"  [bold]{name}[/] ({len(by_rule[name])} resources): {escape(', '.join(props))}", highlight=False, soft_wrap=True
        )


def print_violations(report: Any, console: Console) -> None:
    """Violations grouped by rule (mandatory rules first), each with the resource URN; what only
    `up` can verify is summarised per rule instead."""
    by_rule: dict[str, list[Any]] = defaultdict(list)
    for v in report.violations:
        if not v.message.startswith(UNVERIFIABLE):
            by_rule[v.policy].append(v)
    print_unverifiable(report, console)
    if not by_rule and not unverifiable(report):
        console.print(
            f"[green]policy pack {report.pack.name}: no violations[/] ({len(report.pack.policies)} rules, config {report.config_file})"
        )
        return
    for name in sorted(by_rule, key=lambda n: (min(_ORDER.get(v.level, 9) for v in by_rule[n]), n)):
        found = by_rule[name]
        level = found[0].level
        style = "bold red" if level == "mandatory" else "yellow"
        severity = f", {found[0].severity}" if found[0].severity else ""
        console.print(f"[{style}]{level.upper()}[/] [bold]{name}[/] ({len(found)}{severity})", highlight=False)
        for v in sorted(found, key=lambda v: (v.urn or "", v.message)):  # answers arrive in no fixed order
            console.print(f"  {escape(v.urn or '(the stack)')}", highlight=False, soft_wrap=True)
            console.print(f"    {escape(v.message)}", highlight=False, soft_wrap=True)


# --- plan diffs ----------------------------------------------------------------------------------


def load_base(path: Path, stack: str, bare: bool) -> dict[str, Any]:
    """`meridian preview --diff BASE`: read and check the base plan before the (slow) program runs."""
    from meridian.engine.plandiff import load_plan

    if bare:
        raise BadInput("--diff needs the plan: it cannot be combined with --bare")
    base = load_plan(path, "base")
    if base["stack"] != stack:
        raise BadInput(f"base plan {path} is of stack '{base['stack']}', not '{stack}': diff a stack against its own base plan")
    return base


def show_diff(markdown: str, console: Console) -> None:
    """A diff's comment as the reviewer will see it, rendered in the terminal."""
    from rich.markdown import Markdown

    body = markdown.split("\n", 1)[1]  # without the HTML marker line
    if console.is_terminal:
        console.print(Markdown(body))
    else:  # a pipe or a CI log: plain text, every row whole, columns as wide as their widest cell
        console.out(markdown_as_plain_text(body), highlight=False, end="")


_INLINE = re.compile(r"\*\*(.+?)\*\*|(?<![\w`])_(.+?)_(?![\w`])|`([^`]*)`")
_DETAILS = re.compile(r"</?details>|</?summary>")


def _inline(text: str) -> str:
    while (plain := _INLINE.sub(lambda m: next(g for g in m.groups() if g is not None), text)) != text:
        text = plain  # bold around code: each layer in turn
    return plain


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split(" | ")]


def markdown_as_plain_text(markdown: str) -> str:
    """The diff's Markdown as plain text for a pipe: no `**`, backticks, `#` or HTML tags; each table
    aligned to its widest cell (never cut), numbers right-aligned where the table says so."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            table = []
            while i < len(lines) and lines[i].startswith("|"):
                table.append(lines[i])
                i += 1
            rows = [[_inline(c) for c in _cells(r)] for r in table if not re.fullmatch(r"\|[\s|:-]+\|", r.strip())]
            separator = next((r for r in table if re.fullmatch(r"\|[\s|:-]+\|", r.strip())), "")
            align = [a.strip() for a in separator.strip().strip("|").split("|")]
            right = [a.endswith(":") for a in align]
            widths = [max(len(r[c]) for r in rows if c < len(r)) for c in range(max(map(len, rows)))]
            for r in rows:
                cells = [(v.rjust if c < len(right) and right[c] else v.ljust)(widths[c]) for c, v in enumerate(r)]
                out.append("  ".join(cells).rstrip())
            continue
        if line.startswith("<!--") and line.rstrip().endswith("-->"):
            i += 1
            continue
        text = _inline(_DETAILS.sub("", line)).rstrip()
        if text.startswith("#"):
            text = text.lstrip("#").strip()
        out.append(text)
        i += 1
    return "\n".join(out).strip("\n") + "\n"


def print_against(base: dict[str, Any], head: dict[str, Any], console: Console) -> None:
    """The plan just made against the base plan, as plain JSON values (exactly as `--json` would write it)."""
    from meridian.engine.plandiff import diff_plans, to_markdown

    diff = diff_plans(base, json.loads(json.dumps(head, default=str)))
    section(console, "against the base plan")
    show_diff(to_markdown(diff), console)
