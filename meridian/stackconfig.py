"""The tooling's door to `stackconfig`: the same parser, its errors as exit-2 BadInput."""

from __future__ import annotations

from pathlib import Path

from meridian.errors import BadInput
from stackconfig import ConfigError, Overrides, StackConfig, StackFileError, load_stack


class InvalidConfig(BadInput):
    def __init__(self, stack: str, error: ConfigError):
        n = len(error.problems)
        lines = "\n".join(f"  {p}" for p in error.problems)
        super().__init__(f"invalid config for stack {stack!r} ({n} problem{'s' if n != 1 else ''}):\n{lines}")
        self.problems = error.problems


def load_validated(project_dir: Path, stack: str, overrides: Overrides | None = None) -> StackConfig:
    try:
        return load_stack(project_dir, stack, overrides)
    except ConfigError as exc:
        raise InvalidConfig(stack, exc) from None
    except StackFileError as exc:
        raise BadInput(str(exc)) from None
