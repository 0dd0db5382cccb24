"""One offline plan of a stack: the program under mocks with the policy pack streamed beside it,
then the cost estimate. `meridian preview` renders it and `meridian evidence` bundles it: both
get the same document from the same run (and the same checks: a stale policy config exits 2)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meridian.costmodel import CostReport, estimate
from meridian.engine.plan import Plan
from meridian.engine.run import PROJECT, ProgramRun, platform_context, run_program
from stackconfig import Overrides


@dataclass
class StackPlan:
    run: ProgramRun
    plan: Plan
    cost: CostReport
    policy: Any  # PolicyReport, or None when run without the pack

    def document(self, *, timings: bool = False) -> dict[str, Any]:
        """The plan JSON (docs/design.md). Without `timings`, two runs of the same program give the same bytes."""
        policy = self.policy.to_json() if self.policy else {"evaluated": False, "reason": "--no-policy", "violations": []}
        if not timings:
            policy.pop("timings", None)
        return self.plan.to_json(policy, self.cost.to_json())


def open_policy_stream(
    scope: contextlib.ExitStack,
    project_dir: Path,
    stack: str,
    cfg: Any = None,
    *,
    overridden: bool = False,
    context: Sequence[Any] = (),
    cores: int | None = None,
):
    """Read the stack's policy config (exit 2 if missing or bad; with `cfg`, also if it has drifted
    from the stack config), start the pack's analyzer (stopped when `scope` closes, whatever
    happens) and return the stream to feed registrations into. `overridden`: `cfg` is the stack
    config with overrides (`--tenants N`, a zone's cells held in memory), so the settings generated
    from it replace the file's generated ones for this run (the file still answers for the stack as
    written; a stack held in memory has no file: its settings are what `meridian policy
    --write-config` would write first). `context`: a cell's platform's resources (policy Subjects),
    which the stack rules see beside the cell's: what the cell leaves to its platform is then judged
    on the platform's real resources, not reported as in the platform (generated.with_platform).
    `cores`: how many cores this preview has to itself (default: the machine's), which decides
    whether AnalyzeStack is split over a second analyzer (`stack_shards`)."""
    from meridian.engine.policy import Analyzer, PolicyStream, pack_dir_of, stack_shards

    path, file_config = policy_file_config(project_dir, stack, cfg, overridden=overridden)
    if context:
        from meridian.engine.policy.generated import with_platform

        file_config = with_platform(file_config)
    # One analyzer for everything, streamed during the program; a large stack also gets a second one
    # (one per core) to split AnalyzeStack's stack policies with.
    analyzer = scope.enter_context(Analyzer(pack_dir_of(project_dir)))
    helper = (lambda: scope.enter_context(Analyzer(pack_dir_of(project_dir)))) if stack_shards(cores) > 1 else None
    stream = PolicyStream(analyzer, file_config, path.relative_to(project_dir), stack, helper_factory=helper, context=context)
    scope.callback(stream.stop)  # its relay process, whatever happens
    return stream


def policy_file_config(project_dir: Path, stack: str, cfg: Any = None, *, overridden: bool = False) -> tuple[Path, Any]:
    """The stack's policy config file and its content as this run uses it (open_policy_stream's
    `overridden`); exit 2 if it is missing, bad or drifted from the stack config."""
    from meridian.engine.policy import config_path, load_policy_config

    path = config_path(project_dir, stack)
    file_config = load_policy_config(path) if path.exists() or not overridden else None
    if cfg is not None and overridden:
        from meridian.engine.policy.generated import merged

        file_config = merged(file_config, cfg, project_dir, stack)
    elif cfg is not None:
        from meridian.engine.policy.generated import require_current

        require_current(project_dir, path, file_config, cfg, stack)
    return path, file_config


def beside_platform(
    project_dir: Path, stack: str, cfg: Any, *, overridden: bool = False, first_preview: bool = False
) -> tuple[Mapping[str, dict[str, Any]] | None, Sequence[Any]]:
    """For a cell judged by the pack: its platform previewed and recorded first, in a process of its
    own (`engine.run.platform_context`), so the cell's StackReference reads the outputs and the
    pack's stack rules see the resources of that same run; (None, ()) for a platform, whose
    program reads no other stack. A bad policy config exits 2 before any program runs."""
    if cfg is None or not cfg.is_cell:
        return None, ()
    policy_file_config(project_dir, stack, cfg, overridden=overridden)
    return platform_context(project_dir, cfg.platform, first_preview=first_preview)


def plan_stack(
    project_dir: Path,
    stack: str,
    cfg: Any,
    *,
    overrides: Overrides | None = None,
    policy: bool = True,
    first_preview: bool = False,
    while_analyzing: Callable[[Plan, CostReport], None] | None = None,
    stack_outputs: Mapping[str, dict[str, Any]] | None = None,
    config_in_memory: bool = False,
    policy_context: Sequence[Any] = (),
    cores: int | None = None,
) -> StackPlan:
    """Run the program once, recording every registration, with the policy pack (unless `policy`
    is off) analyzing them as they come. `while_analyzing(plan, cost)` runs after the program and
    before the analyzer's last answer (its stack rules): a caller renders there for free.
    `stack_outputs`: what the program's StackReferences read (default: a cell's platform's, engine.run).
    `config_in_memory`: `cfg` differs from the stack's file (stackconfig.memory holds it); its policy
    settings are generated from it. `policy_context` and `cores`: open_policy_stream's. A cell given
    neither outputs nor context (`meridian preview --stack <cell>`, as a zone's preview judges it) has its platform
    previewed first, in a process of its own, for both: its outputs and its resources."""
    overridden = overrides is not None or config_in_memory
    if policy and stack_outputs is None and not policy_context:
        stack_outputs, policy_context = beside_platform(
            project_dir, stack, cfg, overridden=overridden, first_preview=first_preview
        )
    with contextlib.ExitStack() as scope:
        # bad policy config exits 2 before the program; the analyzer starts now and works while the program runs
        stream = (
            open_policy_stream(scope, project_dir, stack, cfg, overridden=overridden, context=policy_context, cores=cores)
            if policy
            else None
        )
        run = run_program(
            project_dir,
            stack,
            record=True,
            overrides=overrides,
            on_register=stream.on_register if stream else None,
            first_preview=first_preview,
            stack_outputs=stack_outputs,
        )
        if stream is not None:
            stream.close()  # the analyzer drains and runs AnalyzeStack in the background from here
        with _program_heap_frozen():
            plan = Plan(PROJECT, stack, run.registrations, run.outputs)
            cost = estimate(plan.resource_dicts, cfg, stack)
            if while_analyzing is not None:
                while_analyzing(plan, cost)
            report = stream.finish() if stream is not None else None
    return StackPlan(run, plan, cost, report)


@contextlib.contextmanager
def _program_heap_frozen():
    """The cyclic GC leaves the program's objects alone while the plan is built from them.

    Everything the program made (the SDK's resources and outputs, the registrations) is still
    alive here and is read, not freed; yet building the plan (a dict per value of every resource)
    makes the GC walk all of it again: at 1,000 tenants one full collection of the 1.6 GiB heap was
    ~85 % of building the plan's resources (measured, tests/test_engine_gc.py holds the scope).
    `gc.freeze` moves what exists to a generation no collection walks; what the plan allocates is
    collected as usual. The program's own cyclic garbage waits until `unfreeze`, when the heap goes
    back to the oldest generation as it was."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
