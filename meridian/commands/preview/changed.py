"""`meridian preview --changed`: only the stacks a change touches (meridian.changes), each against
its preview at the base commit, as text or one PR comment.

A cell whose tenants alone changed previews as a subset: the program runs with the cell's tenants
replaced by its added and modified ones (and, at the base, its modified and removed ones), so the
subset renders exactly those tenants' resources and the cell-wide ones (its providers and platform
reference) with the same inputs as the full cell does (tests/test_changed_preview.py proves it
against the full cell, resource by resource). What a subset cannot render or judge it names:
- the cell's tenant file Secrets list every tenant of the cell, with values (API key digests, silo
  key ARNs) only the other tenants' resources give: a subset's would list the subset, so they are
  left out of its plan and named, and the full cell renders them at merge/deploy;
- the rules in `CROSS_TENANT_RULES` relate a tenant's resources to other tenants' (or sum over all
  of them): the subset's verdict on them covers only what it rendered, said as an advisory;
- the cost gate compares the whole stack's estimate with its cap: a subset shows the delta only.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tarfile
import tempfile
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from meridian.changes import ChangeSet, StackChange, detect
from meridian.commands.common import markdown_as_plain_text, prepare
from meridian.errors import EXIT_GATE, EXIT_OK, BadInput, MeridianError
from meridian.output import Format, report_console
from stackconfig import Overrides, as_written
from stackconfig.zone import KnownEntries, known_entries, learn

COMMENT_MARKER = "<!-- meridian:changed-preview -->"  # how CI finds the comment to update it
CELL_LABEL = "meridian.io/cell"  # the label of a cell's tenant file Secret (components.workload)

# Rules whose judgment relates a tenant's resources to other tenants' of the stack, or sums over
# them: on a subset they see only the rendered tenants. Names are the pack's (a test checks them).
CROSS_TENANT_RULES: dict[str, str] = {
    "tenant-data-access": "who reaches a tenant's data: the other tenants' roles and workloads are not rendered",
    "tenant-namespace-guarded": "network policies admitting another tenant's namespace: the other namespaces are not rendered",
    "k8s-tenant-secret-own-data-only": "links from a tenant namespace to another tenant's objects: those are not rendered",
    "k8s-rbac-binding-scoped": "bindings granting to another namespace's service accounts: those are not rendered",
    "budgets-limit-and-cap-enforced": "tenant budgets adding up within the stack cap: the other tenants' budgets are not rendered",
}


@dataclass(frozen=True, kw_only=True)
class ChangedRequest:
    project_dir: Path | None = None
    base: str | None = None  # a git ref; None: the merge-base of HEAD and main
    format: Format = Format.text
    policy: bool = True
    json_dir: Path | None = None  # each previewed stack's head plan and diff
    only: str | None = None  # one stack of the change set (CI's matrix: a job per stack, a comment per stack)
    unsupported: tuple[str, ...] = ()  # flags given that --changed does not take


@dataclass
class Planned:
    """One program run's plan, sent back from its worker: the document as `--json` writes it."""

    document: dict[str, Any]
    wire_outputs: dict[str, Any]
    seconds: float
    not_rendered: list[str] = field(default_factory=list)  # URNs a subset leaves out (tenant files)


@dataclass
class StackOutcome:
    change: StackChange
    head: Planned
    base: dict[str, Any]  # the base plan (an empty one for a stack new since the base)
    diff: Any  # plandiff.PlanDiff

    @property
    def mandatory(self) -> int:
        return sum(v.get("level") == "mandatory" for v in self.head.document["policy"]["violations"])

    @property
    def advisory(self) -> int:
        return sum(v.get("level") != "mandatory" for v in self.head.document["policy"]["violations"])


def plan_in_worker(
    project_dir: Path,
    stack: str,
    cfg: Any,
    overrides: Overrides | None,
    *,
    policy: bool,
    stack_outputs: dict[str, dict[str, Any]],
    subset: bool,
    zone_files: KnownEntries | None = None,
) -> Planned:
    """One stack (or a cell's subset) through `plan_stack`, in a process of its own (the SDK's
    runtime state is global). A subset's tenant file Secrets are taken out of its plan. `zone_files`:
    the zone's stack files as the main process read them (its checks, here and in the program, judge
    the whole zone without parsing every file again)."""
    from meridian.commands.preview.stack import plan_json
    from meridian.engine.pipeline import plan_stack

    if zone_files is not None:
        learn(zone_files)
    staged = plan_stack(project_dir, stack, cfg, overrides=overrides, policy=policy, stack_outputs=stack_outputs)
    document = json.loads(plan_json(staged.document()))
    left_out = tenant_file_urns(document) if subset else []
    if left_out:
        document = without(document, set(left_out))
    return Planned(document, staged.run.wire_outputs, staged.run.seconds, left_out)


