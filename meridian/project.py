"""Where the Pulumi project lives, and its stacks."""

from __future__ import annotations

from pathlib import Path

from meridian.errors import BadInput


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: cwd) holding Pulumi.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise BadInput(f"no Pulumi.yaml in {here} or any parent: run meridian inside the project (or pass --project-dir)")


def stacks_of(project_dir: Path) -> list[str]:
    """The stacks of the project: its stack files, and those held in memory (stackconfig.memory)."""
    from stackconfig.memory import stack_files

    return [p.name[len("Pulumi.") : -len(".yaml")] for p in stack_files(project_dir)]


def platform_stacks_of(project_dir: Path) -> list[str]:
    """The stacks that are not cells (a cell's file names `meridian:platform`)."""
    from stackconfig.zone import PLATFORM_KEY, stack_config

    return [s for s in stacks_of(project_dir) if PLATFORM_KEY not in (stack_config(project_dir, s) or {})]


def require_stack(project_dir: Path, stack: str) -> None:
    known = stacks_of(project_dir)
    if stack not in known:
        raise BadInput(f"unknown stack {stack!r}: no Pulumi.{stack}.yaml in {project_dir} (stacks: {', '.join(known) or 'none'})")


def require_zone(project_dir: Path, stack: str) -> None:
    """What the harness (sandbox, SLO gate, chaos, drills, rollouts, evidence) acts on: a zone, named
    by its platform stack. The zone's one front door serves the tenants of all its stacks (the
    platform's inline ones and every cell's tenant file), so `--stack us` means the zone `us`; a
    cell has no front door, database or workload of its own and is refused (exit 2)."""
    from stackconfig.zone import PLATFORM_KEY, stack_config

    require_stack(project_dir, stack)
    platform = (stack_config(project_dir, stack) or {}).get(PLATFORM_KEY)
    if platform is not None:
        raise BadInput(
            f"stack {stack!r} is a cell of zone {platform!r}: a cell has no front door of its own (its platform's "
            f"service serves its tenants); use --stack {platform}: the sandbox, SLO gate, chaos, drills, rollouts and "
            "evidence act on a whole zone, named by its platform stack"
        )
