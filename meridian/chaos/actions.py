"""Chaos Toolkit probes and actions: thin calls on `meridian.targets`, so every experiment in
`loadtests/chaos/` runs on the sandbox and on AWS alike (`chaos run` or `meridian chaos`).

Each function takes the experiment's `configuration` (Chaos Toolkit passes it by name):
`stack`, `target` (sandbox | aws), `project_dir`, `state_dir` (sandbox only), all settable from
the environment (MERIDIAN_STACK, MERIDIAN_TARGET, MERIDIAN_PROJECT_DIR, MERIDIAN_STATE_DIR).
Actions return their `ActionResult` as a dict, which lands in the journal.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from meridian.errors import MeridianError
from meridian.targets import Fault, Target, open_target, perform


def _target(configuration: dict | None) -> Target:
    c = configuration or {}
    from meridian.project import find_project_dir

    project = find_project_dir(Path(c["project_dir"]) if c.get("project_dir") else None)
    kind = c.get("target") or "sandbox"
    options = {"state_dir": Path(c["state_dir"])} if kind == "sandbox" and c.get("state_dir") else {}
    try:
        return open_target(kind, c.get("stack") or "us", project, **options)
    except MeridianError as exc:
        raise ActivityFailed(str(exc)) from None


def _do(configuration, op: str, *args, **kwargs) -> dict:
    target = _target(configuration)
    try:
        return perform(target, op, *args, **kwargs).to_dict()
    except MeridianError as exc:
        raise ActivityFailed(f"{op} failed: {exc}") from None


# --- probes --------------------------------------------------------------------------------------


def front_door_answers(attempts: int = 3, configuration: dict | None = None) -> bool:
    """Steady state (user view): some region answers through the front door, to a client that
    retries as clients do (`attempts` tries, 0.2 s apart)."""
    target = _target(configuration)
    for _ in range(max(1, attempts)):
        if target.health().serving is not None:
            return True
        time.sleep(0.2)
    return False


def write_accepted(tenant: str, timeout_s: float, configuration: dict | None = None) -> bool:
    """Steady state (user view): a write for `tenant` is accepted within `timeout_s`."""
    try:
        writes_succeed(tenant, timeout_s, configuration)
    except ActivityFailed:
        return False
    return True


def serving_region(configuration: dict | None = None) -> str:
    """The role ("primary"/"dr") the front door sends traffic to now, "none" if nothing answers."""
    return _target(configuration).health().serving or "none"


def wait_for_serving(role: str, timeout_s: float, configuration: dict | None = None) -> dict:
    """Until the front door serves from `role`; returns how long that took. Fails after `timeout_s`."""
    target = _target(configuration)
    t0 = time.monotonic()
    while True:
        h = target.health()
        if h.serving == role:
            return {"serving": role, "waited_s": round(time.monotonic() - t0, 3)}
        if time.monotonic() - t0 > timeout_s:
            raise ActivityFailed(f"front door not serving from {role} after {timeout_s:g} s: {h.detail}")
        time.sleep(0.05)


def wait_until_healthy(timeout_s: float, configuration: dict | None = None) -> dict:
    target = _target(configuration)
    t0 = time.monotonic()
    while True:
        h = target.health()
        if h.healthy and all(r.routable for r in h.regions.values()):
            return {"healthy": True, "waited_s": round(time.monotonic() - t0, 3)}
        if time.monotonic() - t0 > timeout_s:
            raise ActivityFailed(f"stack not healthy after {timeout_s:g} s: {h.detail}")
        time.sleep(0.1)


def writes_succeed(tenant: str, timeout_s: float, configuration: dict | None = None) -> dict:
    """Until a write through the front door for `tenant` is accepted (the database failover is done)."""
    import httpx

    target = _target(configuration)
    cred = next((t for t in target.tenants() if t.id == tenant), None)
    if cred is None:
        raise ActivityFailed(f"no tenant {tenant!r} on the target")
    url = f"{target.endpoint()}/v1/tenants/{tenant}/events"
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 <= timeout_s:
        try:
            r = httpx.post(
                url, json={"type": "chaos-probe", "payload": {}}, timeout=2, headers={"Authorization": f"Bearer {cred.api_key}"}
            )
            if r.status_code == 201:
                return {"accepted": True, "waited_s": round(time.monotonic() - t0, 3)}
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise ActivityFailed(f"writes for {tenant} still fail after {timeout_s:g} s ({last})")


# --- actions -------------------------------------------------------------------------------------


def kill_region(role: str, configuration: dict | None = None) -> dict:
    return _do(configuration, "kill_region", role)


def restore_region(role: str, configuration: dict | None = None) -> dict:
    return _do(configuration, "restore_region", role)


def stop_database(role: str, planned: bool = False, configuration: dict | None = None) -> dict:
    return _do(configuration, "stop_database", role, planned=planned)


def restore_database(role: str, configuration: dict | None = None) -> dict:
    return _do(configuration, "restore_database", role)


def promote(role: str, configuration: dict | None = None) -> dict:
    return _do(configuration, "promote", role)


def flip_traffic(to_role: str, configuration: dict | None = None) -> dict:
    return _do(configuration, "flip_traffic", to_role)


def inject_fault(
    kind: str,
    layer: str,
    role: str,
    latency_ms: float = 0.0,
    jitter_ms: float = 0.0,
    probability: float = 0.0,
    configuration: dict | None = None,
) -> dict:
    try:
        fault = Fault(kind, layer, role, float(latency_ms), float(jitter_ms), float(probability))  # type: ignore[arg-type]
    except MeridianError as exc:
        raise ActivityFailed(str(exc)) from None
    return _do(configuration, "inject", fault)


def clear_faults(configuration: dict | None = None) -> dict:
    return _do(configuration, "clear_faults")


def noisy_neighbour(tenant: str, multiple: float, seconds: float, configuration: dict | None = None) -> dict:
    """One tenant far over its quota: reads at `multiple` x its plan's rate for `seconds`, ignoring
    Retry-After (a misbehaving client). Fails unless the quota answered with 429 + Retry-After."""
    import httpx

    target = _target(configuration)
    cred = next((t for t in target.tenants() if t.id == tenant), None)
    if cred is None:
        raise ActivityFailed(f"no tenant {tenant!r} on the target")
    rate = cred.gql_qps * multiple
    url = f"{target.endpoint()}/v1/tenants/{tenant}/events"
    counts = {"sent": 0, "ok": 0, "throttled": 0, "other": 0, "retry_after_missing": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    threads_n = 4

    def hammer() -> None:
        period = threads_n / rate
        with httpx.Client(timeout=2, headers={"Authorization": f"Bearer {cred.api_key}"}) as client:
            next_at = time.monotonic()
            while time.monotonic() < deadline:
                try:
                    r = client.get(url, params={"limit": 1})
                    code = r.status_code
                    missing = code == 429 and not r.headers.get("Retry-After")
                except httpx.HTTPError:
                    code, missing = 0, False
                with lock:
                    counts["sent"] += 1
                    counts["ok" if code == 200 else "throttled" if code == 429 else "other"] += 1
                    counts["retry_after_missing"] += missing
                next_at += period
                time.sleep(max(0.0, next_at - time.monotonic()))

    workers = [threading.Thread(target=hammer, daemon=True) for _ in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 5)
    result = {
        "tenant": tenant,
        "plan": cred.plan,
        "quota_qps": cred.gql_qps,
        "offered_qps": rate,
        "achieved_qps": round(counts["sent"] / seconds, 1),
        **counts,
    }
    if counts["throttled"] == 0 or counts["retry_after_missing"]:
        raise ActivityFailed(f"the quota did not answer the noisy tenant with 429 + Retry-After: {result}")
    return result
