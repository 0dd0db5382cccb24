"""The real sandbox: PostgreSQL primary + streaming replica, the service per region, HAProxy, fault
proxies, all on 127.0.0.1. One sandbox for the module (up once through the CLI, down at the end);
the tests run in order and the destructive ones (fault injection, promotion, crash) come last.

Skipped only when the PostgreSQL server binaries or haproxy are absent; under CI (CI=true) that fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import string
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meridian import ports as portlib
from meridian.sandbox import core, procs
from meridian.sandbox import manifest as mf
from stackconfig import load_stack
from tests.helpers import ROOT, STACK, TIME_SCALE, require_sandbox_parts, run_meridian, until

pytestmark = pytest.mark.sandbox


class Sandbox:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.root = state_dir / STACK
        self.seen_pids: set[tuple[int, float]] = set()
        self.seen_ports: set[int] = set()

    def cli(self, *args: str, timeout: float = 120):
        return run_meridian("sandbox", *args, "--stack", STACK, "--state-dir", str(self.state_dir), timeout=timeout)

    @property
    def doc(self) -> mf.Manifest:
        doc = mf.read(self.root)
        assert isinstance(doc, mf.Manifest), doc
        return doc

    def remember(self) -> None:
        doc = self.doc
        self.seen_pids |= {(p.pid, p.create_time) for p in doc.processes.values()}
        self.seen_ports |= set(doc.ports.values())

    def key(self, tenant: str) -> str:
        return next(t.api_key for t in self.doc.tenants if t.id == tenant)

    def headers(self, tenant: str) -> dict:
        return {"Authorization": f"Bearer {self.key(tenant)}"}


def _survivors(sb: Sandbox) -> list[str]:
    out = []
    for pid, ct in sb.seen_pids:
        ref = procs.ProcRef("x", pid, ct, "")
        if procs.alive(ref):
            out.append(f"pid {pid}")
        out += [f"pid {m.pid} (group {pid})" for m in procs.group_members(pid) if m.create_time() >= ct - 0.05]
    return out


@pytest.fixture(scope="module")
def sb():
    require_sandbox_parts()
    state_dir = Path(tempfile.mkdtemp(prefix="meridian-sandbox-test-"))
    os.chmod(state_dir, 0o755)  # the postgres user must reach the data dirs
    box = Sandbox(state_dir)
    cli = box.cli("up", "--time-scale", str(TIME_SCALE), "--fault-proxies")
    assert cli.code == 0, cli.out + cli.err
    box.remember()
    try:
        yield box
    finally:
        if (box.root / "manifest.json").exists():
            box.remember()
        cli = box.cli("down", "--wipe")
        survivors = _survivors(box)
        busy = [p for p in box.seen_ports if portlib.is_listening(p)]
        shutil.rmtree(state_dir, ignore_errors=True)
        assert cli.code == 0, cli.out + cli.err
        assert not survivors, f"processes left behind: {survivors}"
        assert not busy, f"ports left listening: {busy}"


def _client() -> httpx.Client:
    return httpx.Client(timeout=5.0)


# --- up and status ------------------------------------------------------------------------------


def test_status_reports_every_part_healthy(sb):
    cli = sb.cli("status", "--format", "json")
    assert cli.code == 0, cli.out + cli.err
    st_ = json.loads(cli.out)
    assert st_["healthy"] is True
    parts = st_["parts"]
    assert parts["pg-primary"]["role"] == "primary" and parts["pg-dr"]["role"] == "replica"
    assert parts["svc-primary"]["db_role"] == "primary" and parts["svc-dr"]["db_role"] == "replica"
    # "UP" or, right after start, "UP 1/3" (HAProxy starts servers at the rise level): both serve
    servers = parts["haproxy"]["servers"]
    assert set(servers) == {"primary-us-east-1", "dr-us-west-2"} and all(v.startswith("UP") for v in servers.values())
    assert parts["haproxy"]["serving_region"] == "us-east-1"
    assert st_["replication"]["state"] == "streaming" and st_["replication"]["lag_bytes"] >= 0
    text = sb.cli("status")
    assert text.code == 0 and "healthy" in text.out and "replication  streaming" in text.out


def test_manifest_describes_the_sandbox(sb):
    doc = sb.doc
    assert doc.state == "up" and doc.stack == STACK
    assert oct((sb.root / "manifest.json").stat().st_mode & 0o777) == "0o600"
    assert len(set(doc.ports.values())) == len(doc.ports)
    assert doc.endpoint.startswith("http://127.0.0.1:")
    # the zone's tenants: the platform's inline ones, then its cell's (Pulumi.us-cell-001.yaml)
    assert [(t.id, t.stack) for t in doc.tenants] == [
        ("acme", "us"),
        ("globex", "us"),
        ("initech", "us"),
        ("umbrella", "us"),
        ("vandelay", "us-cell-001"),
        ("stark", "us-cell-001"),
        ("wonka", "us-cell-001"),
    ]
    assert {t.id: t.quota.gql_qps for t in doc.tenants} == {
        "acme": 1000,
        "globex": 200,
        "initech": 50,
        "umbrella": 50,
        "vandelay": 200,
        "stark": 800,
        "wonka": 50,
    }
    assert len({t.api_key for t in doc.tenants}) == 7
    fo = doc.failover
    assert fo.time_scale == TIME_SCALE and fo.haproxy == mf.HAProxyChecks(inter_ms=500, fall=2, rise=2, timeout_check_ms=500)
    assert set(doc.faults) == {"db-primary", "db-dr", "svc-primary", "svc-dr"}
    assert "target_session_attrs=read-write" in doc.database.write_dsn
    for ref in doc.processes.values():
        assert procs.alive(ref), ref
    # each service runs the plan's Deployment container: its mounted settings (the API keys are not
    # in them, only their digests), with the database endpoints, its port, the object stand-in (its
    # endpoint, its per-tenant roles and keys) and the broker's key for Pod Identity substituted, nothing else
    for role in ("primary", "dr"):
        region = doc.regions[role]
        conf = Path(region.settings_file).read_text()
        assert region.settings_file.endswith("/etc/meridian/service.json")
        assert all(t.api_key not in conf for t in doc.tenants)
        settings = json.loads(conf)
        assert settings["write_dsn"].startswith("postgresql://meridian_app@"), "no password in the DSN"
        assert settings["db_secret"]["endpoint_url"] == doc.objects.endpoint, "the password from the stand-in's secret"
        tenant_data = {f"tenants[{t.id}].data" for t in doc.tenants}
        expected = {"write_dsn", "read_dsn", "port", "host", "command[0]", "objects.endpoint_url", "db_secret", "credentials"}
        expected |= tenant_data
        cells = load_stack(ROOT, STACK).cells.names
        if cells:  # the cells' tenant files are mounted there: a local directory instead, with each cell's file
            expected |= {"tenant_files_dir"} | {f"cell_files[{cell}]" for cell in cells}
            assert not settings["tenant_files_dir"].startswith("/etc/meridian/"), "the pod's mount path, not a local one"
        assert {line.split(":")[0] for line in region.substituted} == expected
        assert {t["id"] for t in settings["tenants"]} == {t.id for t in doc.tenants if t.stack == STACK}, "cells' not inline"


def test_the_zone_serves_its_cells_tenants_from_the_tenant_files_their_plans_render(sb, tmp_path):
    """The platform us lists the cell us-cell-001, whose tenants its one front door serves from the
    cell's tenant file (its Secret, mounted into the platform's pods). The sandbox writes the file the
    cell's plan renders: its bytes are the ones `meridian preview --stack us-cell-001` digests, and
    what the service reads differs only where the inline tenants' settings differ (each tenant's key
    and role: the object stand-in's)."""
    import hashlib
    import hmac

    from components.workload import TENANT_FILE_KEY
    from meridian.engine.secretdigest import digest_key, key_id
    from meridian.sandbox import fromplan
    from service.settings import load_tenant_file

    cell = "us-cell-001"
    assert cell in load_stack(ROOT, STACK).cells.names
    preview = run_meridian("preview", "--stack", cell, "--no-policy", "--json", str(tmp_path / "cell.json"))
    assert preview.code == 0, preview.out + preview.err
    plan = json.loads((tmp_path / "cell.json").read_text())
    key = digest_key()
    assert plan["secrets"]["key_id"] == key_id(key), "the preview digested its secrets under this machine's key"
    previewed = {
        r["region"]: plan["secrets"]["digests"][r["urn"]]["stringData"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:core/v1:Secret" and r["inputs"]["metadata"]["name"] == f"meridian-tenants-{cell}"
    }
    doc = sb.doc
    assert set(previewed) == {r.region for r in doc.regions.values()}
    rendered = fromplan.load(ROOT, STACK).cells[cell]  # what `sandbox up` wrote from (its cache)
    cell_tenants = [t for t in doc.tenants if t.stack == cell]
    for role, region in doc.regions.items():
        text = rendered.tenant_files[role]
        canonical = json.dumps({TENANT_FILE_KEY: text}, sort_keys=True, separators=(",", ":")).encode()
        assert hmac.new(key, canonical, hashlib.sha256).hexdigest()[:32] == previewed[region.region], role
        settings = json.loads(Path(region.settings_file).read_text())
        served = load_tenant_file((Path(settings["tenant_files_dir"]) / f"{cell}.json").read_text())
        stand_in = doc.objects.regions[region.region]
        expected = []
        for t in load_tenant_file(text):
            grant = stand_in[t.id]
            data = dataclasses.replace(t.data, kms_key_arn=grant.kms_key_arn, role_arn=grant.role_arn)
            expected.append(dataclasses.replace(t, data=data))
        assert list(served) == expected, role
        assert [t.id for t in served] == [t.id for t in cell_tenants]
    with _client() as c:
        for t in cell_tenants:  # through the zone's one front door, with the key the cell's plan hands it
            r = c.get(f"{doc.endpoint}/v1/tenants/{t.id}/events", headers=sb.headers(t.id))
            assert r.status_code == 200, (t.id, r.text)
            assert c.get(f"{doc.endpoint}/v1/tenants/acme/events", headers=sb.headers(t.id)).status_code == 404  # not its own
        put = c.put(f"{doc.endpoint}/v1/tenants/stark/objects/cell.txt", content=b"silo", headers=sb.headers("stark"))
        assert put.status_code == 201, put.text  # stark's own silo bucket and key, in the stand-in


def test_up_again_while_up_is_a_no_op(sb):
    before = sb.doc.processes
    cli = sb.cli("up", "--time-scale", str(TIME_SCALE), "--fault-proxies")
    assert cli.code == 0 and "already up" in cli.out
    assert sb.doc.processes == before


# --- the service for real -----------------------------------------------------------------------


def test_a_write_on_the_primary_is_read_on_the_replica(sb):
    doc = sb.doc
    with _client() as c:
        r = c.post(
            f"{doc.endpoint}/v1/tenants/globex/events",
            json={"type": "repl", "payload": {"mark": "r1"}},
            headers=sb.headers("globex"),
        )
        assert r.status_code == 201 and r.json()["region"] == "us-east-1"
        eid = r.json()["ids"][0]
        dr = doc.regions["dr"].service_url

        def seen():
            r = c.get(f"{dr}/v1/tenants/globex/events/{eid}", headers=sb.headers("globex"))
            return r if r.status_code == 200 else None

        got = until(seen, 10)
        assert got is not None, "the write never reached the replica"
        assert got.json()["payload"] == {"mark": "r1"}
        assert c.get(f"{dr}/healthz").json()["db_role"] == "replica"


def test_structured_logs_name_tenant_and_route(sb):
    log = Path(sb.doc.processes["svc-primary"].log).read_text().splitlines()
    entries = [json.loads(ln) for ln in log if ln.startswith("{")]
    writes = [e for e in entries if e.get("route") == "/v1/tenants/{tenant}/events" and e.get("method") == "POST"]
    assert writes and writes[-1]["tenant"] == "globex" and writes[-1]["status"] == 201 and writes[-1]["region"] == "us-east-1"


def test_quota_noisy_neighbour(sb):
    """A starter tenant bursting over 50 rps gets 429 + Retry-After; a pro tenant alongside is unaffected."""
    endpoint = sb.doc.endpoint
    noisy, calm = sb.headers("initech"), sb.headers("globex")

    async def go():
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=40)) as c:
            sem = asyncio.Semaphore(20)

            async def get(tenant, headers):
                async with sem:
                    return await c.get(f"{endpoint}/v1/tenants/{tenant}/events?limit=1", headers=headers)

            noisy_rs = [get("initech", noisy) for _ in range(300)]
            calm_rs = [get("globex", calm) for _ in range(150)]
            return await asyncio.wait_for(asyncio.gather(*noisy_rs, *calm_rs), 60)

    started = time.monotonic()
    rs = asyncio.run(go())
    window_s = time.monotonic() - started
    noisy_rs, calm_rs = rs[:300], rs[300:]
    limited = [r for r in noisy_rs if r.status_code == 429]
    served = len(noisy_rs) - len(limited)
    # The bucket holds one second of rate (50) and refills at 50/s: whatever the machine's speed, no
    # more than that was served in the window (a busy machine stretches the window; it cannot lift the cap).
    assert served <= 50 + 50 * window_s + 1, f"{served} reads served in {window_s:.2f} s at a 50 rps quota"
    if window_s < 4.5:
        assert limited, f"a 300-request burst in {window_s:.2f} s of a 50 rps tenant was never limited"
    assert {r.status_code for r in noisy_rs} <= {200, 429}
    for r in limited:
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "quota_exceeded" and r.json()["tenant"] == "initech"
    assert [r.status_code for r in calm_rs] == [200] * 150


