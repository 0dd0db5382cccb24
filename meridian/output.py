"""How reports reach their reader: the `--format` choice and the console they print on.

Kept free of heavy imports: the CLI declares its options from here before any command runs.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

# Wide enough that no table or tree line of a real plan is cut or wrapped when written to a pipe/file.
PIPE_WIDTH = 10_000


class Format(StrEnum):
    """`--format` of every report command: text for people, json for programs, markdown for PR comments."""

    text = "text"
    json = "json"
    markdown = "markdown"


def report_console(*, stderr: bool = False) -> Console:
    """A terminal gets Rich at the terminal's width, in colour unless NO_COLOR is set. A pipe or a
    file (CI logs) gets plain text without colour and without a width limit, so type and tenant
    names are never truncated to fit 80 columns."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    interactive = stream.isatty()
    no_color = "NO_COLOR" in os.environ or not interactive
    return Console(
        file=stream,
        width=None if interactive else PIPE_WIDTH,
        no_color=no_color,
        color_system="auto" if not no_color else None,
        highlight=False,
        soft_wrap=not interactive,
    )
