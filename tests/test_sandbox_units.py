"""Sandbox logic without a sandbox: ports, failover scaling, HAProxy config, processes, CLI input errors."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meridian import ports
from meridian.sandbox import core, procs
from meridian.sandbox import manifest as mf
from meridian.sandbox.haproxy import Backend, ScaledFailover, parse_show_stat, render
from tests.helpers import ROOT, require_haproxy, run_meridian

# --- ports --------------------------------------------------------------------------------------


def test_allocate_gives_distinct_free_loopback_ports():
    got = ports.allocate([f"p{i}" for i in range(20)])
    assert len(set(got.values())) == 20
    assert all(ports.is_free(p) for p in got.values())


def test_allocate_avoids_given_ports_and_busy_ones():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert not ports.is_free(taken) and ports.is_listening(taken)
        first = ports.allocate(["a", "b", "c"])
        again = ports.allocate(["a", "b", "c"], avoid=set(first.values()))
        assert not set(again.values()) & set(first.values())
        assert taken not in again.values()


def test_allocated_ports_stay_out_of_the_kernels_ephemeral_range(tmp_path):
    # outgoing connections take their source ports from that range: a port released there can be gone by start
    low, high = ports.ephemeral_range()
    got = ports.allocate([f"p{i}" for i in range(30)])
    assert all(ports.LOWEST <= p < low for p in got.values()), (got, low, high)
    bad = tmp_path / "range"
    bad.write_text("garbage")
    assert ports.ephemeral_range(str(bad)) == (32768, 60999)


def test_allocate_rejects_duplicate_names():
    with pytest.raises(ValueError):
        ports.allocate(["a", "a"])


# --- failover scaling and the HAProxy config ----------------------------------------------------

failovers = st.builds(
    ScaledFailover,
    health_check_interval_s=st.sampled_from([10, 30]),
    failure_threshold=st.integers(1, 10),
    dns_ttl_s=st.integers(1, 60),
    rto_target_s=st.integers(1, 3600),
    time_scale=st.floats(min_value=0.1, max_value=1000, allow_nan=False, allow_infinity=False),
)


@given(failovers, st.integers(1024, 65535), st.integers(1024, 65535), st.integers(1024, 65535))
@settings(max_examples=200)
def test_rendered_config_maps_the_failover_settings(fo, front, p1, p2):
    text = render(
        fo,
        front,
        [Backend("primary-us-east-1", "127.0.0.1", p1, False), Backend("dr-us-west-2", "127.0.0.1", p2, True)],
        "/tmp/x.sock",
    )
    expected_inter = max(50, round(fo.health_check_interval_s * 1000 / fo.time_scale))
    assert fo.inter_ms == expected_inter
    assert f"inter {expected_inter}ms" in text
    assert f"fall {fo.failure_threshold} rise {fo.failure_threshold}" in text
    assert re.search(rf"server primary-us-east-1 127\.0\.0\.1:{p1} check\n", text)
    assert re.search(rf"server dr-us-west-2 127\.0\.0\.1:{p2} check backup\n", text)
    binds = re.findall(r"^\s*bind (\S+)", text, re.M)
    assert binds == [f"127.0.0.1:{front}"]  # loopback only
    assert "http-check send meth GET uri /healthz" in text and "http-check expect status 200" in text
    assert fo.detection_bound_s == pytest.approx(fo.inter_ms * fo.failure_threshold / 1000 + fo.dns_ttl_s / fo.time_scale)
    d = fo.to_dict()
    assert d["haproxy"] == {"inter_ms": fo.inter_ms, "fall": fo.fall, "rise": fo.rise, "timeout_check_ms": fo.check_timeout_ms}
    json.dumps(d)


def test_default_time_scale_turns_a_10s_check_into_1s():
    fo = ScaledFailover(10, 3, 30, 60, 10.0)
    assert (fo.inter_ms, fo.fall, fo.rise) == (1000, 3, 3)
    assert fo.detection_bound_s == pytest.approx(6.0)


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_time_scale_must_be_positive_and_finite(scale):
    with pytest.raises(ValueError):
        ScaledFailover(10, 3, 30, 60, scale)


def test_render_refuses_configs_without_an_active_server():
    fo = ScaledFailover(10, 3, 30, 60, 10.0)
    with pytest.raises(ValueError):
        render(fo, 8000, [Backend("a", "127.0.0.1", 1, True)], "/tmp/s")
    with pytest.raises(ValueError):
        render(fo, 8000, [Backend("a", "127.0.0.1", 1, False), Backend("a", "127.0.0.1", 2, True)], "/tmp/s")


def test_haproxy_accepts_the_rendered_config(tmp_path):
    exe = require_haproxy()
    fo = ScaledFailover(30, 10, 60, 600, 7.5)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(
        render(
            fo,
            18080,
            [Backend("primary-x", "127.0.0.1", 18081, False), Backend("dr-y", "127.0.0.1", 18082, True)],
            str(tmp_path / "h.sock"),
        )
    )
    out = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ALERT" not in out.stdout + out.stderr and "WARNING" not in out.stdout + out.stderr


def test_parse_show_stat_reads_the_api_servers():
    csv = (
        "# pxname,svname,qcur,status,\napi,FRONTEND,,OPEN,\napi,primary-us-east-1,0,DOWN,\n"
        "api,dr-us-west-2,0,UP,\napi,BACKEND,0,UP,\nother,s1,0,UP,\n"
    )
    rows = parse_show_stat(csv)
    assert {k: v["status"] for k, v in rows.items()} == {"primary-us-east-1": "DOWN", "dr-us-west-2": "UP"}
    assert parse_show_stat("") == {}


# --- processes: started in their own group, stopped by (pid, create time) ------------------------


def _shell_family(tmp_path):
    # a leader with a child in its group, both ignoring SIGTERM: only SIGKILL of the group ends them
    script = "trap '' TERM; sleep 300 & wait"
    return procs.spawn("fam", ["bash", "-c", script], tmp_path / "fam.log")


def test_stop_kills_the_whole_group(tmp_path):
    ref, proc = _shell_family(tmp_path)
    deadline = time.monotonic() + 5
    while len(procs.group_members(ref.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(procs.group_members(ref.pid)) == 2
    assert procs.stop(ref, timeout=0.3) is True
    proc.wait(5)
    assert procs.group_members(ref.pid) == [] and not procs.alive(ref)
    assert procs.stop(ref) is False  # already gone


def test_a_reused_pid_is_never_signalled(tmp_path):
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        stale = procs.ProcRef("stale", victim.pid, create_time=1.0, log="")  # same pid, another process
        assert not procs.alive(stale)
        assert procs.stop(stale) is False
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait(5)


def test_manifest_is_written_atomically_and_private(tmp_path):
    doc = mf.Manifest.from_json(json.loads((ROOT / "tests" / "data" / "sandbox_manifest_us_fault_proxies.json").read_text()))
    doc.processes = {"a": procs.ProcRef("a", 1, 2.0, "l")}
    mf.write(tmp_path, doc)
    assert oct(os.stat(tmp_path / "manifest.json").st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"], "no temp file left behind"
    back = mf.read(tmp_path)
    assert back.state == "up" and list(back.processes) == ["a"]
    (tmp_path / "manifest.json").write_text("{broken")
    assert mf.read(tmp_path).state == "corrupt"
    assert mf.read(tmp_path / "nowhere") is None


# --- CLI: bad input is exit 2 with a message, no traceback ---------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, needle",
    [
        (["sandbox", "up", "--stack", "nope"], "unknown stack 'nope'"),
        (["sandbox", "up", "--stack", "us", "--time-scale", "0"], "--time-scale must be a number > 0"),
        (["sandbox", "up", "--stack", "us", "--time-scale", "-3"], "--time-scale must be a number > 0"),
        (["sandbox", "up", "--stack", "us", "--time-scale", "fast"], "Invalid value for '--time-scale'"),
        (["sandbox", "status", "--stack", "nope"], "unknown stack"),
        (["sandbox", "down", "--stack", "nope"], "unknown stack"),
        (["sandbox", "up", "--bogus"], "No such option"),
    ],
)
def test_bad_input_exits_2(args, needle):
    cli = run_meridian(*args, timeout=60)
    assert cli.code == 2, cli.out + cli.err
    assert needle in cli.out + cli.err
    assert "Traceback" not in cli.out + cli.err


@pytest.mark.slow
def test_status_and_down_of_a_sandbox_that_is_not_up(tmp_path):
    cli = run_meridian("sandbox", "status", "--stack", "eu", "--state-dir", str(tmp_path))
    assert cli.code == 1 and "not up" in cli.out
    cli = run_meridian("sandbox", "down", "--stack", "eu", "--state-dir", str(tmp_path))
    assert cli.code == 0 and "was not up" in cli.out


@pytest.mark.slow
def test_sandbox_help_lists_the_commands():
    cli = run_meridian("sandbox", "--help")
    assert cli.code == 0 and all(c in cli.out for c in ("up", "down", "status"))


@pytest.mark.slow
def test_missing_haproxy_is_exit_2_naming_it(tmp_path):
    env_cli = subprocess.run(
        [sys.executable, "-m", "meridian", "sandbox", "up", "--stack", "us", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MERIDIAN_HAPROXY": "/nonexistent", "PATH": "/nonexistent", "COLUMNS": "200"},
    )
    out = env_cli.stdout + env_cli.stderr
    assert env_cli.returncode == 2, out
    assert ("haproxy not found" in out or "PostgreSQL server binaries" in out) and "Traceback" not in out
    assert not (tmp_path / "us" / "manifest.json").exists()


def test_up_refuses_to_discard_a_promoted_dr_and_says_the_way_out(tmp_path):
    """A drill that failed after the promotion left the writes since the failover in dr; `up`
    rebuilds dr from the primary, so it must refuse (exit 2) rather than discard them."""
    root = tmp_path / "us"
    (root / "pg" / "dr").mkdir(parents=True)
    (root / "pg" / "dr" / "PG_VERSION").write_text("15\n")  # a data directory without standby.signal: promoted
    cli = run_meridian("sandbox", "up", "--stack", "us", "--state-dir", str(tmp_path), timeout=60)
    said = " ".join((cli.out + cli.err).split())
    assert cli.code == 2 and "was promoted" in said and "--fresh" in said, said
    assert (root / "pg" / "dr" / "PG_VERSION").exists(), "nothing discarded"


def test_a_dr_that_is_still_a_replica_is_rebuilt_without_asking(tmp_path):
    core._refuse_to_discard_a_promoted_dr(tmp_path, "us")  # no data dir at all: nothing to keep
    (tmp_path / "pg" / "dr").mkdir(parents=True)
    (tmp_path / "pg" / "dr" / "PG_VERSION").write_text("15\n")
    (tmp_path / "pg" / "dr" / "standby.signal").write_text("")
    core._refuse_to_discard_a_promoted_dr(tmp_path, "us")  # a replica holds nothing the primary lacks
    (tmp_path / "pg" / "dr" / "standby.signal").unlink()
    with pytest.raises(core.SandboxMissing, match="was promoted"):
        core._refuse_to_discard_a_promoted_dr(tmp_path, "us")
