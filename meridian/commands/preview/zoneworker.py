"""What runs in a zone's worker process (`meridian preview --zone`): one stack previewed, its plan
written, a summary returned; or one stack bare (the floor). A fresh process per stack: the SDK's
runtime state is global."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from meridian.commands.common import print_violations
from meridian.commands.preview.stack import write_plan_json


@dataclass
class StackPreview:
    """One stack of a zone as its worker previewed it: what the zone's tree, table and index show,
    never its plan (the worker writes that, with --json): the zone's process stays small whatever
    the zone's size. Plain data, sent back from the worker process."""

    stack: str
    resources: int  # custom resources, not providers or components: the count `--stack` prints
    mandatory: int
    advisory: int
    policy_evaluated: bool
    cost_usd: float
    stack_cap_usd: float
    tree: Any  # render.TreeNode
    wire_outputs: dict[str, Any]  # what a StackReference to this stack reads
    stacks_read: list[str]
    seconds: float
    violations_text: str  # the violations as `--stack` prints them
    cost_summary: str
    cost_problems: list[str]
    preflight: str  # the deploy preflight's summary line, as `--stack` prints it
    tenants: int = 0
    facts: Any = None  # zonechecks.StackFacts
    pool_buckets: list[str] = field(default_factory=list)  # a platform's shared tenant buckets (cell_handles)
    context: list[Any] = field(default_factory=list)  # a platform's resources as the pack sees them (Subjects)
    in_platform: int = 0  # a cell's findings the pack still leaves to its platform (none once it sees the platform's resources)
    peak_rss_mib: float = 0.0  # the worker process's own peak
    analyzers_peak_rss_mib: float = 0.0  # the largest of the analyzer processes it started
    timings: dict[str, Any] | None = None  # the pack's (with --timings)
    cpu_s: float = 0.0  # the worker's CPU and its analyzers'
    plan_file: Path | None = None  # where the worker wrote the plan (--json): read it from there, one stack at a time
    pair_costs: list[Any] = field(default_factory=list)  # a platform's tenant cluster pairs' costs (costmodel.PairCost)
    tenant_costs: list[Any] = field(default_factory=list)  # each tenant's estimate in this stack (costmodel.TenantCost)

    def violations(self, level: str) -> int:
        return self.mandatory if level == "mandatory" else self.advisory


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
    held: dict[Path, dict[str, Any]] | None = None,
    context: list[Any] | None = None,
    zone_regions: tuple[str, ...] = (),
    json_path: Path | None = None,
    cores: int | None = None,
) -> StackPreview:
    """One stack of a zone, in a worker process of its own (the SDK's runtime state is global):
    `plan_stack`, the run `--stack` makes, with the referenced stacks' outputs given, the stack
    files held in memory (`held`, a zone's synthetic cells) and, for a cell, its platform's
    resources beside its own for the pack (`context`); its plan written to `json_path`, only a
    summary returned. `cores`: the cores the worker has to itself (plan_stack's)."""
    import io

    from meridian.engine.pipeline import plan_stack
    from meridian.preflight.checks import run_checks
    from meridian.preflight.run import summary_line
    from meridian.render import cost_summary, plan_tree, region_roles
    from stackconfig import memory

    from .zonechecks import stack_facts

    if held:
        memory.hold(held)
    staged = plan_stack(
        project_dir,
        stack,
        cfg,
        policy=policy,
        first_preview=first_preview,
        stack_outputs=stack_outputs,
        config_in_memory=bool(held),
        policy_context=context or (),
        cores=cores,
    )
    shown = Console(file=io.StringIO(), width=160, record=True)
    if staged.policy is not None:
        print_violations(staged.policy, shown)
    document = staged.document(timings=timings)
    if json_path is not None:
        write_plan_json(document, json_path)
    policy_doc = document["policy"]
    levels = [v.get("level") for v in policy_doc["violations"]]
    preview = StackPreview(
        stack=stack,
        resources=staged.run.resource_count,
        mandatory=levels.count("mandatory"),
        advisory=levels.count("advisory"),
        policy_evaluated=policy_doc.get("evaluated") is not False,
        cost_usd=float(document["cost"]["monthly_total_usd"]),
        stack_cap_usd=document["cost"]["stack_cap_usd"],
        tree=plan_tree(staged.plan, full=full, roles=region_roles(cfg)),
        wire_outputs=staged.run.wire_outputs,
        stacks_read=staged.run.stacks_read,
        seconds=staged.run.seconds,
        violations_text=shown.export_text(),
        cost_summary=cost_summary(staged.cost),
        cost_problems=list(staged.cost.problems),
        preflight=summary_line(run_checks(staged.plan, cfg, project_dir)),
        tenants=len(cfg.tenants),
        facts=stack_facts(stack, document["resources"], zone_regions),
        timings=policy_doc.get("timings"),
    )
    preview.plan_file = json_path
    preview.pair_costs, preview.tenant_costs = list(staged.cost.pairs), list(staged.cost.tenants)
    preview.in_platform = sum(IN_PLATFORM_MARK in v.get("message", "") for v in policy_doc["violations"])
    if not cfg.is_cell:
        from meridian.engine.policy.wire import Subject

        preview.context = [Subject.from_registration(r) for r in staged.run.registrations]
        handles = (staged.run.outputs.get("cell_handles") or {}).get("regions") or {}
        preview.pool_buckets = sorted(
            {
                h.get("pool_bucket_name")
                for h in handles.values()
                if isinstance(h, dict) and isinstance(h.get("pool_bucket_name"), str)
            }
        )
    del document, staged
    preview.peak_rss_mib, preview.analyzers_peak_rss_mib = _peaks()
    preview.cpu_s = _cpu_seconds()
    return preview


# how InPlatform (policies/ruleutil) words a finding a cell leaves to its platform
IN_PLATFORM_MARK = "which this cell stack reads through a StackReference"


def _peaks() -> tuple[float, float]:
    """This process's peak RSS and its largest reaped child's (the analyzers), in MiB."""
    import resource

    scale = 1 / 1024  # Linux reports KiB
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale,
    )


def _cpu_seconds() -> float:
    """CPU seconds of this process and the children it reaped (the analyzers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bare_stack(
    project_dir: Path, stack: str, stack_outputs: dict[str, dict[str, Any]], held: dict[Path, dict[str, Any]] | None
) -> dict[str, Any]:
    """One stack under mocks and nothing else (`--stack S --bare`), in a worker of its own."""
    from meridian.engine.run import run_program
    from stackconfig import memory

    if held:
        memory.hold(held)
    run = run_program(project_dir, stack, record=False, stack_outputs=stack_outputs)
    return {
        "stack": stack,
        "resources": run.resource_count,
        "program_s": round(run.seconds, 3),
        "wire_outputs": run.wire_outputs,
        "peak_rss_mib": round(_peaks()[0]),
    }
