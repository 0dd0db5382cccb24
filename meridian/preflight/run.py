"""Preflight over a recorded program run: the checks, a report, and the JSON of it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from meridian.preflight.checks import CheckResult


def summary_line(results: list[CheckResult]) -> str:
    failed = [r.check for r in results if not r.passed]
    warned = sum(len(r.warnings) for r in results)
    if not failed:
        return f"[green]passed[/] ({len(results)} checks)" + (
            f"; [yellow]{warned} placeholder value{'s' if warned != 1 else ''} to replace before a real `pulumi up`[/]"
            if warned
            else ""
        )
    return (
        f"[bold red]FAILED[/] {', '.join(failed)} ({len(failed)} of {len(results)} checks; `meridian preflight` lists the fixes)"
    )


ENCODES_WIDTH = 100


def print_report(results: list[CheckResult], console: Console) -> None:
    table = Table(title="deploy preflight", show_lines=False)
    for col in ("check", "result", "checked", "what it encodes"):
        # the rule text wraps at ENCODES_WIDTH: in a CI log (no width limit) one line of it padded
        # every row of the table to 2,000 columns; wrapped, every word is still there
        table.add_column(col, overflow="fold", max_width=ENCODES_WIDTH if col == "what it encodes" else None)
    for r in results:
        table.add_row(
            r.check, "[green]pass[/]" if r.passed else f"[bold red]{len(r.findings)} failing[/]", str(r.checked), r.encodes
        )
    console.print(table)
    for r in results:
        for f in r.findings:
            console.print(
                f"[bold red]{r.check}:[/] {f.problem}" + (f"\n  at {f.urn}" if f.urn else "") + f"\n  fix: {f.fix}",
                highlight=False,
                soft_wrap=True,
            )
    for r in results:
        for warning in r.warnings:
            console.print(f"[yellow]{r.check}:[/] {warning}", highlight=False, soft_wrap=True)
    for r in results:
        for note in r.notes:
            console.print(f"[dim]{r.check}, to verify online: {note}[/]", highlight=False, soft_wrap=True)


def to_json(results: list[CheckResult]) -> dict:
    return {
        "passed": all(r.passed for r in results),
        "checks": [
            {
                "check": r.check,
                "passed": r.passed,
                "checked": r.checked,
                "encodes": r.encodes,
                "notes": r.notes,
                "warnings": r.warnings,
                "findings": [{"urn": f.urn, "problem": f.problem, "fix": f.fix} for f in r.findings],
            }
            for r in results
        ],
    }
