"""Traffic through the front door during a drill: writers that record every acknowledged write by
the id the client gave it, and a reader that reads back the newest one. Every outcome is kept with
its time, which is what RTO and RPO are measured from.

Each write carries a client-generated id (UUID4) and a digest of its content in the event's payload:
`{"probe": uuid, "seq": n, "at": t, "digest": sha256(...)}`. Afterwards each acknowledged write is
read back and checked by content (`read_back`, `measure.data_loss`): the id the database assigned is
kept for reference only, since after an asynchronous promotion a bigserial sequence hands out ids
the old primary had already acknowledged, and a loss check by database id passes when the data is gone.

There is one writer per tenant of the stack, each at a steady rate below half its plan's ingest quota
(a 429 would read as an outage), all under one event type per drill run (`drill.probe.<run>`), so
the read-back is one filtered walk per tenant.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field

import httpx

from meridian.targets import TenantCredential

REQUEST_TIMEOUT_S = 1.0
TYPE_PREFIX = "drill.probe."


@dataclass(frozen=True)
class Outcome:
    t: float  # epoch seconds when the request finished
    kind: str  # "write" | "read"
    ok: bool
    status: int | None  # HTTP status, None when no answer came
    event_id: int | None = None  # the id the database assigned (writes), the id read back (reads)
    region: str | None = None  # the region that answered
    tenant: str | None = None
    probe_id: str | None = None  # the client-generated id of the write (or of the write read back)
    digest: str | None = None  # sha256 of the write's content, as sent


@dataclass
class ProbeLog:
    tenant: str  # the tenant the reader reads as
    tenants: list[str] = field(default_factory=list)  # every tenant written as
    event_type: str = ""
    outcomes: list[Outcome] = field(default_factory=list)

    def acknowledged(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "write" and o.ok and o.probe_id is not None]

    def to_dict(self) -> dict:
        return {
            "tenant": self.tenant,
            "tenants": self.tenants,
            "event_type": self.event_type,
            "outcomes": [asdict(o) for o in self.outcomes],
        }


def content_digest(tenant: str, probe_id: str, seq: int, at: float) -> str:
    """What a write's `digest` field holds: sha256 over its tenant and content, canonical JSON."""
    doc = json.dumps({"tenant": tenant, "probe": probe_id, "seq": seq, "at": at}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


def content_intact(tenant: str, payload: dict) -> str | None:
    """The digest of a stored payload when its content still matches it, else None."""
    try:
        digest = content_digest(tenant, str(payload["probe"]), int(payload["seq"]), float(payload["at"]))
    except (KeyError, TypeError, ValueError):
        return None
    return digest if payload.get("digest") == digest else None


def pick_tenant(tenants: list[TenantCredential]) -> TenantCredential:
    """The tenant with the most read headroom: the reader must never be the cause of a 429."""
    if not tenants:
        raise ValueError("the target has no tenants to write as")
    return max(tenants, key=lambda t: (t.gql_qps, t.ingest_eps, t.id))


class Probe:
    """Writes as every tenant and reads as one through `endpoint`, on threads until `stop()`."""

    def __init__(self, endpoint: str, tenants: list[TenantCredential], *, rate_per_s: float = 20.0, run_tag: str | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.tenant = pick_tenant(tenants)
        self.tenants = {t.id: t for t in tenants}
        self.event_type = TYPE_PREFIX + (run_tag or uuid.uuid4().hex[:12])
        self.rate_per_s = rate_per_s
        # below both quotas with room to spare (token buckets start full, but a drill is long)
        self.read_interval = 1.0 / min(rate_per_s, max(1.0, self.tenant.gql_qps * 0.5))
        self.log = ProbeLog(self.tenant.id, sorted(self.tenants), self.event_type)
        self.started_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_ack: Outcome | None = None
        self._threads = [
            threading.Thread(target=self._write_loop, args=(t,), name=f"drill-write-{t.id}", daemon=True) for t in tenants
        ]
        self._threads.append(threading.Thread(target=self._read_loop, name="drill-read", daemon=True))

    def _headers(self, tenant: TenantCredential) -> dict[str, str]:
        return {"Authorization": f"Bearer {tenant.api_key}", "X-Request-Id": f"drill-{time.monotonic_ns()}"}

    def _url(self, tenant: TenantCredential) -> str:
        return f"{self.endpoint}/v1/tenants/{tenant.id}/events"

    def start(self) -> Probe:
        self.started_at = time.time()
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
            if outcome.kind == "write" and outcome.ok and outcome.tenant == self.tenant.id:
                self._last_ack = outcome

    def _write_loop(self, tenant: TenantCredential) -> None:
        interval = 1.0 / min(self.rate_per_s, max(1.0, tenant.ingest_eps * 0.5))
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            seq = 0
            while not self._stop.is_set():
                started = time.monotonic()
                seq += 1
                self._record(self._write(client, tenant, seq))
                self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def _read_loop(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                outcome = self._read(client)
                if outcome is not None:
                    self._record(outcome)
                self._stop.wait(max(0.0, self.read_interval - (time.monotonic() - started)))

    def _write(self, client: httpx.Client, tenant: TenantCredential, seq: int) -> Outcome:
        probe_id, at = str(uuid.uuid4()), round(time.time(), 6)
        digest = content_digest(tenant.id, probe_id, seq, at)
        event = {"type": self.event_type, "payload": {"probe": probe_id, "seq": seq, "at": at, "digest": digest}}
        try:
            r = client.post(self._url(tenant), json=event, headers=self._headers(tenant))
        except httpx.HTTPError:
            return Outcome(time.time(), "write", False, None, tenant=tenant.id, probe_id=probe_id, digest=digest)
        body = _json(r)
        ids = body.get("ids") if r.status_code == 201 else None
        return Outcome(
            time.time(),
            "write",
            bool(ids),
            r.status_code,
            ids[0] if ids else None,
            body.get("region"),
            tenant.id,
            probe_id,
            digest,
        )

    def _read(self, client: httpx.Client) -> Outcome | None:
        with self._lock:
            last = self._last_ack
        if last is None:
            return None  # nothing acknowledged yet to read back
        try:
            r = client.get(f"{self._url(self.tenant)}/{last.event_id}", headers=self._headers(self.tenant))
        except httpx.HTTPError:
            return Outcome(time.time(), "read", False, None, tenant=self.tenant.id, probe_id=last.probe_id)
        body = _json(r)
        payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
        # a good read is the write itself, by content: the id alone may name another event now
        good = r.status_code == 200 and content_intact(self.tenant.id, payload) == last.digest
        return Outcome(
            time.time(),
            "read",
            good,
            r.status_code,
            body.get("id"),
            r.headers.get("x-meridian-region") or body.get("region"),
            self.tenant.id,
            payload.get("probe"),
        )


def _json(r: httpx.Response) -> dict:
    try:
        doc = r.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def read_back(endpoint: str, tenant: TenantCredential, event_type: str, *, page: int = 1000) -> dict[str, str | None]:
    """Every probe write of `event_type` the serving region's database holds for `tenant`, read
    through the front door: client id -> the digest its stored content still matches (None when the
    content does not match its digest)."""
    found: dict[str, str | None] = {}
    after = 0
    url = f"{endpoint.rstrip('/')}/v1/tenants/{tenant.id}/events"
    with httpx.Client(timeout=5.0) as client:
        while True:
            r = client.get(
                url,
                params={"after": after, "limit": page, "type": event_type},
                headers={"Authorization": f"Bearer {tenant.api_key}"},
            )
            if r.status_code == 429:
                time.sleep(float(r.headers.get("retry-after", "0.2")))
                continue
            r.raise_for_status()
            events = r.json().get("events", [])
            if not events:
                return found
            for e in events:
                payload = e.get("payload") if isinstance(e.get("payload"), dict) else {}
                if "probe" in payload:
                    found[str(payload["probe"])] = content_intact(tenant.id, payload)
            after = events[-1]["id"]
