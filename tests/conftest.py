"""Shared fixtures (helpers are in helpers.py): the real stacks previewed once per session, one
subprocess per stack, in parallel; moto; a project copy; one shared sandbox per test process."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import PROJECT_FILES, REGISTRATIONS_SCRIPT, ROOT, STACKS, Cli, meridian_cmd, run_meridian, running_sandbox

# What a fixture costs marks every test that uses it (directly or through another fixture), so no
# test has to repeat it; the markers are registered in pyproject.toml.
MARKED_BY_FIXTURE = {"previews": "slow", "zone_us": "slow", "registrations": "slow", "shared_sandbox": "sandbox"}


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


def once_per_run(tmp_path_factory, name: str, compute) -> Path:
    """The directory `compute(dir)` filled, once per test run: under xdist the first worker to ask
    computes it under a lock while the others wait, then every worker reads it (the workers share
    their base temp's parent, which is the run's own); without xdist, this process's base temp."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():  # not computed yet, or the worker computing it failed: compute (and fail) here too
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            compute(out)
            done.touch()
    return out


def _preview_stacks(out: Path) -> None:
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
    for s, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"preview of {s} failed ({proc.returncode}):\n{stderr}\n{stdout[-2000:]}"
        (out / f"{s}.cli.json").write_text(json.dumps({"code": proc.returncode, "out": stdout, "err": stderr}))


@pytest.fixture(scope="session")
def previews(tmp_path_factory) -> dict[str, StackPreview]:
    """`meridian preview --json --diagram` for every real stack, started together, once per run (the
    xdist workers share it); each worker reads the files into its own objects, which tests only read."""
    out = once_per_run(tmp_path_factory, "previews", _preview_stacks)
    return {
        s: StackPreview(
            s,
            Cli(**json.loads((out / f"{s}.cli.json").read_text())),
            json.loads((out / f"{s}.json").read_text()),
            (out / f"{s}.md").read_text(),
        )
        for s in STACKS
    }


@dataclass
class ZonePreview:
    cli: Cli
    dir: Path  # the plans and zone.json `--json DIR` wrote


def _preview_zone_us(out: Path) -> None:
    cli = run_meridian("preview", "--zone", "us", "--json", str(out), timeout=900)
    (out / "cli.json").write_text(json.dumps(dataclasses.asdict(cli)))


@pytest.fixture(scope="session")
def zone_us(tmp_path_factory) -> ZonePreview:
    """`meridian preview --zone us --json DIR` on the repo's own files, once per run (the xdist
    workers share it): its CLI result and DIR, which tests only read."""
    out = once_per_run(tmp_path_factory, "zone-us", _preview_zone_us)
    return ZonePreview(Cli(**json.loads((out / "cli.json").read_text())), out)


@pytest.fixture(scope="session")
def registrations(tmp_path_factory):
    """`registrations(stack, first_preview=False)`: what the analyzer is sent for the real program's
    stack (helpers.REGISTRATIONS_SCRIPT, in a fresh process), each stack and view computed once per
    run (the xdist workers share it: several modules judge the cell's or us's first preview); a
    fresh list on every call, which the caller may change."""

    def get(stack: str, first_preview: bool = False) -> list[dict]:
        view = ["first-preview"] if first_preview else []

        def compute(out: Path) -> None:
            proc = subprocess.run(
                [sys.executable, "-c", REGISTRATIONS_SCRIPT, str(ROOT), stack, *view],
                capture_output=True,
                text=True,
                timeout=900,
                cwd=ROOT,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            (out / "registrations.json").write_text(proc.stdout)

        out = once_per_run(tmp_path_factory, "-".join(["registrations", stack, *view]), compute)
        return json.loads((out / "registrations.json").read_text())

    return get


@pytest.fixture(scope="session")
def judge(previews):
    """The real plans replayed through the pack's analyzer (helpers.plan_judge), one analyzer per test
    process: each call configures it for its own stack and settings, so no module sees another's."""
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
    healthy (SLO runs, chaos scenarios, the service's contract): started once per test process instead of once per module
    (start and stop are most of their cost), down at the end; yields its state dir."""
    with running_sandbox("meridian-shared-test-") as state_dir:
        yield state_dir
