"""`meridian slo` and the plain locustfile against the real sandbox, a few seconds each: a real run
that short proves nothing ("not enough evidence", exit 1, with its report), an impossible SLO file
fails with exit 1 naming the objective, plain `locust --headless`
carries the same verdict in its exit code, and a master + workers run judges every worker's samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meridian.sandbox import manifest as mf
from meridian.slo.evaluate import stats
from meridian.slo.raw import read_raw
from tests.helpers import ROOT, STACK, full_project_copy, run_meridian

pytestmark = pytest.mark.slow  # every test runs the CLI or Locust

LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"


@pytest.fixture
def state_dir(shared_sandbox):
    return shared_sandbox


@pytest.fixture
def impossible(tmp_path) -> Path:
    path = tmp_path / "impossible.yaml"
    path.write_text("version: 1\nobjectives:\n  p95_ms: 0.001\n")
    return path


def slo(state_dir: Path, report: Path | None, *args: str, duration: float = 4, cwd: Path = ROOT):
    """`meridian slo` on the shared sandbox: 8 flat users; `report` None: where slo writes by default."""
    return run_meridian(
        "slo",
        "--stack",
        STACK,
        "--state-dir",
        str(state_dir),
        *(("--out", str(report)) if report is not None else ()),
        "--shape",
        "flat",
        "--users",
        "8",
        "--spawn-rate",
        "8",
        "--duration",
        f"{duration:g}",
        *args,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def loose(tmp_path) -> Path:
    """Latency and error objectives a loaded machine meets (a tenant's one error in 25 requests is
    4 %): what is left to fail a short run is its evidence."""
    path = tmp_path / "loose.yaml"
    path.write_text("version: 1\nobjectives: {p50_ms: 5000, p95_ms: 10000, p99_ms: 20000, error_rate: 0.2}\n")
    return path


def test_a_short_real_run_is_not_enough_evidence_and_reports(state_dir, tmp_path, loose):
    """4 s of 8 users once "proved" p99 and 99.9 % availability: now the verdict says what is missing."""
    cli = slo(state_dir, tmp_path, "--slo", str(loose))
    assert cli.code == 1, cli.out + cli.err
    assert "not enough evidence: the SLO is not proven" in cli.err
    assert "p99_ms: not enough evidence (" in cli.err and "needs 300)" in cli.err
    # watched: 4 s can only find it missed; it is never reported met
    assert "availability: not proven by this run (" in cli.err and "needs 3,000; a miss would fail it)" in cli.err
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["passed"] is False and doc["verdict"]["not_enough_evidence"] is True and doc["target"] == "sandbox"
    assert "**NOT ENOUGH EVIDENCE**" in (tmp_path / "report.md").read_text()
    # the report's numbers are the raw samples' exact percentiles
    samples = read_raw(tmp_path / "raw.csv")
    assert len(samples) > 50
    assert doc["verdict"]["overall"]["p95_ms"] == stats(samples).p95_ms
    # the zone's tenants: the platform's inline ones and its cell's, all through the one front door,
    # every request counted for the stack holding its tenant
    zone = {t.id: t.stack for t in mf.read(state_dir / STACK).tenants}
    assert set(zone) == {"acme", "globex", "initech", "umbrella", "vandelay", "stark", "wonka"}
    assert {s.tenant for s in samples} == set(zone)
    stacks = doc["verdict"]["stacks"]
    assert {name: st["requests"] for name, st in stacks.items()} == {
        stack: sum(zone.get(s.tenant) == stack for s in samples) for stack in ("us", "us-cell-001")
    }
    cell = stacks["us-cell-001"]
    assert cell["errors"] < cell["requests"] / 2, "the cell's tenants are served (refused, every request would be an error)"
    assert {s.name for s in samples} >= {"GET /v1/tenants/[tenant]/events", "POST /v1/tenants/[tenant]/events"}
    assert (tmp_path / "latency.png").stat().st_size > 10_000
    assert "| all | p95_ms |" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "tenants.json").exists()  # API keys do not outlive the run
    assert not any(t.api_key in (tmp_path / "report.json").read_text() for t in mf.read(state_dir / STACK).tenants)


def test_evidence_bundles_the_report_slo_wrote_where_it_writes_by_default(state_dir, tmp_path):
    # producer then consumer, as a user runs them: `meridian slo` (no --out) in a checkout,
    # then `meridian evidence` there finds that report and bundles it byte for byte
    project = full_project_copy(tmp_path)
    # long enough that every route the objectives name is requested (a read by id needs an event
    # written READ_AFTER_S earlier): 4 users for 3 s once gave no such read, and an unmeasurable objective
    ran = slo(state_dir, None, duration=6, cwd=project)
    assert ran.code == 1 and "not enough evidence" in ran.err, ran.out + ran.err  # 6 s proves nothing, but reports
    (written,) = (project / ".meridian" / "reports").glob("slo-us-*/report.json")
    out = tmp_path / "bundle"
    built = run_meridian("evidence", "--stack", STACK, "--out", str(out), cwd=project)
    assert built.code == 0, built.out + built.err
    assert (out / "slo" / "report.json").read_bytes() == written.read_bytes()
    assert (out / "slo" / "latency.png").read_bytes() == (written.parent / "latency.png").read_bytes()
    index = json.loads((out / "bundle.json").read_text())
    assert "slo" not in index["absent"] and "slo/report.json" in index["contents"]


def test_an_impossible_slo_fails_naming_the_objective_also_with_workers(state_dir, tmp_path, impossible):
    # master + 2 workers: the master judges the samples every worker shipped
    cli = slo(state_dir, tmp_path, "--slo", str(impossible), "--workers", "2")
    assert cli.code == 1, cli.out + cli.err
    assert "SLO breached" in cli.err and "p95_ms" in cli.err and "is over the objective 0.0 ms by" in cli.err
    doc = json.loads((tmp_path / "report.json").read_text())
    samples = read_raw(tmp_path / "raw.csv")
    assert doc["passed"] is False and doc["verdict"]["overall"]["requests"] == len(samples) > 30
    assert doc["load"]["workers"] == 2


def test_plain_locust_exit_code_is_the_verdict(state_dir, impossible):
    # host and tenant keys from the sandbox manifest; the met case is the first test (the gate
    # refuses a run whose Locust verdict disagrees with its own)
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "3s",
        "--stack",
        STACK,
        "--state-dir",
        str(state_dir),
        "--only-summary",
        "--slo",
        str(impossible),
    ]
    breached = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=90, env={**os.environ, "NO_COLOR": "1"})
    assert breached.returncode == 1, breached.stdout + breached.stderr
    assert "SLO BREACHED" in breached.stdout and "1 objective(s) FAILED:\n    p95_ms" in breached.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("--users", "0"), "--users must be 1..10000"),
        (("--shape", "zigzag"), "'zigzag' is not one of 'flat', 'steady', 'spike', 'soak'"),
        (("--target", "gcp"), "'gcp' is not one of 'sandbox', 'aws'"),
    ],
)
def test_bad_input_exits_2(tmp_path, args, message):
    cli = run_meridian("slo", "--stack", STACK, "--state-dir", str(tmp_path), *args)
    assert cli.code == 2 and message in cli.err, cli.err


def test_no_sandbox_exits_2_with_the_command_to_start_one(tmp_path):
    cli = run_meridian("slo", "--stack", STACK, "--state-dir", str(tmp_path))
    assert cli.code == 2 and "meridian sandbox up --stack us" in cli.err, cli.err


def test_plain_locust_refuses_a_bad_slo_file_at_start(tmp_path):
    bad = tmp_path / "slo.yaml"
    bad.write_text("objectives: {p95_ms: fast}\n")
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        "1",
        "-t",
        "1s",
        "--host",
        "http://127.0.0.1:9",
        "--slo",
        str(bad),
        "--only-summary",
    ]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "objectives.p95_ms" in proc.stderr and "Traceback" not in proc.stderr