def platform_outputs(project_dir: Path, stack: str, zone_files: KnownEntries | None = None) -> Planned:
    """A platform's outputs (what its cells' StackReferences read), from a bare run (`zone_files`:
    as `plan_in_worker`'s)."""
    from meridian.engine.run import run_program

    if zone_files is not None:
        learn(zone_files)
    run = run_program(project_dir, stack, record=False, stack_outputs={})
    return Planned({}, run.wire_outputs, run.seconds)


def tenant_file_urns(document: dict[str, Any]) -> list[str]:
    """The cell's tenant file Secrets: every tenant of the cell in one object."""
    return sorted(
        r["urn"]
        for r in document["resources"]
        if r["type"] == "kubernetes:core/v1:Secret"
        and CELL_LABEL in (((r.get("inputs") or {}).get("metadata") or {}).get("labels") or {})
    )


def without(document: dict[str, Any], urns: set[str]) -> dict[str, Any]:
    """The plan without these resources, their secret digests and their violations."""
    secrets = dict(document.get("secrets") or {})
    secrets["digests"] = {u: d for u, d in (secrets.get("digests") or {}).items() if u not in urns}
    policy = dict(document["policy"])
    policy["violations"] = [v for v in policy.get("violations", []) if v.get("urn") not in urns]
    return {
        **document,
        "resources": [r for r in document["resources"] if r["urn"] not in urns],
        "secrets": secrets,
        "policy": policy,
    }


def empty_base(head: dict[str, Any]) -> dict[str, Any]:
    """The base of a stack new since the base commit: nothing, so everything is a create."""
    return {
        "project": head.get("project"),
        "stack": head["stack"],
        "resources": [],
        "outputs": {},
        "secrets": {"key_id": (head.get("secrets") or {}).get("key_id"), "digests": {}},
        "policy": {"evaluated": True, "violations": []},
        "cost": {"evaluated": True, "monthly_total_usd": 0.0, "by_type": {}, "by_region": {}, "tenants": [], "problems": []},
    }


def subset_overrides(cfg: Any, tenant_ids: list[str], side: str) -> Overrides:
    """The cell's tenants replaced by these (in the file's order, as the full cell composes them)."""
    keep = set(tenant_ids)
    return Overrides(
        {"tenants": [as_written(t) for t in cfg.tenants if t.id in keep]},
        source=f"--changed ({side}: {', '.join(tenant_ids) or 'no tenant'})",
    )


