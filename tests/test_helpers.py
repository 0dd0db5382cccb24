"""A sandbox part that is not installed (tests/helpers.py): a skip on a developer's machine, a failure
under CI (CI=true) naming the part and how CI installs it, since there a skip would hide that the
sandbox tests never ran. The parts are made absent the way a machine lacks them: nothing at the
path the sandbox looks up."""

from __future__ import annotations

import pytest

from meridian.sandbox import postgres as pglib
from tests import helpers


def outcome(call) -> tuple[str, str]:
    """("skip" | "fail", message) of a call that must end the test: caught here, so that a skip
    where a failure is due fails this test instead of skipping it."""
    try:
        call()
    except pytest.skip.Exception as exc:
        return "skip", str(exc)
    except pytest.fail.Exception as exc:
        return "fail", str(exc)
    raise AssertionError(f"{call.__name__} returned: the part was found")


def in_sandbox() -> None:
    with helpers.running_sandbox("meridian-never-started-"):
        raise AssertionError("a sandbox started without its parts")


@pytest.fixture(autouse=True)
def as_a_sandbox_test(monkeypatch):
    """These tests stand in for a sandbox test (whose parts are missing): marked as one would be."""
    monkeypatch.setattr(helpers, "running_test_markers", {"sandbox"})


@pytest.fixture
def no_haproxy(monkeypatch, tmp_path):
    monkeypatch.setenv("MERIDIAN_HAPROXY", str(tmp_path / "haproxy"))  # only this path is looked at, and it is empty


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_a_missing_part_skips_outside_ci(no_haproxy, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    for call in (helpers.require_haproxy, helpers.require_sandbox_parts):
        kind, message = outcome(call)
        assert kind == "skip" and message.startswith("sandbox part not installed: haproxy not found"), (kind, message)


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_a_missing_part_fails_under_ci_naming_it_and_how_ci_installs_it(no_haproxy, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    kind, message = outcome(helpers.require_haproxy)
    assert kind == "fail", message
    assert message.startswith("sandbox part missing under CI: haproxy not found"), message
    assert "installs the Debian packages postgresql and haproxy" in message and ".ci/run" in message


def test_missing_postgresql_fails_a_sandbox_under_ci(monkeypatch):
    def absent():
        raise pglib.PostgresMissing("PostgreSQL server binaries (initdb, postgres, pg_basebackup) not found")

    monkeypatch.setattr(pglib, "find_pg", absent)
    monkeypatch.setenv("CI", "true")
    for call in (helpers.require_sandbox_parts, in_sandbox):
        kind, message = outcome(call)
        assert kind == "fail" and "PostgreSQL server binaries (initdb, postgres, pg_basebackup) not found" in message, message


def test_a_present_part_passes_under_ci(monkeypatch, tmp_path):
    exe = tmp_path / "haproxy"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("MERIDIAN_HAPROXY", str(exe))
    monkeypatch.setenv("CI", "true")
    assert helpers.require_haproxy() == str(exe)


def test_sandbox_parts_are_refused_to_a_test_not_marked_sandbox(monkeypatch):
    monkeypatch.setattr(helpers, "running_test_markers", {"slow", "parametrize"})
    with pytest.raises(pytest.fail.Exception, match="not marked `sandbox`"):
        helpers.require_sandbox_marker()
    monkeypatch.setattr(helpers, "running_test_markers", {"sandbox"})
    helpers.require_sandbox_marker()
