"""How reports reach their reader: the `--format` choice and the console they print on.

Kept free of heavy imports: the CLI declares its options from here before any command runs.
"""

from __future__ import annotations

import os
import sys
import time
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


def section(console: Console, title: str) -> None:
    """A heading between the stages of a long command: Rich's rule across a terminal; in a pipe or
    a CI log (PIPE_WIDTH wide) one plain line, not 10,000 characters of rule."""
    if console.is_terminal:
        console.rule(title)
    else:
        console.print(f"── {title} ──", highlight=False, soft_wrap=True)


class Progress:
    """A status line for a long operation. In a terminal, Rich's live spinner line; anywhere else (a
    CI log, a pipe) the spinner would print nothing at all, so the line is printed as plain text:
    the first update, then at most one every `every_s` seconds, and the last one when it stops."""

    def __init__(self, console: Console, text: str = "", *, every_s: float = 5.0) -> None:
        self.console, self.text, self.every_s = console, text, every_s
        self._status = console.status(text) if console.is_terminal else None
        self._printed_at: float | None = None
        self._shown = ""

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Progress:
        if self._status is not None:
            self._status.start()
        elif self.text and self.text != self._shown:  # started again on the same line: said once
            self._print()
        return self

    def update(self, text: str) -> None:
        self.text = text
        if self._status is not None:
            self._status.update(text)
        elif self._printed_at is None or time.monotonic() - self._printed_at >= self.every_s:
            self._print()

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
        elif self.text and self.text != self._shown:
            self._print()

    def _print(self) -> None:
        self.console.print(self.text, highlight=False, soft_wrap=True)
        self._printed_at, self._shown = time.monotonic(), self.text
