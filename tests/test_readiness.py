"""Readiness that means what failover needs (issue 24, finding 4): `/healthz`, the readiness probe
and Route 53's checks judge a region by its role. The primary serves reads and writes; the dr region
is ready while it could take over: its own replica answers, and its write path is what the stack
gives a passive region (Aurora write forwarding on its own secondary; none on RDS until promotion,
declared `passive` and refused as 503 `region_passive`, never counted against it).

Against a real PostgreSQL primary and streaming replica; an Aurora secondary is the replica with
Aurora's forwarding session setting given at connect (plain PostgreSQL takes a dotted name as a
placeholder setting), so the store's verdict is exercised on real read-only sessions.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

import pytest

from meridian import ports as portlib
from meridian.sandbox import postgres as pglib
from meridian.sandbox import procs
from service.settings import ServiceSettings
from service.store import FORWARDING_SETTING, Passive, PgStore, readiness_problems
from tests.helpers import MemoryStore, auth, require_sandbox_parts, service_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from service.app import create_app

# --- the verdict, per role and write path ----------------------------------------------------------

REPLICA = {"db": "reachable", "db_role": "replica"}


@pytest.mark.parametrize(
    "role, writes, health, ready",
    [
        ("primary", "direct", {"db": "reachable", "db_role": "primary", "writes": "ok"}, True),
        ("primary", "direct", {"db": "reachable", "db_role": "primary", "writes": "unavailable"}, False),
        # the old primary after a switchover: its own Aurora cluster forwards its writes
        ("primary", "forwarded", {**REPLICA, "writes": "forwarding"}, True),
        ("primary", "forwarded", {"db": "unreachable", "error": "x", "writes": "ok"}, False),
        ("dr", "forwarded", {**REPLICA, "writes": "forwarding"}, True),
        # finding 4: a read-only secondary that forwards nothing cannot take the writes it must
        ("dr", "forwarded", {**REPLICA, "writes": "unavailable"}, False),
        ("dr", "passive", {**REPLICA, "writes": "passive"}, True),
        ("dr", "passive", {"db": "reachable", "db_role": "primary", "writes": "ok"}, True),  # promoted
        ("dr", "passive", {"db": "unreachable", "error": "x", "writes": "passive"}, False),
        ("dr", "passive", {**REPLICA, "writes": "unavailable"}, False),
        # `passive` counts only for a region that is passive by design
        ("dr", "direct", {**REPLICA, "writes": "passive"}, False),
    ],
)
def test_readiness_is_judged_by_the_regions_role(role, writes, health, ready):
    assert (readiness_problems(role, writes, health) == []) is ready


def test_only_the_dr_region_may_be_passive():
    with pytest.raises(ValueError, match="only the dr region can be passive"):
        ServiceSettings("r", "primary", "postgresql://h/d", "postgresql://h/d", (), writes="passive")
    with pytest.raises(ValueError, match="writes must be one of"):
        ServiceSettings("r", "dr", "postgresql://h/d", "postgresql://h/d", (), writes="sometimes")
    s = ServiceSettings("r", "dr", "postgresql://h/d", "postgresql://h/d", (), writes="passive")
    assert ServiceSettings.from_dict(s.to_dict()).writes == "passive"


class PassiveReplica(MemoryStore):
    """An unpromoted RDS replica as the store reports it."""

    async def health(self):
        return {**REPLICA, "write_path": "passive", "writes": "passive"}

    async def insert_events(self, tenant, events):
        raise Passive("this region is passive")


def test_a_passive_region_is_healthy_and_refuses_writes_with_503_and_retry_after():
    settings = ServiceSettings(**{**service_settings().__dict__, "role": "dr", "writes": "passive"})
    with TestClient(create_app(settings, PassiveReplica())) as client:
        h = client.get("/healthz")
        assert h.status_code == 200 and h.json()["writes"] == "passive", h.text
        r = client.post("/v1/tenants/acme/events", json={"type": "x"}, headers=auth("acme"))
        assert r.status_code == 503 and r.json()["error"] == "region_passive", r.text
        assert int(r.headers["retry-after"]) >= 1 and r.json()["role"] == "dr"


def test_the_same_replica_in_a_region_that_must_write_is_unhealthy():
    """Today's dr settings (a direct write path) over a replica: 503, with the reason."""
    settings = ServiceSettings(**{**service_settings().__dict__, "role": "dr"})
    store = PassiveReplica()

    async def unavailable():
        return {**REPLICA, "writes": "unavailable", "write_error": "the write DSN reached a read-only node"}

    store.health = unavailable
    with TestClient(create_app(settings, store)) as client:
        h = client.get("/healthz")
        assert h.status_code == 503 and "read-only" in h.json()["problems"][0], h.text


# --- the store against a real primary and streaming replica -----------------------------------------