tenant_like = st.one_of(
    st.sampled_from(["acme", "globex", "initech", "umbrella"]),
    st.from_regex(r"[a-z][a-z0-9-]{1,12}", fullmatch=True),
    st.text(string.ascii_letters + "-_.%", min_size=1, max_size=12),
)
suffix_like = st.one_of(
    st.just("/events?limit=1000"), st.integers(1, 60).map(lambda i: f"/events/{i}"), st.just("/events?type=fuzz")
)


@pytest.fixture(scope="module")
def seeded(sb):
    tenants = ["acme", "globex", "initech", "umbrella"]
    with _client() as c:
        for t in tenants:
            r = c.post(
                f"{sb.doc.regions['primary'].service_url}/v1/tenants/{t}/events",
                json={"events": [{"type": "fuzz", "payload": {"owner": t}}] * 3},
                headers=sb.headers(t),
            )
            assert r.status_code == 201
    return {t: sb.key(t) for t in tenants}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path_tenant=tenant_like,
    key_tenant=st.sampled_from(["acme", "globex", "initech", "umbrella", None]),
    junk=st.text(string.ascii_letters + string.digits, max_size=30),
    suffix=suffix_like,
)
def test_fuzz_keys_and_paths_never_cross_tenants(sb, seeded, path_tenant, key_tenant, junk, suffix):
    key = seeded[key_tenant] if key_tenant else junk
    url = f"{sb.doc.regions['primary'].service_url}/v1/tenants/{urllib.parse.quote(path_tenant, safe='')}{suffix}"
    with _client() as c:
        r = c.get(url, headers={"X-API-Key": key} if key else {})
    if key_tenant is None:
        assert r.status_code in (401, 404) and "owner" not in r.text
    elif path_tenant != key_tenant:
        assert r.status_code in (404, 429) and "owner" not in r.text
    elif r.status_code == 200:
        doc = r.json()
        for e in doc.get("events", [doc]):
            assert e["tenant"] == key_tenant
            if e["type"] == "fuzz":
                assert e["payload"]["owner"] == key_tenant


