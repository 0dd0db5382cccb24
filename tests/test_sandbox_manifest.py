"""The sandbox manifest's types against manifests written by a real `sandbox up` (captured before the
types existed): the same JSON back, a missing or mistyped key named, an unreadable manifest exit 2."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from meridian.sandbox import core, procs
from meridian.sandbox import manifest as mf
from meridian.targets.protocol import TargetUnavailable
from meridian.targets.sandbox import SandboxTarget
from tests.helpers import ROOT, run_meridian

# `sandbox up --stack us --fault-proxies`, and `--stack eu` with a canary running in dr (the
# broker's stand-in AWS keys in the launch records replaced by placeholders)
CAPTURED = {
    "us": ROOT / "tests" / "data" / "sandbox_manifest_us_fault_proxies.json",
    "eu": ROOT / "tests" / "data" / "sandbox_manifest_eu_canary.json",
}


def _raw(stack: str) -> dict:
    return json.loads(CAPTURED[stack].read_text())


@pytest.mark.parametrize("stack", sorted(CAPTURED))
def test_a_captured_manifest_round_trips_to_the_same_json_text(stack):
    text = CAPTURED[stack].read_text()
    m = mf.Manifest.from_json(json.loads(text))
    assert json.dumps(m.to_json(), indent=2) + "\n" == text


def test_the_types_carry_what_the_readers_use():
    us, eu = mf.Manifest.from_json(_raw("us")), mf.Manifest.from_json(_raw("eu"))
    assert us.regions["dr"].db_role == "replica" and us.regions["primary"].region == "us-east-1"
    assert set(us.faults) == {"db-primary", "db-dr", "svc-primary", "svc-dr"} and eu.faults == {}
    assert us.processes["pg-primary"] == procs.ProcRef.from_dict("pg-primary", _raw("us")["processes"]["pg-primary"])
    assert us.failover.scaled().detection_bound_s == us.failover.detection_bound_scaled_s
    assert us.canary is None and eu.canary["dr"].version == "v2"
    assert us.objects.regions["us-east-1"]["acme"].bucket.endswith("t-acme")


def test_written_manifest_is_private_and_reads_back(tmp_path):
    m = mf.Manifest.from_json(_raw("us"))
    m.regions["dr"].db_role = "primary"  # what a promotion does, in place
    mf.write(tmp_path, m)
    assert oct(os.stat(tmp_path / "manifest.json").st_mode & 0o777) == "0o600"
    back = mf.read(tmp_path)
    assert isinstance(back, mf.Manifest) and back.regions["dr"].db_role == "primary"
    expected = _raw("us")
    expected["regions"]["dr"]["db_role"] = "primary"
    expected["updated_at"] = back.updated_at  # stamped by the write
    assert back.to_json() == expected


def test_api_keys_are_never_in_a_repr():
    m = mf.Manifest.from_json(_raw("us"))
    keys = [t.api_key for t in m.tenants]
    assert keys and all(k for k in keys)
    assert not any(k in repr(m) for k in keys)
    assert not any(k in repr(t) for t in m.tenants for k in keys)


def _drop(doc: dict, path: str) -> dict:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    del node[last]
    return doc


@pytest.mark.parametrize(
    "path", ["endpoint", "regions.dr.db_port", "tenants.0.quota.gql_qps", "failover.haproxy.inter_ms", "processes.svc-dr.pid"]
)
def test_a_missing_key_is_named(path):
    with pytest.raises(mf.ManifestInvalid) as err:
        mf.Manifest.from_json(_drop(_raw("us"), path))
    named = "manifest." + path.replace(".0.", "[0].")
    if path.startswith("processes."):
        assert "manifest.processes.svc-dr: not a process record" in str(err.value)
    else:
        assert str(err.value) == f"{named}: missing"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["ports"].update(haproxy="22461"), "manifest.ports.haproxy: expected int, got str"),
        (lambda d: d["regions"]["primary"].update(db_port=True), "manifest.regions.primary.db_port: expected int, got bool"),
        (lambda d: d.update(tenants={}), "manifest.tenants: expected list, got dict"),
        (lambda d: d["failover"].update(time_scale=None), "manifest.failover.time_scale: expected float, got NoneType"),
        (lambda d: d["haproxy"]["servers"].update({"primary-us-east-1": 1}), "manifest.haproxy.servers.primary-us-east-1"),
    ],
)
def test_a_mistyped_key_is_named(edit, message):
    doc = _raw("us")
    edit(doc)
    with pytest.raises(mf.ManifestInvalid, match=message.replace("[", r"\[")):
        mf.Manifest.from_json(doc)


def test_read_tells_absent_from_corrupt_from_invalid(tmp_path):
    assert mf.read(tmp_path / "nowhere") is None
    (tmp_path / "manifest.json").write_text("{broken")
    broken = mf.read(tmp_path)
    assert isinstance(broken, mf.Unreadable) and broken.state == "corrupt" and "not JSON" in broken.reason
    (tmp_path / "manifest.json").write_text(json.dumps(_drop(_raw("us"), "database")))
    invalid = mf.read(tmp_path)
    assert isinstance(invalid, mf.Unreadable) and invalid.reason == "manifest.database: missing"
    assert set(invalid.processes) == set(_raw("us")["processes"]), "the pids it names are still there to stop"


@pytest.fixture
def unreadable_sandbox(tmp_path):
    """A sandbox root whose manifest lost a key and names one live process of ours."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    ref = procs.ProcRef("svc-primary", sleeper.pid, procs.psutil.Process(sleeper.pid).create_time(), "")
    doc = _drop(_raw("us"), "regions.dr.db_port")
    doc["processes"] = {ref.name: ref.to_dict()}
    root = tmp_path / "us"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps(doc))
    yield root, sleeper
    sleeper.kill()
    sleeper.wait(5)


def test_an_unreadable_manifest_is_exit_2_naming_the_key_file_and_the_way_out(unreadable_sandbox):
    root, _ = unreadable_sandbox
    cli = run_meridian("sandbox", "status", "--stack", "us", "--state-dir", str(root.parent))
    out = " ".join((cli.out + cli.err).split())
    assert cli.code == 2, out
    assert "manifest.regions.dr.db_port: missing" in out and str(root / "manifest.json") in out
    assert "meridian sandbox down --stack us" in out and "Traceback" not in out
    with pytest.raises(TargetUnavailable, match=r"manifest\.regions\.dr\.db_port: missing"):
        SandboxTarget("us", root)


def test_down_stops_what_an_unreadable_manifest_still_names(unreadable_sandbox):
    root, sleeper = unreadable_sandbox
    res = core.down(root)
    assert res.stopped == ["svc-primary"] and sleeper.wait(5) is not None


def test_a_mistyped_api_key_is_named_not_printed():
    doc = _raw("us")
    doc["tenants"][1]["api_key"] = [doc["tenants"][1]["api_key"]]
    with pytest.raises(mf.ManifestInvalid) as err:
        mf.Manifest.from_json(doc)
    assert str(err.value) == "manifest.tenants[1].api_key: expected str, got list"