def extract_base(changes: ChangeSet, into: Path) -> Path:
    """The project as it was at the base commit, in `into` (the program, the pack and every stack file)."""
    import io
    import subprocess

    tree = f"{changes.base.commit}:{changes.base.prefix}" if changes.base.prefix else changes.base.commit
    done = subprocess.run(["git", "archive", "--format=tar", tree], cwd=changes.base.repo_root, capture_output=True)
    if done.returncode != 0:
        raise BadInput(f"git archive {tree}: {done.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_changed_preview(req: ChangedRequest, console: Console | None = None) -> int:
    """`meridian preview --changed`: the stacks a change touches, each against the base."""
    from meridian.project import find_project_dir

    if req.unsupported:
        raise BadInput(
            f"--changed previews the stacks a change touches against --base, as text or --format markdown (and --json DIR); "
            f"it does not take {', '.join(req.unsupported)}"
        )
    text = req.format == Format.text
    if req.format == Format.json:
        raise BadInput("--changed writes text or --format markdown (one PR comment); for JSON give --json DIR")
    console = console or report_console()
    notes = console if text else report_console(stderr=True)
    project = find_project_dir(req.project_dir)
    if req.json_dir is not None and not req.json_dir.is_dir():
        raise BadInput(f"--json {req.json_dir}: with --changed, give an existing directory (a plan and a diff per stack)")
    changes = detect(project, req.base)
    if req.only is not None:
        if req.only not in changes.stacks:
            listed = ", ".join(changes.stacks) or "none"
            raise BadInput(f"--only {req.only}: not a stack this change touches (stacks it touches: {listed})")
        changes.stacks = {req.only: changes.stacks[req.only]}
    if text:
        print_selection(changes, console)
    if not changes.stacks:
        if not text:
            console.out(selection_markdown(changes), highlight=False, end="")
        return EXIT_OK
    with tempfile.TemporaryDirectory(prefix="meridian-base-") as tmp:
        outcomes = preview_changes(project, changes, req.policy, Path(tmp), notes)
    if req.json_dir is not None:
        from meridian.commands.preview.stack import write_plan_json

        for o in outcomes:
            write_plan_json(o.head.document, req.json_dir / f"{o.change.stack}.plan.json")
            (req.json_dir / f"{o.change.stack}.diff.json").write_text(json.dumps(o.diff.to_json(), indent=1) + "\n")
        notes.print(f"plans and diffs written to {req.json_dir}")
    if text:
        for o in outcomes:
            print_outcome(o, console)
    else:
        console.out(changed_markdown(changes, outcomes, per_stack=req.only is not None), highlight=False, end="")
    # a mandatory violation, a cost gate or a protected delete: the change cannot go through as planned
    failed = any(o.diff.blocked or o.diff.cost.head_problems for o in outcomes)
    return EXIT_GATE if failed else EXIT_OK


def preview_changes(project: Path, changes: ChangeSet, policy: bool, tmp: Path, notes: Console) -> list[StackOutcome]:
    """Head and base previews of every changed stack, in worker processes (one per core): platforms
    first (their cells read their outputs), then cells; heads and bases side by side."""
    from meridian.engine.plandiff import diff_plans

    ordered = changes.ordered()
    platforms = [c for c in ordered if c.role == "platform"]
    cells = [c for c in ordered if c.role == "cell"]
    workers = max(1, min(os.cpu_count() or 1, 2 * len(ordered)))
    heads: dict[str, Future] = {}
    bases: dict[str, Future] = {}
    head_outputs: dict[str, Future] = {}
    base_outputs: dict[str, Future] = {}
    head_cfg = {c.stack: prepare(c.stack, project, None).cfg for c in ordered}  # exit 2 before any program runs
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        # the outputs of unchanged platforms whose cells are previewed (the same at the base): first, as
        # the rest waits for them, while the base is extracted and the subsets' configs are made here
        for zone in sorted({c.zone for c in cells} - {c.stack for c in platforms}):
            head_outputs[zone] = base_outputs[zone] = pool.submit(platform_outputs, project, zone, known_entries())
        base_dir = extract_base(changes, tmp / "base") if any(c.at_base for c in ordered) else None
        base_cfg = {}
        for c in ordered:
            if c.at_base and base_dir is not None:
                try:
                    base_cfg[c.stack] = prepare(c.stack, base_dir, None).cfg
                except BadInput as exc:
                    raise BadInput(f"stack {c.stack} at the base {changes.base.ref}: {exc}") from None

        # what each run renders: the whole stack, or a cell's subset at the change and at the base
        runs: dict[tuple[str, str], tuple[Path, Any, Overrides | None]] = {}
        for c in ordered:
            sides = [("head", project, head_cfg[c.stack], c.head_tenants)]
            if c.stack in base_cfg:
                sides.append(("base", base_dir, base_cfg[c.stack], c.base_tenants))
            for side, where, cfg, tenants in sides:
                overrides = subset_overrides(cfg, tenants, side) if c.subset else None
                runs[c.stack, side] = (where, prepare_with(where, c.stack, overrides) if overrides else cfg, overrides)

        def submit(c: StackChange, side: str, outputs: dict) -> Future:
            where, cfg, overrides = runs[c.stack, side]
            return pool.submit(
                plan_in_worker,
                where,
                c.stack,
                cfg,
                overrides,
                policy=policy,
                stack_outputs=outputs,
                subset=c.subset,
                zone_files=known_entries(),  # every stack file read here, the base's too
            )

        for c in platforms:
            heads[c.stack] = head_outputs[c.stack] = submit(c, "head", {})
            if c.stack in base_cfg:
                bases[c.stack] = base_outputs[c.stack] = submit(c, "base", {})
        for c in cells:
            heads[c.stack] = submit(c, "head", {c.zone: _outcome(head_outputs[c.zone], c.zone).wire_outputs})
            if c.stack in base_cfg:  # a platform previewed has its base outputs; one not changed, the same as now
                base_in = {c.zone: _outcome(base_outputs.get(c.zone) or head_outputs[c.zone], c.zone).wire_outputs}
                bases[c.stack] = submit(c, "base", base_in)
        outcomes = []
        for c in ordered:
            head = _outcome(heads[c.stack], c.stack)
            base = (
                _outcome(bases[c.stack], f"{c.stack} (at the base)").document if c.stack in bases else empty_base(head.document)
            )
            outcomes.append(StackOutcome(c, head, base, diff_plans(base, head.document)))
            notes.print(f"previewed {c.stack} ({'subset' if c.subset else 'whole'}) in {head.seconds:.1f} s", highlight=False)
    return outcomes


def prepare_with(project: Path, stack: str, overrides: Overrides) -> Any:
    """The stack's config with a subset's tenants, validated as the program will validate it."""
    from meridian.stackconfig import load_validated

    return load_validated(project, stack, overrides)


def _outcome(future: Future, stack: str) -> Planned:
    """A worker's plan, or its error naming the stack (exit 2 for bad input, 1 for a failed program)."""
    try:
        return future.result()
    except MeridianError as exc:
        named = MeridianError(f"stack {stack}: {exc}")
        named.exit_code = exc.exit_code
        raise named from None


# --- what is shown ------------------------------------------------------------------------------


def why_line(c: StackChange) -> str:
    return "; ".join(c.reasons)


def scope_line(c: StackChange) -> str:
    if not c.subset:
        return "whole stack"
    return f"subset: {len(c.head_tenants)} tenant(s) rendered, {len(c.base_tenants)} at the base"


def limits(o: StackOutcome) -> list[str]:
    """What a subset preview did not render or cannot judge: said, never passed silently."""
    if not o.change.subset:
        return []
    out = [
        f"not judged by the subset: `{rule}` ({why}); the full cell is judged at merge/deploy"
        for rule, why in CROSS_TENANT_RULES.items()
    ]
    if o.head.not_rendered:
        out.append(
            "not rendered by the subset: the cell's tenant file Secrets "
            + ", ".join(f"`{u.rsplit('::', 1)[-1]}`" for u in o.head.not_rendered)
            + " (they list every tenant of the cell; a tenant added, removed or changed changes them): rendered "
            "with the full cell at merge/deploy"
        )
    out.append("cost gate: the subset's estimate is the rendered tenants' only; the cell's total is gated at merge/deploy")
    return out


def verdict_line(o: StackOutcome) -> str:
    policy = o.head.document["policy"]
    if policy.get("evaluated") is False:
        return "policy: skipped (--no-policy)"
    state = "FAILED" if o.mandatory else "passed"
    return f"policy: {state} ({o.mandatory} mandatory / {o.advisory} advisory violations)"


def cost_line(o: StackOutcome) -> str:
    cost = o.head.document["cost"]
    what = "rendered tenants" if o.change.subset else "stack"
    delta = o.diff.cost.total.delta if o.diff.cost.total is not None else 0.0
    line = f"cost ({what}): ${cost['monthly_total_usd']:,.2f}/month, {delta:+,.2f} against the base"
    if not o.change.subset:
        line += f"; stack cap ${cost['stack_cap_usd']:,.2f}"
    return line


def changes_json(changes: ChangeSet) -> dict[str, Any]:
    """`meridian changes --format json`: what CI makes its matrices from."""
    stacks = [
        {
            "stack": c.stack,
            "zone": c.zone,
            "role": c.role,
            "subset": c.subset,
            "reasons": c.reasons,
            "added": c.added,
            "modified": c.modified,
            "removed": c.removed,
            "at_base": c.at_base,
        }
        for c in changes.ordered()
    ]
    return {
        "base": {"ref": changes.base.ref, "commit": changes.base.commit},
        "stacks": stacks,
        "platforms": [s["stack"] for s in stacks if s["role"] == "platform"],
        "cells": [s["stack"] for s in stacks if s["role"] == "cell"],
        "removed_stacks": changes.removed_stacks,
    }


def run_changes(project_dir: Path | None, base: str | None, fmt: Format, console: Console | None = None) -> int:
    """`meridian changes`: which stacks a change touches and why, nothing previewed."""
    from meridian.project import find_project_dir

    console = console or report_console()
    changes = detect(find_project_dir(project_dir), base)
    if fmt == Format.json:
        console.out(json.dumps(changes_json(changes), indent=1), highlight=False)
    elif fmt == Format.markdown:
        console.out(selection_markdown(changes), highlight=False, end="")
    else:
        print_selection(changes, console)
    return EXIT_OK


def print_selection(changes: ChangeSet, console: Console) -> None:
    base = changes.base
    console.print(f"base: {escape(base.ref)} ({base.commit[:12]}); {len(changes.changed_paths)} files changed", highlight=False)
    if not changes.stacks:
        console.print("no stack's preview can differ from the base: nothing to preview")
    for c in changes.ordered():
        console.print(f"  {c.stack} ({c.role}, {scope_line(c)}): {escape(why_line(c))}", highlight=False, soft_wrap=True)
    for s in changes.removed_stacks:
        console.print(f"  {s}: its stack file was removed (not previewed: destroy it with the real CLI)", highlight=False)


def print_outcome(o: StackOutcome, console: Console) -> None:
    from meridian.engine.plandiff import to_markdown
    from meridian.output import section

    section(console, f"stack {o.change.stack} ({o.change.role}, {scope_line(o.change)})")
    console.print(verdict_line(o), highlight=False)
    for v in o.head.document["policy"]["violations"]:
        if v.get("level") == "mandatory":
            console.print(f"  [bold red]MANDATORY[/] {v.get('policy')}: {escape(str(v.get('urn')))}", highlight=False)
            console.print(f"    {escape(str(v.get('message')))}", highlight=False, soft_wrap=True)
    console.print(cost_line(o), highlight=False)
    for line in limits(o):
        console.print(f"[yellow]ADVISORY[/] {escape(line.replace('`', ''))}", highlight=False, soft_wrap=True)
    console.out(markdown_as_plain_text(to_markdown(o.diff).split("\n", 1)[1]), highlight=False, end="")
    for problem in o.diff.cost.head_problems:
        console.print(f"[bold red]cost gate:[/] {escape(problem)}")


def selection_markdown(changes: ChangeSet, marker: str = COMMENT_MARKER) -> str:
    base = changes.base
    out = [
        marker,
        f"## meridian preview --changed: {len(changes.stacks)} stack(s) against `{base.ref}` (`{base.commit[:12]}`)",
        "",
    ]
    if not changes.stacks:
        out.append("No stack's preview can differ from the base: nothing to preview.")
    else:
        out += ["| stack | role | previewed | why |", "|---|---|---|---|"]
        out += [f"| `{c.stack}` | {c.role} | {scope_line(c)} | {why_line(c).replace('|', '/')} |" for c in changes.ordered()]
    out += [f"- `{s}`: its stack file was removed (not previewed)" for s in changes.removed_stacks]
    return "\n".join(out) + "\n"


def changed_markdown(changes: ChangeSet, outcomes: list[StackOutcome], *, per_stack: bool = False) -> str:
    """One PR comment: which stacks and why, then per stack its diff, verdict, cost and limits.
    `per_stack` (`--only`): the one stack's comment, under the marker `meridian diff` writes for it."""
    from meridian.engine.plandiff import COMMENT_MARKER as STACK_MARKER
    from meridian.engine.plandiff import to_markdown

    marker = STACK_MARKER.format(stack=outcomes[0].change.stack) if per_stack and outcomes else COMMENT_MARKER
    out = [selection_markdown(changes, marker)]
    for o in outcomes:
        body = to_markdown(o.diff, title=f"stack `{o.change.stack}` ({o.change.role}, {scope_line(o.change)})")
        lines = body.split("\n")
        extra = [f"{verdict_line(o)} · {cost_line(o)}", ""] + [f"- {line}" for line in limits(o)]
        out.append("\n".join([*lines[1:4], *extra, *([""] if extra[-1] else []), *lines[4:]]).rstrip() + "\n")
    return "\n".join(out)
