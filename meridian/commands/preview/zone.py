"""`meridian preview --zone us`: a zone's platform stack, then its cells in parallel worker
processes, each cell's StackReference answered with the platform preview's outputs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from meridian.commands.common import Prepared, prepare, print_violations
from meridian.commands.preview.stack import write_plan_json
from meridian.errors import EXIT_GATE, EXIT_OK, BadInput, MeridianError
from meridian.output import report_console


@dataclass(frozen=True, kw_only=True)
class ZoneRequest:
    zone: str  # the platform stack's name (`us`)
    project_dir: Path | None = None
    json_dir: Path | None = None  # one plan per stack and the zone index (`zone.json`)
    policy: bool = True
    full: bool = False
    timings: bool = False
    first_preview: bool = False
    markdown: bool = False  # one PR comment on stdout (zonecomment.py) instead of the tree and table
    diff_base: Path | None = None  # a base zone's --json DIR: each stack's diff in the comment
    unsupported: tuple[str, ...] = ()  # flags given that a zone preview does not take


@dataclass
class StackPreview:
    """One stack of a zone as its worker previewed it: what the zone's tree, table and index show.
    Plain data, sent back from the worker process."""

    stack: str
    document: dict[str, Any]
    tree: Any  # render.TreeNode
    wire_outputs: dict[str, Any]  # what a StackReference to this stack reads
    stacks_read: list[str]
    seconds: float
    violations_text: str  # the violations as `--stack` prints them
    cost_summary: str
    cost_problems: list[str]
    preflight: str  # the deploy preflight's summary line, as `--stack` prints it

    @property
    def resources(self) -> int:
        """Custom resources, not providers or components: the count `--stack` prints."""
        from meridian.engine.recorder import is_resource

        return sum(is_resource(r["type"], r["custom"]) for r in self.document["resources"])

    def violations(self, level: str) -> int:
        return sum(v.get("level") == level for v in self.document["policy"]["violations"])

    @property
    def cost_usd(self) -> float:
        return float(self.document["cost"]["monthly_total_usd"])


def preview_stack(
    project_dir: Path,
    stack: str,
    cfg: Any,
    *,
    policy: bool,
    first_preview: bool,
    full: bool,
    timings: bool,
    stack_outputs: dict[str, dict[str, Any]],
) -> StackPreview:
    """One stack of a zone, in a worker process of its own (the SDK's runtime state is global):
    `plan_stack`, the run `--stack` makes, with the referenced stacks' outputs given."""
    import io

    from meridian.engine.pipeline import plan_stack
    from meridian.preflight.checks import run_checks
    from meridian.preflight.run import summary_line
    from meridian.render import cost_summary, plan_tree, region_roles

    staged = plan_stack(project_dir, stack, cfg, policy=policy, first_preview=first_preview, stack_outputs=stack_outputs)
    shown = Console(file=io.StringIO(), width=160, record=True)
    if staged.policy is not None:
        print_violations(staged.policy, shown)
    return StackPreview(
        stack=stack,
        document=staged.document(timings=timings),
        tree=plan_tree(staged.plan, full=full, roles=region_roles(cfg)),
        wire_outputs=staged.run.wire_outputs,
        stacks_read=staged.run.stacks_read,
        seconds=staged.run.seconds,
        violations_text=shown.export_text(),
        cost_summary=cost_summary(staged.cost),
        cost_problems=list(staged.cost.problems),
        preflight=summary_line(run_checks(staged.plan, cfg, project_dir)),
    )


def zone_stacks(project_dir: Path, zone: str) -> dict[str, Prepared]:
    """The platform stack `zone` and the cells it lists, each validated as `--stack` validates it
    (the platform's own load refuses a cell naming it that it does not list); every cell's problems
    in one round (exit 2)."""
    from meridian.project import platform_stacks_of
    from stackconfig.zone import PLATFORM_KEY, stack_config, stack_file

    config = stack_config(project_dir, zone)
    if config is None or PLATFORM_KEY in config:
        zones = ", ".join(platform_stacks_of(project_dir)) or "none"
        why = (
            f"no readable {stack_file(zone)} in {project_dir}"
            if config is None
            else f"{stack_file(zone)} is a cell of {config[PLATFORM_KEY]!r}"
        )
        raise BadInput(f"unknown zone {zone!r}: {why}; a zone is named by its platform stack (zones: {zones})")
    prepared: dict[str, Prepared] = {}
    problems: list[str] = []
    try:
        prepared[zone] = prepare(zone, project_dir, None)
    except BadInput as exc:
        raise BadInput(f"zone {zone}: platform stack {zone}: {exc}") from None
    names = list(prepared[zone].cfg.cells.names)
    for cell in names:
        named = (stack_config(project_dir, cell) or {}).get(PLATFORM_KEY)
        if named != zone:
            problems.append(
                f"{stack_file(zone)}: meridian:cells.names lists {cell!r}, whose {stack_file(cell)} names "
                f"{named!r} as its platform, not {zone!r}"
                if named
                else f"{stack_file(zone)}: meridian:cells.names lists {cell!r}, which has no cell file {stack_file(cell)} "
                "naming it (meridian:platform)"
            )
            continue
        try:
            prepared[cell] = prepare(cell, project_dir, None)
        except BadInput as exc:
            problems.append(f"cell {cell}: {exc}")
    if problems:
        raise BadInput(f"zone {zone}: " + "\n".join(dict.fromkeys(problems)))
    return prepared


def run_zone_preview(req: ZoneRequest, console: Console | None = None) -> int:
    """`meridian preview --zone us`: the platform, then its cells in parallel worker processes (one
    per core), each cell's StackReference answered with the platform preview's outputs."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from meridian.project import find_project_dir

    if req.unsupported:
        raise BadInput(
            f"--zone previews every stack of the zone as text and --json DIR; it does not take {', '.join(req.unsupported)}"
        )
    console = console or report_console()
    document, console = (console, report_console(stderr=True)) if req.markdown else (None, console)
    project = find_project_dir(req.project_dir)
    if req.json_dir is not None and not req.json_dir.is_dir():
        raise BadInput(f"--json {req.json_dir}: with --zone, give an existing directory (one plan per stack and zone.json)")
    prepared = zone_stacks(project, req.zone)
    cells = [s for s in prepared if s != req.zone]
    base = None
    if req.diff_base is not None:
        from meridian.commands.preview.zonecomment import load_zone_base

        base = load_zone_base(req.diff_base, req.zone)  # bad input before the (slow) previews

    def job(pool, stack: str, outputs: dict[str, dict[str, Any]]):
        return pool.submit(
            preview_stack,
            project,
            stack,
            prepared[stack].cfg,
            policy=req.policy,
            first_preview=req.first_preview,
            full=req.full,
            timings=req.timings,
            stack_outputs=outputs,
        )

    previews: dict[str, StackPreview] = {}
    started = time.perf_counter()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    workers = max(1, min(os.cpu_count() or 1, len(cells) or 1))
    with (
        Progress(*columns, console=console, transient=True) as progress,
        # a fresh process per stack: the SDK's runtime state (the root stack resource, config) is global
        ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool,
    ):
        task = progress.add_task(f"zone {req.zone}: platform {req.zone}", total=1 + len(cells))
        platform = previews[req.zone] = _outcome(job(pool, req.zone, {}), req.zone)  # once: every cell reads these outputs
        progress.update(task, advance=1, description=f"zone {req.zone}: {len(cells)} cells on {workers} workers")
        futures = {job(pool, cell, {req.zone: platform.wire_outputs}): cell for cell in cells}
        for done in as_completed(futures):
            previews[futures[done]] = _outcome(done, futures[done])
            progress.update(task, advance=1, description=f"zone {req.zone}: cell {futures[done]} done")
    seconds = time.perf_counter() - started
    ordered = [previews[s] for s in prepared]
    problems = zone_reference_problems(req.zone, [previews[c] for c in cells])
    if document is not None:
        from meridian.commands.preview.zonecomment import zone_markdown

        document.out(zone_markdown(req.zone, ordered, problems, base), highlight=False, end="")
    else:
        print_zone(req.zone, ordered, problems, seconds, console)
    if req.json_dir is not None:
        index = zone_index(req.zone, ordered, problems, {s: prepared[s].cfg for s in prepared})
        for p in ordered:
            write_plan_json(p.document, req.json_dir / index_entry_file(p.stack))
        (req.json_dir / "zone.json").write_text(json.dumps(index, indent=1) + "\n")
        console.print(f"plans and zone index written to {req.json_dir}")
    failed = problems or any(p.violations("mandatory") or p.cost_problems for p in ordered)
    return EXIT_GATE if failed else EXIT_OK


def _outcome(future, stack: str) -> StackPreview:
    """A worker's preview, or its error (a bad policy config, the program failing) naming the stack."""
    try:
        return future.result()
    except MeridianError as exc:
        named = MeridianError(f"stack {stack}: {exc}")
        named.exit_code = exc.exit_code  # exit 2 for bad input (a stale policy config), 1 for a failed program
        raise named from None


def index_entry_file(stack: str) -> str:
    return f"{stack}.plan.json"


def zone_reference_problems(zone: str, cells: list[StackPreview]) -> list[str]:
    """Every cell reads its zone's platform, and only it (a StackReference to another stack fails
    the cell's run already: the engine has only the platform's outputs)."""
    from meridian.engine.run import qualified

    out = []
    for cell in cells:
        wrong = [s for s in cell.stacks_read if s != qualified(zone)]
        if not cell.stacks_read or wrong:
            read = ", ".join(cell.stacks_read) or "no stack"
            out.append(f"cell {cell.stack} reads {read}: a cell reads its zone's platform {qualified(zone)} (StackReference)")
    return out


def print_zone(zone: str, previews: list[StackPreview], problems: list[str], seconds: float, console: Console) -> None:
    """One tree (a branch per stack), the violations per stack, one table with a line per stack."""
    from rich.table import Table

    from meridian.render import TreeNode, rich_tree

    total = sum(p.resources for p in previews)
    console.print(
        rich_tree(TreeNode("stack", f"zone {zone}", f"{len(previews)} stacks, {total} resources", [p.tree for p in previews]))
    )
    for p in previews:
        if p.violations_text.strip():
            console.print(f"[bold]stack {p.stack}[/]", highlight=False)
            console.out(p.violations_text, highlight=False, end="")
    table = Table(title=f"zone {zone}: stacks", title_justify="left")
    for header in ("stack", "role", "resources", "mandatory", "advisory", "cost $/month", "preview s"):
        table.add_column(header, justify="left" if header in ("stack", "role") else "right")
    for p in previews:
        role = "platform" if p.stack == zone else "cell"
        table.add_row(
            p.stack,
            role,
            str(p.resources),
            str(p.violations("mandatory")),
            str(p.violations("advisory")),
            f"{p.cost_usd:,.2f}",
            f"{p.seconds:.2f}",
        )
    table.add_row(
        "zone",
        "",
        str(total),
        str(sum(p.violations("mandatory") for p in previews)),
        str(sum(p.violations("advisory") for p in previews)),
        f"{sum(p.cost_usd for p in previews):,.2f}",
        f"{seconds:.2f} wall",
        style="bold",
    )
    console.print(table)
    for p in previews:
        console.print(f"{p.stack}: {p.cost_summary}; deploy preflight: {p.preflight}", highlight=False)
        for problem in p.cost_problems:
            console.print(f"[bold red]cost gate ({p.stack}):[/] {escape(problem)}")
    for problem in problems:
        console.print(f"[bold red]zone check:[/] {escape(problem)}")
    if not problems:
        console.print(f"zone checks: passed ({len(previews) - 1} cells, each reading platform {zone})")


def zone_index(zone: str, previews: list[StackPreview], problems: list[str], cfgs: dict[str, Any]) -> dict[str, Any]:
    """`zone.json`: the stacks of the zone, their plan files, counts, violations, cost and tenants."""
    stacks = [
        {
            "stack": p.stack,
            "role": "platform" if p.stack == zone else "cell",
            "plan": index_entry_file(p.stack),
            "resources": p.resources,
            "violations": {"mandatory": p.violations("mandatory"), "advisory": p.violations("advisory")},
            "policy_evaluated": p.document["policy"].get("evaluated") is not False,
            "cost_usd": round(p.cost_usd, 2),
            "stack_cap_usd": p.document["cost"]["stack_cap_usd"],
            "cost_problems": p.cost_problems,
            "tenants": [t.id for t in cfgs[p.stack].tenants],
            "reads": p.stacks_read,
        }
        for p in previews
    ]
    return {
        "zone": zone,
        "platform": zone,
        "cells": [p.stack for p in previews if p.stack != zone],
        "stacks": stacks,
        "resources": sum(s["resources"] for s in stacks),
        "violations": {k: sum(s["violations"][k] for s in stacks) for k in ("mandatory", "advisory")},
        "cost_usd": round(sum(p.cost_usd for p in previews), 2),
        "zone_problems": problems,
    }
