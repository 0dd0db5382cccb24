"""A cell stack's preview needs its platform's outputs: the platform runs first, in a process of
its own (the SDK's runtime state is global: one stack per process), and its outputs, as its
state would hold them, answer the cell's StackReference (engine.mocks)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from meridian.errors import ProgramFailed


def referenced_outputs(project_dir: Path, platform: str | None, *, first_preview: bool = False) -> dict[str, dict[str, Any]]:
    """The outputs a stack's StackReferences read: a cell's platform's, from a preview of the platform
    in its own process (unknowns stay unknown); nothing for a platform stack."""
    if platform is None:
        return {}
    from meridian.engine.run import stack_wire_outputs

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            outputs = pool.submit(stack_wire_outputs, project_dir, platform, first_preview=first_preview).result()
        except ProgramFailed as exc:
            raise ProgramFailed(f"platform stack {platform} (previewed first, for its outputs): {exc}") from None
    return {platform: outputs}
