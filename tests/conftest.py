"""Shared fixtures: the real stacks previewed once per session, one subprocess per stack, in parallel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("us", "eu", "apac")
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.us.yaml", "Pulumi.eu.yaml", "Pulumi.apac.yaml", "__main__.py")


@dataclass
class Cli:
    code: int
    out: str
    err: str


def meridian_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "meridian", *args]


@pytest.fixture
def aws_env(monkeypatch):
    """moto for every AWS call in the test, with fake credentials (never a real profile's)."""
    from moto import mock_aws

    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def run_meridian(*args: str, cwd: Path = ROOT, timeout: float = 300) -> Cli:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    proc = subprocess.run(meridian_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return Cli(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class StackPreview:
    stack: str
    cli: Cli
    plan: dict
    diagram: str


@pytest.fixture(scope="session")
def previews(tmp_path_factory) -> dict[str, StackPreview]:
    """`meridian preview --json --diagram` for every real stack, started together."""
    out = tmp_path_factory.mktemp("previews")
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    procs = {
        s: subprocess.Popen(
            meridian_cmd("preview", "--stack", s, "--json", str(out / f"{s}.json"), "--diagram", str(out / f"{s}.md")),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for s in STACKS
    }
    results = {}
    for s, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        cli = Cli(proc.returncode, stdout, stderr)
        assert cli.code == 0, f"preview of {s} failed ({cli.code}):\n{stderr}\n{stdout[-2000:]}"
        results[s] = StackPreview(s, cli, json.loads((out / f"{s}.json").read_text()), (out / f"{s}.md").read_text())
    return results


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A scratch copy of the Pulumi project, to break on purpose."""
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    for part in ("components", "stackconfig"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def full_project_copy(dest: Path) -> Path:
    """A copy of everything a user's checkout gives the CLI: the program, the service it renders,
    the policy pack (reports and state then land in the copy, not in this checkout)."""
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, dest / name)
    for part in ("components", "stackconfig", "service", "policies"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="session")
def shared_sandbox():
    """One us sandbox (time scale 20, fault proxies) for the modules that load it and leave it
    healthy (SLO runs, chaos scenarios): started once per test process instead of once per module
    (start and stop are most of their cost), down at the end; yields its state dir."""
    from tests.test_targets_sandbox import running_sandbox, sandbox_parts_missing

    missing = sandbox_parts_missing()
    if missing:  # pragma: no cover - CI installs both
        pytest.skip(f"sandbox parts not installed: {missing}")
    with running_sandbox("meridian-shared-test-") as state_dir:
        yield state_dir
