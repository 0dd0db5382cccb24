"""The Target protocol on the real sandbox: every operation drills and chaos use, done for real and
undone, each test leaving the sandbox healthy for the next. Bounded: the sandbox runs at time
scale 20 (a 10 s x 2 health check fails over in ~1 s).
"""

from __future__ import annotations

import sys
import time

import httpx
import pytest

from meridian.errors import BadInput
from meridian.targets import ROLES, Fault, Target, TargetUnavailable, Unsupported, open_target
from tests.helpers import ROOT, STACK, running_sandbox, until

# --- no sandbox needed ---------------------------------------------------------------------------


def test_factory_refuses_unknown_kinds_and_absent_sandboxes(tmp_path):
    with pytest.raises(BadInput, match="unknown target 'gcp'.*sandbox, aws"):
        open_target("gcp", STACK, ROOT)
    with pytest.raises(TargetUnavailable, match=r"sandbox is not up .*meridian sandbox up --stack us"):
        open_target("sandbox", STACK, ROOT, state_dir=tmp_path)


def test_factory_reports_a_missing_aws_module_as_unavailable(monkeypatch):
    import meridian.targets

    monkeypatch.setitem(sys.modules, "meridian.targets.aws", None)  # import fails as if absent
    monkeypatch.delattr(meridian.targets, "aws", raising=False)  # (another test may have imported it)
    with pytest.raises(TargetUnavailable, match="aws target is not available"):
        open_target("aws", STACK, ROOT)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "latency", "layer": "database", "role": "dr"}, "latency_ms or jitter_ms > 0"),
        ({"kind": "drop", "layer": "service", "role": "primary", "probability": 0}, "0 < probability <= 1"),
        ({"kind": "drop", "layer": "service", "role": "primary", "probability": 1.5}, "0 < probability <= 1"),
        ({"kind": "latency", "layer": "database", "role": "dr", "latency_ms": -1}, ">= 0"),
        ({"kind": "fire", "layer": "database", "role": "dr"}, "unknown fault kind"),
        ({"kind": "blackhole", "layer": "disk", "role": "dr"}, "unknown fault layer"),
        ({"kind": "blackhole", "layer": "service", "role": "eu"}, "unknown region role 'eu'"),
    ],
)
def test_faults_are_validated(kwargs, message):
    with pytest.raises(BadInput, match=message):
        Fault(**kwargs)


# --- on the sandbox ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target():
    with running_sandbox("meridian-targets-test-") as state_dir:
        t = open_target("sandbox", STACK, ROOT, state_dir=state_dir)
        yield t
        # whatever a test did, it must have left the stack whole
        h = t.health()
        assert h.healthy and all(r.routable for r in h.regions.values()), h


def _whole(h) -> bool:
    return h.healthy and h.serving == "primary" and all(r.routable for r in h.regions.values())


def _serving(t: Target, role: str):
    return lambda: t.health().serving == role


@pytest.mark.sandbox
def test_protocol_surface(target):
    assert isinstance(target, Target)
    assert target.endpoint().startswith("http://127.0.0.1:")
    tenants = {t.id: t for t in target.tenants()}
    assert {"acme", "globex", "initech", "umbrella"} <= set(tenants)
    assert tenants["initech"].plan == "starter" and tenants["initech"].gql_qps == 50
    assert "api_key" not in repr(tenants["initech"])  # keys never end up in logs
    r = httpx.get(
        f"{target.endpoint()}/v1/tenants/initech/events", headers={"Authorization": f"Bearer {tenants['initech'].api_key}"}
    )
    assert r.status_code == 200
    h = target.health()
    assert h.healthy and h.serving == "primary", h.detail
    assert h.regions["primary"].database == "primary" and h.regions["dr"].database == "replica"
    # 10 s x 2 + the failover records' 10 s TTL, scaled 20x
    assert target.detection_bound_s() == pytest.approx(1.5)


@pytest.mark.sandbox
def test_flip_traffic_drains_and_restores_the_primary(target):
    first = target.flip_traffic("dr")
    assert first.changed and target.health().serving == "dr"
    assert not target.flip_traffic("dr").changed  # safe to repeat
    assert target.flip_traffic("primary").changed
    assert target.health().serving == "primary"


