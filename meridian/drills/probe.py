"""Traffic through the front door during a drill: a writer that records every acknowledged write
id, and a reader that reads back the newest acknowledged write. Both keep every outcome with its
time, which is what RTO and RPO are measured from.

The writer writes as one tenant at a steady rate below that tenant's ingest quota (a 429 would
read as an outage); every 2xx carries the id the database assigned: that id is the acknowledgement.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

import httpx

from meridian.targets import TenantCredential

REQUEST_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Outcome:
    t: float  # epoch seconds when the request finished
    kind: str  # "write" | "read"
    ok: bool
    status: int | None  # HTTP status, None when no answer came
    event_id: int | None = None  # the acknowledged id (writes), the id read back (reads)
    region: str | None = None  # the region that answered


@dataclass
class ProbeLog:
    tenant: str
    outcomes: list[Outcome] = field(default_factory=list)

    def acknowledged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "write" and o.ok and o.event_id is not None]

    def to_dict(self) -> dict:
        return {"tenant": self.tenant, "outcomes": [asdict(o) for o in self.outcomes]}


def pick_tenant(tenants: list[TenantCredential]) -> TenantCredential:
    """The tenant with the most ingest headroom: the probe must never be the cause of a 429."""
    if not tenants:
        raise ValueError("the target has no tenants to write as")
    return max(tenants, key=lambda t: (t.ingest_eps, t.gql_qps, t.id))


class Probe:
    """Writes and reads through `endpoint` on two threads until `stop()`."""

    def __init__(self, endpoint: str, tenant: TenantCredential, *, rate_per_s: float = 50.0):
        self.endpoint = endpoint.rstrip("/")
        self.tenant = tenant
        # below both quotas with room to spare (token buckets start full, but a drill is long)
        self.write_interval = 1.0 / min(rate_per_s, max(1.0, tenant.ingest_eps * 0.5))
        self.read_interval = 1.0 / min(rate_per_s, max(1.0, tenant.gql_qps * 0.5))
        self.log = ProbeLog(tenant.id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_ack: int | None = None
        self._threads = [
            threading.Thread(target=self._loop, args=(kind,), name=f"drill-{kind}", daemon=True) for kind in ("write", "read")
        ]

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tenant.api_key}", "X-Request-Id": f"drill-{time.monotonic_ns()}"}

    def start(self) -> Probe:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> ProbeLog:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=REQUEST_TIMEOUT_S * 3)
        return self.log

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.log.outcomes.append(outcome)
            if outcome.kind == "write" and outcome.ok and outcome.event_id is not None:
                self._last_ack = outcome.event_id

    def _loop(self, kind: str) -> None:
        interval = self.write_interval if kind == "write" else self.read_interval
        url = f"{self.endpoint}/v1/tenants/{self.tenant.id}/events"
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                outcome = self._write(client, url) if kind == "write" else self._read(client, url)
                if outcome is not None:
                    self._record(outcome)
                self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _write(self, client: httpx.Client, url: str) -> Outcome:
        try:
            r = client.post(url, json={"type": "drill.probe", "payload": {"at": time.time()}}, headers=self._headers())
        except httpx.HTTPError:
            return Outcome(time.time(), "write", False, None)
        body = _json(r)
        ids = body.get("ids") if r.status_code == 201 else None
        return Outcome(time.time(), "write", bool(ids), r.status_code, ids[0] if ids else None, body.get("region"))

    def _read(self, client: httpx.Client, url: str) -> Outcome | None:
        with self._lock:
            last = self._last_ack
        if last is None:
            return None  # nothing acknowledged yet to read back
        try:
            r = client.get(f"{url}/{last}", headers=self._headers())
        except httpx.HTTPError:
            return Outcome(time.time(), "read", False, None)
        body = _json(r)
        return Outcome(
            time.time(),
            "read",
            r.status_code == 200 and body.get("id") == last,
            r.status_code,
            body.get("id"),
            r.headers.get("x-meridian-region") or body.get("region"),
        )


def _json(r: httpx.Response) -> dict:
    try:
        doc = r.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def present_ids(endpoint: str, tenant: TenantCredential, ids: list[int], *, page: int = 1000) -> set[int]:
    """Which of `ids` the serving region's database holds, read through the front door (pages of
    the tenant's events from just below the smallest id)."""
    if not ids:
        return set()
    wanted, found = set(ids), set()
    after, top = min(ids) - 1, max(ids)
    url = f"{endpoint.rstrip('/')}/v1/tenants/{tenant.id}/events"
    with httpx.Client(timeout=5.0) as client:
        while after < top:
            r = client.get(url, params={"after": after, "limit": page}, headers={"Authorization": f"Bearer {tenant.api_key}"})
            if r.status_code == 429:
                time.sleep(float(r.headers.get("retry-after", "0.2")))
                continue
            r.raise_for_status()
            events = r.json().get("events", [])
            if not events:
                break
            found.update(e["id"] for e in events if e["id"] in wanted)
            after = events[-1]["id"]
    return found
