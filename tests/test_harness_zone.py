"""The harness acts on a zone, named by its platform stack: every command that reaches a running
stack (sandbox, SLO gate, chaos, drills, rollouts, `up`) or bundles its evidence refuses a cell
stack with exit 2, naming its zone, before anything runs (docs/operations.md). In-process, through
typer's runner: the refusal comes before any program run, process or network call."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from meridian.cli import app
from meridian.errors import BadInput
from meridian.project import require_zone

from .helpers import ROOT

CELL = "us-cell-001"
ENV = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}

COMMANDS = [
    ("sandbox", "up"),
    ("sandbox", "status"),
    ("sandbox", "down"),
    ("slo",),
    ("chaos", "region-loss"),
    ("drill", "region-failover", "--target", "sandbox"),
    ("rollout", "--version", "v2"),
    ("up",),
    ("evidence", "--out", "{tmp}/bundle"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_cell_stack_is_refused_naming_its_zone(command, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = CliRunner().invoke(app, [*args, "--stack", CELL, "--project-dir", str(ROOT)], env=ENV, prog_name="meridian")
    text = " ".join((result.stdout + result.stderr).replace("│", " ").split())
    assert result.exit_code == 2, text
    assert f"stack '{CELL}' is a cell of zone 'us': a cell has no front door of its own" in text
    assert "use --stack us" in text
    assert not (tmp_path / "bundle").exists()


def test_a_platform_stack_is_its_zone_and_an_unknown_stack_is_still_unknown():
    require_zone(ROOT, "us")
    with pytest.raises(BadInput, match="unknown stack 'mars'"):
        require_zone(ROOT, "mars")
