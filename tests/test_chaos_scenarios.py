"""The chaos scenarios: valid Chaos Toolkit experiments whose activities are calls on the Target
protocol; each runs end to end on the sandbox with `chaos run` and leaves the steady state
restored; `meridian chaos region-loss` under load measures detection and recovery against the
failover bound and writes the report."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meridian.chaos import run as chaosrun
from meridian.errors import BadInput
from meridian.slo.evaluate import ERROR, OK, Sample, Window
from meridian.targets import Target, open_target
from tests.helpers import ROOT, STACK, run_meridian

SCENARIOS = ("region-loss", "database-failover", "replica-loss", "db-latency", "packet-drops", "noisy-neighbour")


def test_the_shipped_scenarios():
    assert tuple(sorted(SCENARIOS)) == tuple(chaosrun.scenarios())


@pytest.mark.parametrize("name", SCENARIOS)
def test_experiment_is_valid_for_chaos_toolkit(name):
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    path = chaosrun.SCENARIO_DIR / f"{name}.json"
    ensure_experiment_is_valid(load_experiment(str(path)))  # raises InvalidExperiment
    doc = json.loads(path.read_text())
    assert doc["rollbacks"], "every scenario must undo what it did"
    # every activity is one of ours, and every action is a call on the Target protocol
    protocol = {n for n, _ in inspect.getmembers(Target, inspect.isfunction)}
    mod = importlib.import_module("meridian.chaos.actions")
    for a in doc["method"] + doc["rollbacks"] + doc["steady-state-hypothesis"]["probes"]:
        prov = a["provider"]
        assert prov["type"] == "python" and prov["module"] == "meridian.chaos.actions", a["name"]
        fn = getattr(mod, prov["func"])
        assert set(prov.get("arguments", {})) <= set(inspect.signature(fn).parameters), a["name"]
        if a["type"] == "action" and prov["func"] not in ("noisy_neighbour", "inject_fault"):
            assert prov["func"] in protocol, f"{a['name']}: {prov['func']} is not a Target operation"


@pytest.mark.slow
def test_unknown_scenario_is_bad_input():
    cli = run_meridian("chaos", "meteor-strike", "--stack", STACK)
    assert cli.code == 2 and "unknown chaos scenario 'meteor-strike'" in cli.err and "region-loss" in cli.err


def test_network_faults_need_fault_proxies(tmp_path):
    class NoProxies:
        kind, stack, fault_proxies = "sandbox", "us", False

        def health(self):  # pragma: no cover - must not be reached
            raise AssertionError("checked before touching the target")

    with pytest.raises(BadInput, match="--fault-proxies"):
        chaosrun.run_scenario("db-latency", NoProxies(), ROOT, None, tmp_path, console=None)


def test_recovery_is_the_first_good_response_after_the_last_error():
    w = Window(100.0, 110.0, "region-loss")
    samples = [
        Sample(99.0, "GET x", 5, 200, OK),
        Sample(100.2, "GET x", 5, 503, ERROR),
        Sample(101.5, "GET x", 5, 503, ERROR),
        Sample(101.6, "GET x", 20, 200, OK),
        Sample(103.0, "GET x", 5, 200, OK),
    ]
    health = [(99.9, "primary", True), (100.5, "primary", True), (101.2, "dr", False)]
    m = chaosrun.recovery_metrics(samples, w, health)
    assert m["detect_s"] == pytest.approx(1.2) and m["first_error_s"] == pytest.approx(0.2)
    assert m["recovery_s"] == pytest.approx(1.62) and m["errors_in_window"] == 2 and m["mttr_s"] == 10.0
    # a request made just after the last error hangs on the dead region; a later one is answered first
    hung = [Sample(101.55, "GET x", 2000, 200, OK)]
    assert chaosrun.recovery_metrics(samples + hung, w, health)["recovery_s"] == pytest.approx(1.62)
    late = [s for s in samples if s.start != 101.6] + hung
    assert chaosrun.recovery_metrics(late, w, health)["recovery_s"] == pytest.approx(
        3.005
    )  # answered at 103.005, before the hung one (103.55)
    quiet = chaosrun.recovery_metrics([Sample(105.0, "GET x", 5, 200, OK)], w, [(105.0, "primary", True)])
    assert quiet["recovery_s"] == 0.0 and quiet["detect_s"] is None  # never seen by the health checks


# --- on the sandbox ------------------------------------------------------------------------------


@pytest.fixture
def state_dir(shared_sandbox):
    return shared_sandbox


def _healthy(state_dir: Path) -> bool:
    h = open_target("sandbox", STACK, ROOT, state_dir=state_dir).health()
    return h.healthy and h.serving == "primary" and all(r.routable for r in h.regions.values())


@pytest.mark.parametrize("name", [s for s in SCENARIOS if s != "region-loss"])
def test_scenario_runs_with_chaos_run_and_restores_the_steady_state(state_dir, tmp_path, name):
    journal = tmp_path / "journal.json"
    env = {**os.environ, "MERIDIAN_STATE_DIR": str(state_dir), "MERIDIAN_PROJECT_DIR": str(ROOT), "MERIDIAN_STACK": STACK}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaostoolkit",
            "--no-version-check",
            "--no-log-file",
            "run",
            str(chaosrun.SCENARIO_DIR / f"{name}.json"),
            "--journal-path",
            str(journal),
            "--rollback-strategy",
            "always",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    j = json.loads(journal.read_text())
    steps = [(r["activity"]["name"], r["status"]) for r in j["run"] + j["rollbacks"]]
    assert j["status"] == "completed" and not j["deviated"], proc.stderr[-3000:]
    assert all(status == "succeeded" for _, status in steps), steps
    assert _healthy(state_dir)
    if name == "noisy-neighbour":
        out = next(r["output"] for r in j["run"] if r["activity"]["name"] == "starter-tenant-over-quota")
        assert out["throttled"] > 0 and out["retry_after_missing"] == 0 and out["ok"] > 0


def test_region_loss_under_load_recovers_within_the_detection_bound(state_dir, tmp_path):
    # the machine is shared: latency objectives loosened, the failover judgement (chaos budget,
    # recovery against the detection bound, steady state) kept as shipped
    slo = tmp_path / "slo.yaml"
    slo.write_text(
        "version: 1\nobjectives: {p95_ms: 5000, p99_ms: 10000}\nchaos: {scenarios: {region-loss: {error_rate: 0.5}}}\n"
    )
    report = tmp_path / "report"
    cli = run_meridian(
        "chaos",
        "region-loss",
        "--stack",
        STACK,
        "--state-dir",
        str(state_dir),
        "--report",
        str(report),
        "--users",
        "10",
        "--slo",
        str(slo),
        timeout=240,
    )
    assert cli.code == 0, cli.out + cli.err
    doc = json.loads((report / "report.json").read_text())
    m = doc["chaos"]
    assert m["journal_status"] == "completed" and m["errors_in_window"] > 0  # the kill was felt ...
    assert 0 < m["recovery_s"] <= m["detection_bound_s"] + 1.0  # ... and failed over within the bound
    # the health checks took the primary out within the bound too (sampled by a poller whose
    # health() call waits on the dead region, so not compared with recovery to the sub-second)
    assert m["detect_s"] is not None and m["detect_s"] <= m["detection_bound_s"] + 1.0
    assert [e["label"] for e in doc["events"]] == ["fault injected", "detected", "recovered", "restored"]
    assert doc["verdict"]["chaos"]["errors"] == m["errors_in_window"]
    assert doc["verdict"]["overall"]["errors"] == 0  # outside the window: none
    assert (report / "journal.json").exists() and (report / "latency.png").stat().st_size > 10_000
    assert "## Fault and recovery" in (report / "report.md").read_text()
    assert _healthy(state_dir)