@pytest.mark.sandbox
def test_set_weights_maps_to_the_failover_pair(target):
    with pytest.raises(Unsupported, match="cannot split traffic"):
        target.set_weights({"primary": 90, "dr": 10})
    with pytest.raises(BadInput, match="integer 0..256"):
        target.set_weights({"primary": -1, "dr": 100})
    with pytest.raises(BadInput, match="must name roles"):
        target.set_weights({"us-east-1": 100})
    target.set_weights({"primary": 0, "dr": 100})
    assert target.health().serving == "dr"
    target.set_weights({"primary": 100, "dr": 0})  # dr drained: no standby left
    h = target.health()
    assert h.serving == "primary" and not h.regions["dr"].routable
    target.flip_traffic("primary")  # both back in rotation
    assert until(lambda: target.health().regions["dr"].routable, 5)


@pytest.mark.sandbox
def test_latency_fault_slows_the_region_and_clears(target):
    def livez_ms() -> float:
        t0 = time.perf_counter()
        assert httpx.get(f"{target.endpoint()}/livez").status_code == 200
        return (time.perf_counter() - t0) * 1000

    target.inject(Fault("latency", "service", "primary", latency_ms=80))
    assert min(livez_ms() for _ in range(3)) >= 80 * 2 * 0.9  # delayed each way (a lower bound: no timing flake)
    cleared = target.clear_faults()
    assert cleared.changed and "svc-primary" in cleared.detail
    for name, proxy in target.doc.faults.items():
        assert httpx.get(f"{proxy.control_url}/faults").json() == {
            "latency_ms": 0,
            "jitter_ms": 0,
            "drop": 0,
            "blackhole": False,
        }, name
    livez_ms()
    assert not target.clear_faults().changed


@pytest.mark.sandbox
def test_database_partition_fails_the_regions_health(target):
    target.inject(Fault("blackhole", "database", "dr"))
    try:
        assert until(lambda: not target.health().regions["dr"].service_up, 5)
    finally:
        target.clear_faults()
    # healthy again, and back in the front door's rotation (HAProxy's `rise` checks passed)
    assert until(lambda: all(target.health().regions["dr"].__dict__[k] for k in ("service_up", "routable")), 5), target.health()


@pytest.mark.sandbox
def test_dropped_connections_fail_the_front_door_over(target):
    # every health check opens a new connection: all reset -> the primary is marked down
    target.inject(Fault("drop", "service", "primary", probability=1.0))
    try:
        assert until(_serving(target, "dr"), target.detection_bound_s() + 2.0), target.health().detail
    finally:
        target.clear_faults()
    assert until(_serving(target, "primary"), target.detection_bound_s() + 2.0), target.health().detail


@pytest.mark.sandbox
def test_region_loss_fails_over_within_the_bound_and_back(target):
    bound = target.detection_bound_s()
    killed = target.kill_region("primary")
    assert killed.changed and target.health().serving in ("dr", None)
    assert until(_serving(target, "dr"), bound + 2.0), target.health().detail
    assert time.time() - killed.started_at <= bound + 2.0
    restored = target.restore_region("primary")
    assert restored.changed and not target.restore_region("primary").changed
    assert until(_serving(target, "primary"), bound + 2.0), target.health().detail


@pytest.mark.sandbox
def test_replica_loss_and_restore(target):
    target.stop_database("dr")
    assert target.health().regions["dr"].database == "down"
    assert not target.health().healthy
    restored = target.restore_database("dr")
    assert restored.changed and "restarted as replica" in restored.detail
    assert until(lambda: target.health().healthy, 10), target.health().detail


@pytest.mark.sandbox
def test_unplanned_database_failover_then_planned_failback(target):
    tenant = next(t for t in target.tenants() if t.id == "acme")
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    url = f"{target.endpoint()}/v1/tenants/acme/events"

    def write(tag: str) -> int:
        r = httpx.post(url, json={"type": tag, "payload": {}}, headers=headers, timeout=5)
        return r.status_code

    assert write("before") == 201
    target.stop_database("primary")  # crash
    assert target.promote("dr").changed
    assert not target.promote("dr").changed
    target.flip_traffic("dr")
    assert until(lambda: write("during") == 201, 10)
    # failback: old primary rebuilt as a replica of dr, planned switchover back, dr rebuilt
    rebuilt = target.restore_database("primary")
    assert "rebuilt as a replica of pg-dr" in rebuilt.detail
    target.stop_database("dr", planned=True)
    target.promote("primary")
    target.restore_database("dr")
    target.flip_traffic("primary")
    assert until(lambda: _whole(target.health()), 15), target.health()
    assert until(lambda: write("after") == 201, 10)
    types = [e["type"] for e in httpx.get(url, params={"limit": 1000}, headers=headers).json()["events"]]
    assert {"before", "during", "after"} <= set(types)  # nothing committed was lost either way
    assert {r: target.health().regions[r].database for r in ROLES} == {"primary": "primary", "dr": "replica"}