@pytest.fixture(scope="module")
def pair():
    """(primary port, replica port, state dir): PostgreSQL 15, streaming replication, trust auth."""
    require_sandbox_parts()
    pg, user = pglib.find_pg(), pglib.run_as()
    root = Path(tempfile.mkdtemp(prefix="meridian-readiness-"))
    os.chmod(root, 0o755)
    port = portlib.allocate(["primary", "replica"])
    refs = []
    try:
        primary, replica = root / "primary", root / "replica"
        primary.mkdir()
        pglib.chown_tree(root, user)
        pglib.initdb(pg, user, primary)
        ref, proc = procs.spawn("pg-primary", pglib.server_argv(pg, primary, port["primary"]), root / "p.log", user=user)
        refs.append(ref)
        asyncio.run(pglib.wait_ready(port["primary"], 30, proc))
        asyncio.run(pglib.bootstrap(port["primary"]))
        pglib.basebackup(pg, user, port["primary"], replica, "dr")
        ref, proc = procs.spawn("pg-replica", pglib.server_argv(pg, replica, port["replica"]), root / "r.log", user=user)
        refs.append(ref)
        asyncio.run(pglib.wait_ready(port["replica"], 30, proc))
        yield port["primary"], port["replica"]
    finally:
        for ref in refs:
            procs.stop(ref, signal.SIGINT)
        shutil.rmtree(root, ignore_errors=True)


def _health(write_dsn: str, read_dsn: str, writes: str) -> dict:
    async def go() -> dict:
        store = PgStore(write_dsn, read_dsn, timeout_s=2, writes=writes)
        await store.start()
        try:
            return await store.health()
        finally:
            await store.close()

    return asyncio.run(go())


def _dsn(port: int, query: str = "") -> str:
    return pglib.dsn(port) + (f"?{query}" if query else "")


@pytest.mark.sandbox
def test_forwarding_secondary_is_ready_and_plain_read_only_node_is_not(pair):
    primary, replica = pair
    # an Aurora secondary with global write forwarding: read-only to every session check, forwarding on
    aurora = _health(_dsn(replica, f"{FORWARDING_SETTING}=session"), _dsn(replica), "forwarded")
    assert aurora["writes"] == "forwarding" and readiness_problems("dr", "forwarded", aurora) == []
    # the same node with forwarding off (a secondary whose cluster forwards nothing; the old primary
    # after a switchover without it, finding 12): unavailable, and the region is not ready
    off = _health(_dsn(replica, f"{FORWARDING_SETTING}=off"), _dsn(replica), "forwarded")
    assert off["writes"] == "unavailable" and "off" in off["write_error"]
    assert readiness_problems("primary", "forwarded", off) and readiness_problems("dr", "forwarded", off)
    # the writer itself through a forwarded path (the global writer's own cluster endpoint)
    assert _health(_dsn(primary), _dsn(primary), "forwarded")["writes"] == "ok"


@pytest.mark.sandbox
def test_old_shape_a_dr_region_demanding_a_read_write_session_of_its_replica_never_gets_ready(pair):
    """Finding 4 as it was: the dr region's write DSN demands read-write of a node that is read-only."""
    _, replica = pair
    h = _health(_dsn(replica, "target_session_attrs=read-write"), _dsn(replica), "direct")
    assert h["writes"] == "unavailable" and readiness_problems("dr", "direct", h)


@pytest.mark.sandbox
def test_passive_replica_is_ready_refuses_writes_then_takes_them_once_promoted(pair):
    _, replica = pair
    write_dsn = _dsn(replica, "target_session_attrs=read-write")  # what apac's dr renders (components.workload)
    h = _health(write_dsn, _dsn(replica), "passive")
    assert h["db_role"] == "replica" and h["writes"] == "passive" and readiness_problems("dr", "passive", h) == []

    async def write() -> list[int]:
        store = PgStore(write_dsn, _dsn(replica), timeout_s=2, writes="passive")
        await store.start()
        try:
            return await store.insert_events("acme", [("t", {"n": 1})])
        finally:
            await store.close()

    with pytest.raises(Passive, match="passive"):
        asyncio.run(write())
    # the replica unreachable: not ready (it could not take over)
    nothing = portlib.allocate(["nothing"])["nothing"]
    down = _health(_dsn(nothing, "target_session_attrs=read-write"), _dsn(nothing), "passive")
    assert down["db"] == "unreachable" and down["writes"] == "unavailable" and readiness_problems("dr", "passive", down)
    # promotion: the same DSN now lands writes, and the region is ready as a writer
    asyncio.run(pglib.promote(replica))
    promoted = _health(write_dsn, _dsn(replica), "passive")
    assert promoted["db_role"] == "primary" and promoted["writes"] == "ok"
    assert asyncio.run(write())


def test_the_readiness_probe_waits_longer_than_healthz_can_take():
    """/healthz may wait db_timeout_s for a connection and again for its query: a shorter probe
    timeout (the kubelet's default is 1 s) would mark a slow but serving region unready."""
    from components.workload import READINESS_TIMEOUT_S, pod_spec

    spec = pod_spec(image="i", secret_name="s", settings_file="f", port=8080, command=("python",), probes=True)
    probe = spec["containers"][0]["readinessProbe"]
    assert probe["timeoutSeconds"] == READINESS_TIMEOUT_S > 2 * service_settings().db_timeout_s
    assert probe["httpGet"]["path"] == "/healthz"
