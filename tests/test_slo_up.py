"""`meridian up`: the gates in order. A failed policy gate applies nothing; the AWS path without
the Pulumi CLI exits 2 before any step; bad input exits 2 before any step. (The green path,
preview -> sandbox up -> SLO gate, is `make sandbox && meridian up --stack us --target sandbox`:
its parts are tested in test_slo_sandbox and the sandbox's own tests.)"""

from __future__ import annotations

import json
import shutil

import pytest

from meridian.commands import up as uplib
from meridian.errors import BadInput
from tests.conftest import ROOT, run_meridian


def test_aws_without_the_pulumi_cli_exits_2_before_any_step(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    ran = []
    monkeypatch.setattr(uplib.subprocess, "run", lambda *a, **k: ran.append(a))
    with pytest.raises(BadInput, match="needs the Pulumi CLI .* Nothing was run"):
        uplib.run_up(uplib.UpRequest("us", "aws", project_dir=ROOT, report_dir=tmp_path))
    assert ran == []  # not even the preview


def test_aws_without_the_cli_through_the_command_line():
    cli = run_meridian("up", "--stack", "us", "--target", "aws")
    if shutil.which("pulumi"):  # pragma: no cover - no CLI on these machines
        pytest.skip("the Pulumi CLI is installed here")
    assert cli.code == 2 and "needs the Pulumi CLI" in cli.err and "Traceback" not in cli.err


@pytest.mark.parametrize(
    "args, message",
    [
        (("--target", "gcp"), "unknown target 'gcp'"),
        (("--users", "0"), "--users must be 1..10000"),
        (("--time-scale", "0"), "--time-scale must be a number > 0"),
        (("--stack", "mars"), "unknown stack 'mars'"),
    ],
)
def test_bad_input_exits_2_before_any_step(args, message, tmp_path):
    cli = run_meridian("up", "--stack", "us", *args, "--state-dir", str(tmp_path))
    assert cli.code == 2 and message in cli.err, cli.err
    assert not any(tmp_path.iterdir())


def test_a_failed_policy_gate_applies_nothing(project_copy, tmp_path):
    shutil.copytree(ROOT / "policies", project_copy / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    config = project_copy / "policies" / "config" / "us.json"
    doc = json.loads(config.read_text())
    doc["rds-backup-retention-sufficient"]["minRetentionDays"] = 30  # the stack keeps 14 days
    config.write_text(json.dumps(doc))
    state = tmp_path / "state"
    cli = run_meridian(
        "up",
        "--stack",
        "us",
        "--target",
        "sandbox",
        "--project-dir",
        str(project_copy),
        "--state-dir",
        str(state),
        "--report",
        str(tmp_path / "report"),
        timeout=300,
    )
    assert cli.code == 1, cli.out + cli.err
    assert "preview gate failed for us" in cli.err and "nothing was applied" in cli.err
    assert "rds-backup-retention-sufficient" in cli.out
    assert not state.exists()  # no sandbox was started
