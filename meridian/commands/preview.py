"""`meridian preview`: the offline engine's main job."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from meridian.commands.common import Prepared, load_base, policy_line, prepare, print_against, print_violations, writable
from meridian.errors import EXIT_GATE, EXIT_OK, BadInput, MeridianError
from meridian.output import Format, report_console


@dataclass(frozen=True, kw_only=True)
class PreviewRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None
    diagram_path: Path | None = None
    policy: bool = True
    bare: bool = False
    tenants: int | None = None
    format: Format = Format.text
    full: bool = False  # the tree lists every component and resource by name
    timings: bool = False  # measured timings in the plan JSON (benchmarks); off: two runs give the same bytes
    diff_base: Path | None = None  # a base plan JSON to show this plan's changes against
    first_preview: bool = False


def run_preview(req: PreviewRequest, console: Console | None = None) -> int:
    if req.bare and (req.json_path or req.diagram_path or req.full or req.format == Format.markdown):
        raise BadInput(
            "--bare runs the program under mocks and nothing else: it records no plan, so it cannot write "
            "--json/--diagram or show --full/--format markdown; drop --bare for those"
        )
    text = req.format == Format.text
    console = console or report_console()
    notes = console if text else report_console(stderr=True)  # stdout carries only the JSON/Markdown document
    prep = prepare(req.stack, req.project_dir, req.tenants)
    json_path = writable(req.json_path)
    diagram_path = writable(req.diagram_path)
    base_plan = None
    if req.diff_base is not None:
        base_plan = load_base(req.diff_base, req.stack, req.bare)

    from meridian.engine.run import run_program

    if req.bare:  # a cell's platform is run first (engine.run.referenced_outputs), in a process of its own
        run = run_program(prep.project_dir, req.stack, record=False, overrides=prep.overrides)
        if text:
            console.print(f"{run.resource_count} resources in {run.seconds:.2f} s (bare)")
        else:
            console.out(
                json.dumps({"stack": req.stack, "bare": True, "resources": run.resource_count, "seconds": round(run.seconds, 3)})
            )
        return EXIT_OK

    from meridian.engine.pipeline import plan_stack
    from meridian.render import cost_summary, counts_line, counts_table, plan_tree, region_roles, rich_tree

    roles = region_roles(prep.cfg)
    preflight = []  # the deploy preflight's results, found while the analyzer works and printed after its verdict
    encoded: list[EncodedResources] = []  # the plan JSON's resources, encoded while the analyzer works

    def show_tree(plan, cost) -> None:  # while the analyzer finishes its stack rules
        if json_path or req.format == Format.json:
            encoded.append(EncodedResources.of(plan.resource_dicts))
        if text:
            from meridian.preflight.checks import run_checks

            console.print(rich_tree(plan_tree(plan, full=req.full, roles=roles)))
            console.print(counts_table(plan, roles))
            console.print(cost_summary(cost))
            preflight.extend(run_checks(plan, prep.cfg, prep.project_dir))  # reads the plan and config only

    staged = plan_stack(
        prep.project_dir,
        req.stack,
        prep.cfg,
        overrides=prep.overrides,
        policy=req.policy,
        first_preview=req.first_preview,
        while_analyzing=show_tree,
    )
    run, plan, cost, report = staged.run, staged.plan, staged.cost, staged.policy
    document = staged.document(timings=req.timings)
    policy = document["policy"]
    if text:
        if report is not None:
            print_violations(report, console)
        console.print(counts_line(plan, report.analyzed if report else None))
        verdict = policy_line(report) if report else "skipped (--no-policy)"
        console.print(f"[bold]{len(plan.custom)}[/] resources in {run.seconds:.2f} s; policy: {verdict}")
        from meridian.preflight.run import summary_line

        console.print(f"deploy preflight: {summary_line(preflight)}")
        from meridian.preflight.teardown import vault_lock_consequences

        for line in vault_lock_consequences(plan.resource_dicts):  # what the first `up` commits to
            console.print(f"vault lock: {escape(line)}", highlight=False)
    elif req.format == Format.json:
        console.out(plan_json(document, next(iter(encoded), None)), highlight=False, end="")
    else:
        console.out(preview_markdown(plan, report, cost, req.full, roles), highlight=False, end="")
    if json_path:
        write_plan_json(document, json_path, next(iter(encoded), None))
        notes.print(f"plan written to {json_path}")
    if diagram_path:
        from meridian.engine.diagram import mermaid

        diagram_path.write_text(mermaid(plan, roles))
        notes.print(f"diagram written to {diagram_path}")
    if base_plan is not None:
        print_against(base_plan, document, notes)  # stdout stays the document in json/markdown formats
    mandatory = [v for v in policy["violations"] if v.get("level") == "mandatory"]
    for problem in cost.problems:
        notes.print(f"[bold red]cost gate:[/] {escape(problem)}")
    return EXIT_GATE if mandatory or cost.problems else EXIT_OK


def plan_json(document: dict[str, Any], resources: EncodedResources | None = None) -> str:
    """The plan as written to --json and --format json: byte-stable for the same plan."""
    return "".join(_plan_json_parts(document, resources)) + "\n"


def write_plan_json(document: dict[str, Any], path: Path, resources: EncodedResources | None = None) -> None:
    """`plan_json` written in slices: `json.dumps` with an indent first holds every token of the
    document as its own string (millions at 25k resources), the largest allocation of a preview."""
    with path.open("w") as out:
        for part in _plan_json_parts(document, resources):
            out.write(part)
        out.write("\n")


_ENCODER = json.JSONEncoder(indent=1, default=str)


@dataclass(frozen=True)
class EncodedResources:
    """A plan's `resources`, each already encoded as `plan_json` writes it (at its depth in the
    document): encoded while the analyzer finishes, so writing the plan after it costs little."""

    source: list[dict[str, Any]]  # the list they were encoded from: used only for that same list
    texts: list[str]

    @classmethod
    def of(cls, resources: list[dict[str, Any]]) -> EncodedResources:
        return cls(resources, [_nested(r, 2) for r in resources])


def _nested(value: Any, depth: int) -> str:
    """`value` as the indenting encoder writes it `depth` levels down: its own encoding with every
    line after the first indented by `depth` (JSON strings hold no raw newline, so only the
    encoder's own line breaks are shifted)."""
    return _ENCODER.encode(value).replace("\n", "\n" + " " * depth)


def _plan_json_parts(document: dict[str, Any], resources: EncodedResources | None) -> Any:
    """`json.JSONEncoder(indent=1, default=str).iterencode(document)`, in slices, with the resources'
    encoding taken from `resources` when it was made from this document's list."""
    if (
        resources is None
        or document.get("resources") is not resources.source
        or not all(isinstance(key, str) for key in document)  # the encoder spells other keys its own way
    ):
        chunks = _ENCODER.iterencode(document)
        while batch := "".join(itertools.islice(chunks, 100_000)):
            yield batch
        return
    for i, (key, value) in enumerate(document.items()):
        yield ("{\n " if i == 0 else ",\n ") + _ENCODER.encode(str(key)) + ": "
        if key == "resources":
            yield ("[\n  " + ",\n  ".join(resources.texts) + "\n ]") if resources.texts else "[]"
        else:
            yield _nested(value, 1)
    yield "\n}"


def preview_markdown(plan, report, cost, full: bool, roles: dict[str, str] | None = None) -> str:
    """The preview as a PR comment: the tree, the counts, the policy verdict and the cost line."""
    from meridian.render import (
        cost_verdict,
        count_rows,
        counts_line,
        markdown_table,
        markdown_tree,
        plan_tree,
        violations_markdown,
    )

    verdict = "skipped (--no-policy)" if report is None else ("**FAILED**" if report.mandatory else "passed")
    out = [
        f"## meridian preview: stack `{plan.stack}`",
        "",
        f"{counts_line(plan, report.analyzed if report else None)}.",
        "",
        f"Policy: {verdict}. Cost: ${cost.total_usd:,.2f}/month vs stack cap ${cost.stack_cap_usd:,.2f} ({cost_verdict(cost)}).",
        "",
        "### Resources by region and component" + (" (full)" if full else ""),
        "",
        markdown_tree(plan_tree(plan, full=full, roles=roles)),
        "",
        "### Resources per type and region",
        "",
        markdown_table(*count_rows(plan, roles)),
        "",
    ]
    if report is not None:
        out += ["### Policy", "", violations_markdown(report), ""]
    out += [f"- cost gate: {p}" for p in cost.problems]
    return "\n".join(out).rstrip() + "\n"


# --- a zone: its platform, then its cells in parallel ---------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ZoneRequest:
    zone: str  # the platform stack's name (`us`)
    project_dir: Path | None = None
    json_dir: Path | None = None  # one plan per stack and the zone index (`zone.json`)
    policy: bool = True
    full: bool = False
    timings: bool = False
    first_preview: bool = False
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
    project = find_project_dir(req.project_dir)
    if req.json_dir is not None and not req.json_dir.is_dir():
        raise BadInput(f"--json {req.json_dir}: with --zone, give an existing directory (one plan per stack and zone.json)")
    prepared = zone_stacks(project, req.zone)
    cells = [s for s in prepared if s != req.zone]

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
