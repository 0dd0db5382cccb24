"""Shared fixtures (helpers are in helpers.py): the real stacks previewed once per session, one
subprocess per stack, in parallel; moto; a project copy; one shared sandbox per test process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import PROJECT_FILES, ROOT, STACKS, Cli, meridian_cmd, running_sandbox

# What a fixture costs marks every test that uses it (directly or through another fixture), so no
# test has to repeat it; the markers are registered in pyproject.toml.
MARKED_BY_FIXTURE = {"previews": "slow", "shared_sandbox": "sandbox"}


def pytest_runtest_setup(item):
    helpers.running_test_markers.clear()
    helpers.running_test_markers.update(m.name for m in item.iter_markers())


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in item.fixturenames:
                item.add_marker(marker)


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


@pytest.fixture(scope="module")
def judge(previews):
    """The real plans replayed through the pack's analyzer, one analyzer per test module (helpers.plan_judge)."""
    with helpers.plan_judge(previews) as run:
        yield run


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A scratch copy of the Pulumi project, to break on purpose."""
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    for part in ("components", "stackconfig"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.fixture(scope="session")
def shared_sandbox():
    """One us sandbox (time scale 20, fault proxies) for the modules that load it and leave it
    healthy (SLO runs, chaos scenarios): started once per test process instead of once per module
    (start and stop are most of their cost), down at the end; yields its state dir."""
    with running_sandbox("meridian-shared-test-") as state_dir:
        yield state_dir
