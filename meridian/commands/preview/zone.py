"""`meridian preview --zone us`: a zone's platform stack, then its cells in parallel worker
processes, each cell's StackReference answered with the platform preview's outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from meridian.commands.common import Prepared, prepare
from meridian.errors import EXIT_GATE, EXIT_OK, BadInput, MeridianError
from meridian.output import report_console

from .zonechecks import UNVERIFIABLE, zone_findings
from .zoneworker import StackPreview, bare_stack, preview_stack

POOL_UNKNOWN = "(the platform's pool bucket, unknown at preview)"


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
    tenants: int | None = None  # fill the zone to N tenants with synthetic cells held in memory (meridian.scale)
    cell_size: int | None = None  # with `tenants`: the platform's cells.size, in memory
    bare: bool = False  # each stack under mocks only, one at a time: the floor a zone preview is measured against
    unsupported: tuple[str, ...] = ()  # flags given that a zone preview does not take


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
    per core), each cell's StackReference answered with the platform preview's outputs and the pack
    judging each cell beside its platform's resources; then the zone's own checks (zonechecks)."""
    import os
    import resource

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from meridian.project import find_project_dir
    from stackconfig import ZONE_REGIONS

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
    base = None
    if req.diff_base is not None:
        from meridian.commands.preview.zonecomment import load_zone_base

        base = load_zone_base(req.diff_base, req.zone)  # bad input before the (slow) previews
    plans_dir, scratch = req.json_dir, None
    if base is not None and plans_dir is None:  # the comment's diffs read each stack's plan back from its file
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="meridian-zone-plans-")
        plans_dir = Path(scratch.name)
    prepared, held = scaled_zone(project, req.zone, prepared, req.tenants, req.cell_size)
    cells = [s for s in prepared if s != req.zone]
    regions = tuple(ZONE_REGIONS.get(prepared[req.zone].cfg.zone, ()))
    if req.bare:
        return _run_bare(req, project, prepared, held, console)

    started = time.perf_counter()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    workers = max(1, min(os.cpu_count() or 1, len(cells) or 1))
    platform_s = 0.0
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"zone {req.zone}: platform {req.zone}", total=1 + len(cells))

        def done(stack: str) -> None:
            nonlocal platform_s
            if stack == req.zone:  # the other cores wait for it (benchmarks/zone_scale.py measures the cost)
                platform_s = time.perf_counter() - started
                progress.update(task, advance=1, description=f"zone {req.zone}: {len(cells)} cells on {workers} workers")
            else:
                progress.update(task, advance=1, description=f"zone {req.zone}: cell {stack} done")

        previews = preview_in_workers(
            project,
            prepared,
            workers=workers,
            plans_dir=plans_dir,
            policy=req.policy,
            first_preview=req.first_preview,
            full=req.full,
            timings=req.timings,
            held=held,
            zone_regions=regions,
            done=done,
        )
    platform = previews[req.zone]
    seconds = time.perf_counter() - started
    ordered = [previews[s] for s in prepared]
    problems = zone_reference_problems(req.zone, [previews[c] for c in cells])
    problems += zone_findings(
        req.zone,
        platform.facts,
        [previews[c].facts for c in cells],
        regions,
        # unknown before the platform's first `up`: a stand-in no known name matches, so a wildcard bucket still counts
        platform.pool_buckets or [POOL_UNKNOWN],
        _tenant_prefix(),
    )
    problems += _outputs_outside(req.zone, platform.wire_outputs, regions) if cells else []
    pair_notes, pair_problems = pair_costs(platform, {c: previews[c] for c in cells}, {c: prepared[c].cfg for c in cells})
    problems += pair_problems
    unverifiable = [p for p in problems if p.startswith(UNVERIFIABLE)]
    problems = [p for p in problems if not p.startswith(UNVERIFIABLE)]
    if document is not None:
        from meridian.commands.preview.zonecomment import zone_markdown

        document.out(zone_markdown(req.zone, ordered, problems, base), highlight=False, end="")
        if scratch is not None:
            scratch.cleanup()
    else:
        print_zone(req.zone, ordered, problems, seconds, console)
        for note in pair_notes:
            console.print(note, highlight=False)
    for finding in unverifiable:
        console.print(f"[yellow]zone check:[/] {escape(finding)}")
    if req.json_dir is not None:
        index = zone_index(req.zone, ordered, problems, {s: prepared[s].cfg for s in prepared})
        index.update(
            seconds=round(seconds, 3),
            platform_s=round(platform_s, 3),
            zone_unverifiable=unverifiable,
            workers=workers,
            pairs=[{"pair": c.pair, "cells": list(c.cells), "monthly_usd": round(c.monthly_usd, 2)} for c in platform.pair_costs],
            tenants=sum(p.tenants for p in ordered),
            peak_rss_mib={"zone": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)},
        )
        (req.json_dir / "zone.json").write_text(json.dumps(index, indent=1) + "\n")
        console.print(f"plans and zone index written to {req.json_dir}")
    failed = problems or any(p.violations("mandatory") or p.cost_problems for p in ordered)
    return EXIT_GATE if failed else EXIT_OK


