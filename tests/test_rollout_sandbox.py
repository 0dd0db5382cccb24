"""`meridian rollout` on a real sandbox, windows of a second or two: a good version reaches 100 %
with a provenance record, a version 600 ms slower is rolled back at its first (1 %) step with exit 1
while stable's own requests keep the SLO, `--rollback` mid-way restores stable, and an interrupted
rollout resumes where it stopped. Bounded by counts and generous timeouts, never by timing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from meridian.evidence.manifest import verify
from meridian.slo.evaluate import OK, percentile
from meridian.slo.raw import read_raw
from meridian.targets.sandbox import SandboxTarget
from tests.helpers import ROOT, STACK, meridian_cmd, run_meridian, running_sandbox

pytestmark = pytest.mark.sandbox

FAST = ("--min-samples", "5", "--users", "30")
# the tests judge the machinery, not this shared 2-core machine: p95 500 ms (a canary 600 ms slower
# breaches it on every request) and room for noise in the objectives that are not under test
SLO = "version: 1\nobjectives:\n  p95_ms: 500\n  p99_ms: 5000\n  error_rate: 0.05\n"


@pytest.fixture(scope="module")
def state_dir():
    with running_sandbox("meridian-rollout-test-") as d:
        yield d


@pytest.fixture
def target(state_dir) -> SandboxTarget:
    t = SandboxTarget(STACK, state_dir / STACK)
    for role in ("primary", "dr"):  # every test starts from all stable
        t.stop_canary(role)
    assert t.canary_weights() == {"primary": 0, "dr": 0}
    return t


def rollout(state_dir: Path, tmp_path: Path, *args: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "slo.yaml").write_text(SLO)
    return run_meridian(
        "rollout",
        "--stack",
        STACK,
        "--state-dir",
        str(state_dir),
        "--out",
        str(tmp_path / "report"),
        "--evidence",
        str(tmp_path / "evidence"),
        "--slo",
        str(tmp_path / "slo.yaml"),
        *args,
        timeout=300,
    )


def test_a_good_version_is_promoted_to_100_with_a_provenance_record(state_dir, target, tmp_path):
    cli = rollout(state_dir, tmp_path, "--version", "good", "--steps", "50,100", "--window", "1", *FAST)
    assert cli.code == 0, cli.out + cli.err
    assert target.canary_weights() == {"primary": 100, "dr": 100}
    assert {r: c["version"] for r, c in target.canary_versions().items()} == {"primary": "good", "dr": "good"}
    out = " ".join(cli.out.split())
    assert "step 1: dr: canary 0 % -> 50 % (good); the stable image serves the other 50 %" in out, "every move said"
    assert "step 3: primary: canary 0 % -> 50 % (good)" in out
    report = json.loads((tmp_path / "report" / "rollout.json").read_text())
    assert report["decision"] == "promoted"
    provenance = Path(report["provenance"])
    assert not provenance.is_absolute() and (tmp_path / "report" / provenance).is_file(), "found from the report's folder"
    assert [(s["role"], s["percent"], s["decision"]) for s in report["steps"]] == [
        ("dr", 50, "promote"),
        ("dr", 100, "promote"),
        ("primary", 50, "promote"),
        ("primary", 100, "promote"),
    ]
    assert all(s["canary"]["judged"] >= 5 and s["canary"]["passed"] for s in report["steps"])
    assert (tmp_path / "report" / "rollout.png").stat().st_size > 10_000
    moves = [(m["role"], m["from_percent"], m["to_percent"]) for m in report["traffic_moves"]]
    assert moves == [("dr", 0, 50), ("dr", 50, 100), ("primary", 0, 50), ("primary", 50, 100)], "every move kept"
    assert "## Traffic moves" in (tmp_path / "report" / "rollout.md").read_text()
    records = list((tmp_path / "evidence" / "rollout").glob("good-*.json"))
    assert len(records) == 1 and verify(tmp_path / "evidence").ok
    record = json.loads(records[0].read_text())
    assert record["decision"] == "promoted" and record["digest"].startswith("sha256:")
    assert [s["weight_percent"] for s in record["steps"]] == [50, 100, 50, 100]
    assert record["ran_by"]["user"] and record["rollout_plan_sha256"] == report["plan_sha256"]


def test_a_version_600ms_slower_is_rolled_back_at_the_first_step(state_dir, target, tmp_path):
    cli = rollout(
        state_dir, tmp_path, "--version", "bad", "--region-order", "primary", "--window", "4", *FAST[2:], "--min-samples", "3"
    )
    assert cli.code == 1, cli.out + cli.err
    assert "step 1 (primary 1 %)" in cli.err and "p95_ms" in cli.err, cli.err
    assert target.canary_weights() == {"primary": 0, "dr": 0}
    report = json.loads((tmp_path / "report" / "rollout.json").read_text())
    assert [s["decision"] for s in report["steps"]] == ["rollback"]
    assert report["steps"][0]["canary"]["p95_ms"] >= 600
    rb = report["rollback"]
    assert rb["canary_requests"] >= 3 and rb["canary_fraction"] < 0.05
    assert [(m["from_percent"], m["to_percent"]) for m in report["traffic_moves"]] == [(0, 1), (1, 0)]
    # stable's own requests, the whole run long, kept the SLO
    samples = read_raw(tmp_path / "report" / "load-primary" / "raw.csv")
    # stable answers with the version the plan gave it (the stack's image tag), the canary with "bad"
    stable_version = {s.version for s in samples} - {"bad", "", None}
    assert len(stable_version) == 1, stable_version
    stable = sorted(s.ms for s in samples if s.version in stable_version and s.outcome == OK)
    assert len(stable) > 100 and percentile(stable, 95) < 500
    assert not [s for s in samples if s.version in stable_version and s.outcome == "error"]


def _background(state_dir: Path, tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    (tmp_path / "slo.yaml").write_text(SLO)
    argv = meridian_cmd(
        "rollout",
        "--stack",
        STACK,
        "--state-dir",
        str(state_dir),
        "--out",
        str(tmp_path / "bg"),
        "--evidence",
        str(tmp_path / "bg-ev"),
        "--slo",
        str(tmp_path / "slo.yaml"),
        *args,
    )
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_split(target: SandboxTarget, role: str, percent: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.canary_weights().get(role) == percent:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the rollout ended early ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"{role} never reached {percent} %")


def test_rollback_mid_way_restores_stable_at_once(state_dir, target, tmp_path):
    proc = _background(
        state_dir, tmp_path, "--version", "v-mid", "--steps", "25,100", "--region-order", "dr", "--window", "60", *FAST
    )
    try:
        _wait_for_split(target, "dr", 25, proc)
        # the record a run leaves if it is interrupted now: the split it set, before any judging
        state = json.loads((state_dir / "rollout" / f"{STACK}.json").read_text())
        assert (state["phase"], state["version"], state["position"], state["applied"]) == (
            "running",
            "v-mid",
            0,
            {"primary": 0, "dr": 25},
        )
        cli = rollout(state_dir, tmp_path, "--rollback")
        assert cli.code == 0, cli.out + cli.err
        assert "canary weights dr 25 %, primary 0 % -> dr 0 %, primary 0 %" in " ".join(cli.out.split()), "no Python dict"
        assert target.canary_weights() == {"primary": 0, "dr": 0}
        assert target.canary_versions() == {}
        state = json.loads((state_dir / "rollout" / f"{STACK}.json").read_text())
        assert state["phase"] == "rolled_back" and state["applied"] == {"primary": 0, "dr": 0}
    finally:
        proc.send_signal(signal.SIGINT)  # as an operator's Ctrl-C: the load stops
        proc.communicate(timeout=60)


def test_an_interrupted_rollout_resumes_where_it_stopped(state_dir, target, tmp_path):
    from meridian.rollout.state import RolloutState, save

    # what a run interrupted at its first step leaves (see the test above): its record and its split
    target.start_canary("dr", "v-resume")
    target.set_canary_weight("dr", 25)
    save(
        state_dir / "rollout" / f"{STACK}.json",
        RolloutState(STACK, "sandbox", "v-resume", "d", "h", [25, 100], ["dr"], position=0, applied={"primary": 0, "dr": 25}),
    )
    cli = rollout(
        state_dir, tmp_path, "--version", "v-resume", "--steps", "25,100", "--region-order", "dr", "--window", "1", *FAST
    )
    assert cli.code == 0, cli.out + cli.err
    assert "state: resume: resuming at step 1" in cli.out, cli.out
    assert target.canary_weights() == {"primary": 0, "dr": 100}
