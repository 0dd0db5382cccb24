"""One exception hierarchy, mapped to the exit codes every `meridian` command uses."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE = 1  # a gate failed: mandatory policy violation, cost over cap, SLO breach, drill objective missed
EXIT_BAD_INPUT = 2  # bad input: config, flags, missing files


class MeridianError(Exception):
    exit_code = EXIT_BAD_INPUT


class BadInput(MeridianError):
    exit_code = EXIT_BAD_INPUT


class GateFailed(MeridianError):
    exit_code = EXIT_GATE


class ProgramFailed(GateFailed):
    """The Pulumi program itself failed under the offline engine (a preview that would fail)."""