def pair_costs(platform: StackPreview, cells: dict[str, StackPreview], cfgs: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Each tenant cluster pair's cost (the platform's resources) allocated to the tenants of the cells on
    it (costmodel.allocate_pairs): a line per pair, and a cost gate for each tenant whose own stack's
    estimate plus its pair share is over its budget (what neither stack's estimate sees alone)."""
    from meridian.costmodel import allocate_pairs

    shares = allocate_pairs(platform.pair_costs, cfgs)
    notes = [
        f"tenant cluster pair {c.pair}: ${c.monthly_usd:,.2f}/month (the platform's), allocated to the "
        f"{sum(s.pair == c.pair for s in shares)} tenants of {', '.join(c.cells) or 'no cell'}"
        for c in platform.pair_costs
    ]
    estimates = {(cell, t.tenant): t for cell, preview in cells.items() for t in preview.tenant_costs}
    problems = []
    for share in shares:
        own = estimates[(share.cell, share.tenant)]
        if own.total_usd + share.usd > own.budget_usd + 1e-9:
            problems.append(
                f"cost gate: tenant {share.tenant} (cell {share.cell}): estimate ${own.total_usd + share.usd:,.2f}/month "
                f"(its stack's ${own.total_usd:,.2f} + ${share.usd:,.2f} of pair {share.pair}'s clusters) is over its "
                f"budget ${own.budget_usd:,.2f}" + (f" ({own.budget_key})" if own.budget_key else "")
            )
    return notes, problems


def scaled_zone(
    project: Path, zone: str, prepared: dict[str, Prepared], tenants: int | None, cell_size: int | None
) -> tuple[dict[str, Prepared], dict[Path, dict[str, Any]]]:
    """`--zone Z --tenants N [--cell-size S]`, as preview and preflight both take it: the zone filled to N
    tenants with synthetic cells held in memory (meridian.scale), every stack of `prepared` validated again
    with them, and the held stack files each worker must see. Without --tenants: `prepared` as it is."""
    from meridian.scale import zone_tenants
    from stackconfig.memory import holding

    if cell_size is not None and tenants is None:
        raise BadInput("--cell-size sizes the synthetic cells of --tenants N: give --tenants too")
    if tenants is None:
        return prepared, {}
    held = zone_tenants(
        project, zone, {s: p.cfg for s, p in prepared.items() if s == zone or p.cfg.platform == zone}, tenants, cell_size
    ).documents
    with holding(held):  # the zone as N tenants: every stack validated again, across the zone
        others = {s: p for s, p in prepared.items() if s != zone and p.cfg.platform != zone}
        return {**zone_stacks(project, zone), **others}, held


def preview_in_workers(
    project: Path,
    prepared: dict[str, Prepared],
    *,
    workers: int,
    plans_dir: Path | None,
    policy: bool,
    first_preview: bool = False,
    full: bool = False,
    timings: bool = False,
    held: dict[Path, dict[str, Any]] | None = None,
    zone_regions: tuple[str, ...] = (),
    done: Callable[[str], None] = lambda stack: None,
) -> dict[str, StackPreview]:
    """Each stack of `prepared` planned as `--stack` plans it (`preview_stack`), in a fresh worker
    process per stack, `workers` at a time: the platforms first (their cells read their outputs),
    then every cell with its platform's outputs and, with `policy`, judged beside its platform's
    resources. Its plan written to `plans_dir`; `done(stack)` as each finishes; an error names its stack.
    Each worker is told the cores it has to itself (`cores`): the platform previews alone, the cells
    side by side, so a cell's worker does not split its stack rules over a second analyzer that
    would only take CPU from the worker beside it."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    def job(pool, stack: str, outputs: dict[str, dict[str, Any]], context: list[Any] | None = None, *, batch: int):
        return pool.submit(
            preview_stack,
            project,
            stack,
            prepared[stack].cfg,
            policy=policy,
            first_preview=first_preview,
            full=full,
            timings=timings,
            stack_outputs=outputs,
            held=held,
            context=context,
            zone_regions=zone_regions,
            json_path=None if plans_dir is None else plans_dir / index_entry_file(stack),
            cores=worker_cores(os.cpu_count() or 1, workers, batch),
        )

    def cell_job(pool, cell: str):
        platform = previews[prepared[cell].cfg.platform]
        context = platform.context if policy else None  # the pack judges the cell beside its platform's resources
        return job(pool, cell, {platform.stack: platform.wire_outputs}, context, batch=len(cells))

    def collect(futures: dict[Any, str]) -> None:
        for future in as_completed(futures):
            previews[futures[future]] = _outcome(future, futures[future])
            done(futures[future])

    previews: dict[str, StackPreview] = {}
    platforms = [s for s, p in prepared.items() if not p.cfg.is_cell]
    # the largest cells first: the last ones to finish are the small ones, so no core idles on a long tail
    cells = sorted((s for s in prepared if s not in platforms), key=lambda c: -len(prepared[c].cfg.tenants))
    # a fresh process per stack: the SDK's runtime state (the root stack resource, config) is global
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        collect({job(pool, p, {}, batch=len(platforms)): p for p in platforms})  # once: every cell reads these outputs
        cell_futures = {cell_job(pool, cell): cell for cell in cells}
        for p in platforms:
            previews[p].context = []  # sent with the cells' jobs: not held here while they run
        collect(cell_futures)
    return previews


def worker_cores(cpus: int, workers: int, batch: int) -> int:
    """The cores each of `batch` stacks previewed side by side (at most `workers` at a time) has to itself."""
    return max(1, cpus // max(1, min(workers, batch)))


def _tenant_prefix() -> str:
    from components.tenant import tenant_prefix  # where a tenant's objects live in a shared bucket

    return tenant_prefix("{tenant}")


def _outputs_outside(zone: str, outputs: dict[str, Any], regions: tuple[str, ...]) -> list[str]:
    """Every ARN the platform's outputs hold (what its cells read) names a region of the zone, or none."""
    from .zonechecks import ARN, _strings

    found = {m.group(0) for _, text in _strings(outputs) for m in ARN.finditer(text) if m.group(2) and m.group(2) not in regions}
    return [f"platform {zone}'s outputs, which its cells read, name {arn}..., outside the zone" for arn in sorted(found)]


def _run_bare(
    req: ZoneRequest, project: Path, prepared: dict[str, Prepared], held: dict[Path, dict[str, Any]], console: Console
) -> int:
    """`--zone Z --bare`: every stack of the zone under mocks only, one at a time, each in a fresh
    process (the floor a zone preview is measured against: benchmarks/zone_scale.py); a stack's
    seconds are its whole process's, from spawn to result, as a `--stack S --bare` run's would be
    (without a cell's own first run of its platform)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    rows = []
    outputs: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for stack in prepared:
        began = time.perf_counter()
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            row = _outcome(pool.submit(bare_stack, project, stack, dict(outputs), held), stack)
        row["process_s"] = round(time.perf_counter() - began, 3)
        if stack == req.zone:
            outputs = {stack: row["wire_outputs"]}
        del row["wire_outputs"]
        rows.append(row)
        console.print(
            f"{stack}: {row['resources']} resources in {row['program_s']:.2f} s (bare; process {row['process_s']:.2f} s)",
            highlight=False,
        )
    seconds = time.perf_counter() - started
    console.print(f"zone {req.zone}: {sum(r['resources'] for r in rows)} resources in {seconds:.2f} s (bare, stack by stack)")
    if req.json_dir is not None:
        index = {"zone": req.zone, "bare": True, "stacks": rows, "seconds": round(seconds, 3)}
        (req.json_dir / "zone.json").write_text(json.dumps(index, indent=1) + "\n")
    return EXIT_OK


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
    for header in ("stack", "role", "tenants", "resources", "mandatory", "advisory", "cost $/month", "preview s", "peak RSS MiB"):
        table.add_column(header, justify="left" if header in ("stack", "role") else "right")
    for p in previews:
        role = "platform" if p.stack == zone else "cell"
        table.add_row(
            p.stack,
            role,
            str(p.tenants),
            str(p.resources),
            str(p.violations("mandatory")),
            str(p.violations("advisory")),
            f"{p.cost_usd:,.2f}",
            f"{p.seconds:.2f}",
            f"{p.peak_rss_mib:,.0f}",
        )
    table.add_row(
        "zone",
        "",
        str(sum(p.tenants for p in previews)),
        str(total),
        str(sum(p.violations("mandatory") for p in previews)),
        str(sum(p.violations("advisory") for p in previews)),
        f"{sum(p.cost_usd for p in previews):,.2f}",
        f"{seconds:.2f} wall",
        f"{max(p.peak_rss_mib for p in previews):,.0f} max",
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
        console.print(
            f"zone checks: passed ({len(previews) - 1} cells, each reading platform {zone}; one stack per tenant, "
            "residency across stacks, no cross-cell tenant reach)"
        )


def zone_index(zone: str, previews: list[StackPreview], problems: list[str], cfgs: dict[str, Any]) -> dict[str, Any]:
    """`zone.json`: the stacks of the zone, their plan files, counts, violations, cost and tenants."""
    stacks = [
        {
            "stack": p.stack,
            "role": "platform" if p.stack == zone else "cell",
            "plan": index_entry_file(p.stack),
            "resources": p.resources,
            "violations": {"mandatory": p.mandatory, "advisory": p.advisory},
            "in_platform": p.in_platform,
            "policy_evaluated": p.policy_evaluated,
            "cost_usd": round(p.cost_usd, 2),
            "stack_cap_usd": p.stack_cap_usd,
            "cost_problems": p.cost_problems,
            "tenants": [t.id for t in cfgs[p.stack].tenants],
            "reads": p.stacks_read,
            "preview_s": round(p.seconds, 3),
            "peak_rss_mib": round(p.peak_rss_mib),
            "analyzers_peak_rss_mib": round(p.analyzers_peak_rss_mib),
            "cpu_s": round(p.cpu_s, 2),
            **({"policy_timings": p.timings} if p.timings else {}),
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
        "zone_checks": ZONE_CHECKS,
    }


# what the zone's checks prove (zonechecks): recorded in zone.json beside their verdicts
ZONE_CHECKS = [
    "every cell reads its zone's platform and only it (StackReference)",
    "no tenant has resources in two stacks",
    "every cell's resources, the ARNs its inputs name and its S3 replication destinations are in the zone's regions",
    "the platform's outputs its cells read name no region outside the zone",
    "no Allow statement of a cell reaches another stack's silo buckets or tenant prefixes in the pool buckets",
    "no Pod Identity association of a cell binds another stack's tenant namespace",
]
