"""`meridian preview --stack S`: one stack through the offline engine (the program under mocks, the
pack through its analyzer protocol, the deploy preflight), as text, JSON or a PR comment."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from meridian.commands.common import load_base, policy_line, prepare, print_against, print_violations, writable
from meridian.errors import EXIT_GATE, EXIT_OK, BadInput
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