# --- faults, promotion, crash: destructive, last ------------------------------------------------


def _fault(sb, name: str, **faults) -> dict:
    r = httpx.put(f"{sb.doc.faults[name].control_url}/faults", json=faults, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def _serving(c: httpx.Client, endpoint: str) -> str | None:
    try:
        r = c.get(f"{endpoint}/healthz")
        return r.json().get("region") if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


def test_fault_proxy_latency_on_the_dr_database(sb):
    dr = sb.doc.regions["dr"].service_url
    h = sb.headers("acme")
    with _client() as c:
        assert c.get(f"{dr}/v1/tenants/acme/events?limit=1", headers=h).status_code == 200
        _fault(sb, "db-dr", latency_ms=150)
        try:
            t0 = time.monotonic()
            assert c.get(f"{dr}/v1/tenants/acme/events?limit=1", headers=h).status_code == 200
            assert time.monotonic() - t0 >= 0.15  # injected delay (a lower bound, not a speed)
        finally:
            _fault(sb, "db-dr", latency_ms=0)


def test_blackholed_primary_service_fails_over_to_dr_and_back(sb):
    """The Route 53 stand-in: the primary region's service stops answering; HAProxy's checks (scaled
    interval x threshold) move the front door to the dr region, and back once it answers again."""
    endpoint = sb.doc.endpoint
    with _client() as c:
        assert _serving(c, endpoint) == "us-east-1"
        _fault(sb, "svc-primary", blackhole=True)
        try:
            assert until(lambda: _serving(c, endpoint) == "us-west-2", 15), "no failover to the dr region"
            assert core.haproxy_servers(sb.doc)["primary-us-east-1"].startswith("DOWN")
        finally:
            _fault(sb, "svc-primary", blackhole=False)
        assert until(lambda: _serving(c, endpoint) == "us-east-1", 15), "no fail back once the primary answered"


def test_up_again_after_a_crash_cleans_stale_processes(sb):
    sb.remember()
    old = sb.doc
    for name in ("haproxy", "svc-dr", "fp-svc-dr"):  # a crash: some parts die hard, the rest live on
        os.kill(old.processes[name].pid, signal.SIGKILL)
    cli = sb.cli("up", "--time-scale", str(TIME_SCALE))
    assert cli.code == 0, cli.out + cli.err
    assert "cleaned stale processes" in cli.out
    sb.remember()
    new = sb.doc
    assert new.faults == {}
    for name, ref in old.processes.items():  # every old process is gone (killed or stopped by pid)
        assert not procs.alive(ref), name
    st_ = json.loads(sb.cli("status", "--format", "json").out)
    assert st_["healthy"] is True, st_
    with _client() as c:
        r = c.post(f"{new.endpoint}/v1/tenants/acme/events", json={"type": "again"}, headers=sb.headers("acme"))
        assert r.status_code == 201 and r.json()["region"] == "us-east-1"


def test_down_stops_everything_and_keeps_data(sb):
    # its own write (tests of this module may run in other workers' sandboxes under xdist)
    with _client() as c:
        r = c.post(f"{sb.doc.endpoint}/v1/tenants/acme/events", json={"type": "kept"}, headers=sb.headers("acme"))
        assert r.status_code == 201, r.text
    sb.remember()
    doc = sb.doc
    cli = sb.cli("down")
    assert cli.code == 0, cli.out + cli.err
    assert "data kept" in cli.out
    assert not _survivors(sb)
    assert not [p for p in doc.ports.values() if portlib.is_listening(p)]
    assert (sb.root / "pg" / "primary" / "PG_VERSION").exists()
    assert sb.doc.state == "down" and sb.doc.processes == {}
    st_ = sb.cli("status")
    assert st_.code == 1 and "down" in st_.out
    # and up again on the kept data: the events written before are still there
    cli = sb.cli("up", "--time-scale", str(TIME_SCALE))
    assert cli.code == 0, cli.out + cli.err
    sb.remember()
    with _client() as c:
        r = c.get(f"{sb.doc.endpoint}/v1/tenants/acme/events?type=kept", headers=sb.headers("acme"))
        assert r.status_code == 200 and len(r.json()["events"]) == 1


# last: it leaves the sandbox failed over, which `up` then refuses to rebuild
def test_promotion_stop_primary_promote_replica_writes_continue(sb):
    doc = sb.doc
    endpoint, h = doc.endpoint, sb.headers("acme")
    with _client() as c:
        r = c.post(f"{endpoint}/v1/tenants/acme/events", json={"type": "pre", "payload": {"n": 0}}, headers=h)
        assert r.status_code == 201
        assert core.stop_part(doc, "pg-primary") is True
        # no primary anywhere: neither region can take writes, so neither passes its deep health
        # check (the dr region's replica still reads, but the front door must not send it writes)
        servers = until(
            lambda: all(v.startswith("DOWN") for v in core.haproxy_servers(doc).values()) and core.haproxy_servers(doc), 15
        )
        assert servers, core.haproxy_servers(doc)
        dr_health = c.get(f"{doc.regions['dr'].service_url}/healthz")
        assert (
            dr_health.status_code == 503 and dr_health.json()["writes"] == "unavailable" and dr_health.json()["db"] == "reachable"
        )
        # no region passes its check: the front door itself refuses cleanly (JSON 503 + Retry-After),
        # nothing is half-done
        r = c.post(f"{endpoint}/v1/tenants/acme/events", json={"type": "during", "payload": {}}, headers=h)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        core.promote_dr(doc)
        # the promoted dr region can write: its check passes and the front door moves there
        assert until(lambda: _serving(c, endpoint) == "us-west-2", 15)

        def write(url):
            r = c.post(f"{url}/v1/tenants/acme/events", json={"type": "post", "payload": {"via": url}}, headers=h)
            return r if r.status_code == 201 else None

        r = until(lambda: write(endpoint), 10)
        assert r is not None and r.json()["region"] == "us-west-2", "writes did not continue after promotion"
        eid = r.json()["ids"][0]
        # the primary region's service also follows the promotion: its cluster endpoint (the writer
        # endpoint stand-in) now leads to the promoted node, as Aurora's does after a failover
        r2 = until(lambda: write(doc.regions["primary"].service_url), 10)
        assert r2 is not None
        got = c.get(f"{endpoint}/v1/tenants/acme/events/{eid}", headers=h)
        assert got.status_code == 200 and got.json()["type"] == "post"
    st_ = json.loads(sb.cli("status", "--format", "json").out)
    assert st_["healthy"] is False and st_["parts"]["pg-dr"]["role"] == "primary"
    assert st_["parts"]["haproxy"]["serving_region"] == "us-west-2"
    # dr now holds writes the primary never saw: `up` would rebuild dr from the primary and lose
    # them, so it refuses (exit 2), names the database and the way out, and changes nothing
    again = sb.cli("up", "--time-scale", str(TIME_SCALE))
    assert again.code == 2 and "pg/dr" in again.err and "--fresh" in again.err, again.out + again.err
    with _client() as c:
        got = c.get(f"{endpoint}/v1/tenants/acme/events/{eid}", headers=h)
        assert got.status_code == 200 and got.json()["type"] == "post"
