"""The CLI's plumbing through typer's runner, in-process: -h and --version, the choices of --target,
--shape and drill, and that each flag reaches its request (the command's run function replaced by a
recorder, so nothing heavy runs)."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meridian.choices import DrillMode, DrillName, Shape, Target
from meridian.cli import app
from meridian.output import Format

from .cli_commands import ROOT

runner = CliRunner()
ENV = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}


def cli(*args: str):
    return runner.invoke(app, list(args), env=ENV, prog_name="meridian")


def words(text: str) -> str:
    """An error as one line, out of its box: click's message may wrap."""
    return " ".join(text.replace("│", " ").split())


COMMAND_PATHS = [
    (),
    ("preview",),
    ("policy",),
    ("cost",),
    ("docs",),
    ("diff",),
    ("preflight",),
    ("teardown",),
    ("sandbox",),
    ("sandbox", "up"),
    ("sandbox", "down"),
    ("sandbox", "status"),
    ("slo",),
    ("chaos",),
    ("up",),
    ("rollout",),
    ("drill",),
    ("evidence",),
    ("evidence", "verify"),
]


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "meridian")
def test_dash_h_is_help_everywhere_and_no_flag_claims_a_value(path):
    short, long = cli(*path, "-h"), cli(*path, "--help")
    assert short.exit_code == 0 and long.exit_code == 0, short.output
    assert short.output == long.output and "Usage: meridian" in short.output
    assert "<bool>" not in short.output  # a flag takes no value: its help shows no type


def test_version_prints_the_installed_package_version():
    result = cli("--version")
    assert result.exit_code == 0 and result.output == f"meridian {version('meridian')}\n"


def test_the_choices_are_those_the_commands_validate_against():
    from meridian.drills.catalog import DRILLS, MODES
    from meridian.slo.run import SHAPES
    from meridian.targets import TARGET_KINDS

    assert tuple(Target) == TARGET_KINDS
    assert tuple(Shape) == SHAPES
    assert tuple(DrillName) == DRILLS
    assert tuple(DrillMode) == MODES


@pytest.mark.parametrize(
    "args, allowed",
    [
        (("slo", "--shape", "zigzag"), "'zigzag' is not one of 'flat', 'steady', 'spike', 'soak'"),
        (("up", "--shape", "zigzag"), "'zigzag' is not one of 'flat', 'steady', 'spike', 'soak'"),
        (("slo", "--target", "gcp"), "'gcp' is not one of 'sandbox', 'aws'"),
        (("chaos", "region-loss", "--target", "gcp"), "'gcp' is not one of 'sandbox', 'aws'"),
        (("up", "--target", "gcp"), "'gcp' is not one of 'sandbox', 'aws'"),
        (("rollout", "--target", "gcp"), "'gcp' is not one of 'sandbox', 'aws'"),
        (("drill", "region-failover", "--target", "gcp"), "'gcp' is not one of 'sandbox', 'aws'"),
        (("drill", "sideways", "--target", "sandbox"), "'sideways' is not one of 'region-failover', 'database-failover'"),
        (("drill", "failback", "--target", "aws", "--mode", "maybe"), "'maybe' is not one of 'planned', 'unplanned'"),
    ],
)
def test_a_bad_choice_exits_2_naming_the_allowed_values(args, allowed):
    result = cli(*args)
    assert result.exit_code == 2 and allowed in words(result.output), result.output


@pytest.mark.parametrize("path", [("slo",), ("up",), ("rollout",), ("drill",)])
def test_help_lists_the_choices(path):
    text = cli(*path, "--help").output
    assert "sandbox|aws" in text
    if path in (("slo",), ("up",)):
        assert "flat|steady|spike|soak" in text


# --- each flag reaches its request -------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch):
    """Replace `meridian.commands.<module>.<function>` by a recorder of the request it is given."""
    calls: list = []

    def record(module: str, function: str = "run"):
        import importlib

        monkeypatch.setattr(
            importlib.import_module(f"meridian.commands.{module}"), function, lambda req, *a, **k: calls.append(req)
        )
        return calls

    return record


@pytest.mark.parametrize(
    "args, module, function",
    [
        (("slo",), "slo", "run_slo"),
        (("chaos", "region-loss"), "chaos", "run_chaos"),
        (("up",), "up", "run_up"),
        (("rollout",), "rollout", "run_rollout"),
    ],
)
def test_out_is_the_folder_a_run_writes_into(recorded, tmp_path, args, module, function):
    calls = recorded(module, function)
    result = cli(*args, "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    (req,) = calls
    assert req.report_dir == tmp_path / "run" and req.target is Target.sandbox
    old = cli(*args, "--report", str(tmp_path / "run"))
    assert old.exit_code == 2 and "No such option: --report" in old.output


def test_evidence_out_is_the_bundle_folder(recorded, tmp_path):
    calls = recorded("evidence", "build")
    assert cli("evidence", "--stack", "eu", "--out", str(tmp_path / "bundle")).exit_code == 0
    (req,) = calls
    assert (req.stack, req.out) == ("eu", tmp_path / "bundle")


def test_slo_flags_reach_the_request_as_enums(recorded, tmp_path):
    calls = recorded("slo", "run_slo")
    result = cli(
        "slo", "-s", "eu", "--target", "aws", "--shape", "spike", "-u", "7", "-t", "12", "--slo", "s.yaml", "--workers", "2"
    )
    assert result.exit_code == 0, result.output
    (req,) = calls
    assert (req.stack, req.target, req.shape, req.users, req.duration_s, req.slo_path, req.workers) == (
        "eu",
        Target.aws,
        Shape.spike,
        7,
        12.0,
        Path("s.yaml"),
        2,
    )


def test_drill_flags_reach_the_request(recorded, tmp_path):
    calls = recorded("drill", "run_drill")
    result = cli(
        "drill", "database-failover", "--target", "aws", "--mode", "unplanned", "--evidence", str(tmp_path / "e"),
        "--records", str(tmp_path / "r"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (req,) = calls
    assert (req.drill, req.target, req.mode) == (DrillName.database_failover, Target.aws, DrillMode.unplanned)
    assert (req.evidence, req.records) == (tmp_path / "e", tmp_path / "r")


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_sandbox_format_replaces_the_json_flag(recorded, command):
    calls = recorded("sandbox", f"run_{command}")
    assert cli("sandbox", command, "--format", "json").exit_code == 0
    assert calls[0].format is Format.json
    old = cli("sandbox", command, "--json")
    assert old.exit_code == 2 and "No such option: --json" in old.output


def test_sandbox_down_and_status_print_json_on_stdout(tmp_path):
    down = cli("sandbox", "down", "--format", "json", "--state-dir", str(tmp_path), "--project-dir", str(ROOT))
    assert down.exit_code == 0, down.output
    assert json.loads(down.stdout) == {"stopped": [], "already_gone": [], "ports_busy": [], "wiped": False}
    status = cli("sandbox", "status", "--format", "json", "--state-dir", str(tmp_path), "--project-dir", str(ROOT))
    assert status.exit_code == 1 and json.loads(status.stdout)["healthy"] is False  # nothing is up


def test_sandbox_up_refuses_markdown_with_exit_2(tmp_path):
    result = cli("sandbox", "up", "--format", "markdown", "--state-dir", str(tmp_path), "--project-dir", str(ROOT))
    assert result.exit_code == 2 and "prints text or json, not markdown" in words(result.output)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "args, module, function, field",
    [
        (("preview",), "preview", "run_preview", "json_path"),
        (("policy",), "policy", "run_policy", "json_path"),
        (("cost",), "cost", "run_cost", "json_path"),
        (("preflight",), "preflight", "run_preflight", "json_path"),
        (("diff", "a.json", "b.json"), "diff", "run_diff", "json_path"),
    ],
)
def test_json_path_is_always_a_file(recorded, tmp_path, args, module, function, field):
    calls = recorded(module, function)
    assert cli(*args, "--json", str(tmp_path / "out.json")).exit_code == 0
    assert getattr(calls[0], field) == tmp_path / "out.json"
    bare = cli(*args, "--json")
    assert bare.exit_code == 2 and "requires an argument" in bare.output
