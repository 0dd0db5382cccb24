"""The service's settings: one JSON file (a mounted Secret in a cluster, written by the sandbox locally),
and the tenant files beside it (a cell stack's tenants, `tenant_files_dir`: service.tenants), whose
entries are the settings' own `TenantEntry`, rendered and read by the same two functions.

`ServiceSettings` is what the API reads; `MigrationSettings` what the schema migration reads: the
master DSN (DDL, role management) and the application user it creates for the API. The API's
settings never carry the master credentials, and in a cluster not the API's own password either:
both read it from Secrets Manager (`DbSecret`), where rotation changes it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from service.quotas import TenantQuota

CONFIG_ENV = "MERIDIAN_SERVICE_CONFIG"

# How a region's writes reach the writer (`ServiceSettings.writes`), and what readiness asks of it:
WRITE_PATHS = {
    "direct": "the write DSN names the writer and demands a read-write session: writes need it writable",
    "forwarded": "the write DSN names the region's own Aurora cluster, which is the global writer or a "
    "secondary forwarding writes to it (global write forwarding): writes need one of the two",
    "passive": "the region has no write path while its replica is not promoted (an RDS cross-region "
    "read replica): writes are refused as passive (503 + Retry-After) until the replica is promoted",
}


@dataclass(frozen=True)
class TenantData:
    """Where a tenant's objects live and what reaches them: its bucket (the region's pool bucket, or
    its own silo bucket) and prefix, its KMS key, and the role whose sessions are scoped to it."""

    bucket: str
    prefix: str  # `tenants/t-<id>/`: the same layout in pool and silo buckets
    kms_key_arn: str  # every object under the prefix is encrypted with this key, named on every PUT
    role_arn: str  # assumed per tenant with the tenant's session tag and a session policy naming only the above
    namespace: str  # the `meridian-tenant` session tag value: what the role's brokered statements key on
    replica_key_arn: str | None = None  # pool tenants: the region's pool key, which the other region's replicas arrive under


@dataclass(frozen=True)
class ObjectStorage:
    """How the service reaches S3, KMS and STS in its region."""

    region: str
    endpoint_url: str | None = None  # a local S3/STS stand-in (the sandbox's moto server); None on AWS


@dataclass(frozen=True)
class DbSecret:
    """Where the application user's password lives: a Secrets Manager secret (the region's copy)."""

    arn: str
    region: str
    endpoint_url: str | None = None  # a local Secrets Manager stand-in (the sandbox's moto server); None on AWS


TENANT_ID = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")  # stackconfig's TenantId and the API's path pattern
KEY_DIGEST = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_TENANT_POLL_S = 5.0
MAX_TENANT_POLL_S = 300.0


@dataclass(frozen=True)
class TenantEntry:
    """One tenant as the service serves it: the same shape inline in the settings file and in a tenant file."""

    id: str
    plan: str
    key_sha256: tuple[str, ...]
    quota: TenantQuota
    data: TenantData | None = None

    def to_dict(self) -> dict:
        q = self.quota
        return {
            "id": self.id,
            "plan": self.plan,
            "key_sha256": list(self.key_sha256),
            "quota": {"gql_qps": q.gql_qps, "ingest_eps": q.ingest_eps, "storage_gb": q.storage_gb},
            **({"data": asdict(self.data)} if self.data else {}),
        }

    @classmethod
    def from_dict(cls, d: object) -> TenantEntry:
        """An entry as rendered by `to_dict`; anything else raises ValueError saying which field and what is allowed."""
        if not isinstance(d, dict):
            raise ValueError(f"a tenant entry is an object, got {type(d).__name__}")
        unknown = sorted(set(d) - {"id", "plan", "key_sha256", "quota", "data"})
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        tid = d.get("id")
        if not isinstance(tid, str) or not TENANT_ID.match(tid):
            raise ValueError(f"id: {tid!r} is not a tenant id ({TENANT_ID.pattern})")
        if not isinstance(d.get("plan"), str) or not d["plan"]:
            raise ValueError(f"{tid}: plan must be a non-empty string")
        digests = d.get("key_sha256")
        if not isinstance(digests, list) or not digests or not all(isinstance(x, str) and KEY_DIGEST.match(x) for x in digests):
            raise ValueError(f"{tid}: key_sha256 must be a non-empty list of sha256 hex digests")
        quota = d.get("quota")
        fields = ("gql_qps", "ingest_eps", "storage_gb")
        if not isinstance(quota, dict) or set(quota) != set(fields):
            raise ValueError(f"{tid}: quota must have exactly {', '.join(fields)}")
        for f in fields:
            if isinstance(quota[f], bool) or not isinstance(quota[f], int) or quota[f] < 1:
                raise ValueError(f"{tid}: quota.{f} must be an integer >= 1, got {quota[f]!r}")
        data = d.get("data")
        if data is not None:
            try:
                data = TenantData(**data)
            except TypeError as exc:
                raise ValueError(f"{tid}: data: {exc}") from None
            named = (data.bucket, data.prefix, data.kms_key_arn, data.role_arn, data.namespace)
            if not all(isinstance(v, str) for v in named) or not isinstance(data.replica_key_arn, str | None):
                raise ValueError(f"{tid}: data must name bucket, prefix, kms_key_arn, role_arn, namespace (strings)")
        return cls(tid, d["plan"], tuple(digests), TenantQuota(**quota), data)


def dump_tenant_file(entries: Sequence[TenantEntry]) -> str:
    """A tenant file: a JSON list of entries, compact (a cell's file must fit a 1 MiB Secret), sorted keys."""
    return json.dumps([t.to_dict() for t in entries], separators=(",", ":"), sort_keys=True)


def load_tenant_file(text: str | bytes) -> tuple[TenantEntry, ...]:
    """What `dump_tenant_file` wrote; raises ValueError naming the entry and the problem."""
    try:
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise ValueError(f"a tenant file is a JSON list of tenant entries, got {type(doc).__name__}")
    entries: list[TenantEntry] = []
    first: dict[str, int] = {}  # id or key digest -> the entry that has it
    for i, item in enumerate(doc):
        try:
            entry = TenantEntry.from_dict(item)
        except ValueError as exc:
            raise ValueError(f"entry [{i}]: {exc}") from None
        for what in (entry.id, *entry.key_sha256):
            if what in first:
                kind = "tenant" if what == entry.id else "key digest"
                raise ValueError(f"entry [{i}]: {kind} {what} is already entry [{first[what]}]'s")
            first[what] = i
        entries.append(entry)
    return tuple(entries)


@dataclass(frozen=True)
class VersionFault:
    """Rehearsal only: what this version does wrong on purpose, so a bad canary can be produced and
    the rollout gate shown to catch it. Applied to the API (/v1), never to the health endpoints: a
    bad version that still passes its health checks is exactly what only the SLO gate can catch."""

    latency_ms: float = 0.0  # added to every API response
    error_rate: float = 0.0  # share of API requests answered 500 instead

    def __post_init__(self) -> None:
        if not (self.latency_ms >= 0 and self.latency_ms <= 60_000):
            raise ValueError(f"fault latency_ms must be 0..60000 (got {self.latency_ms})")
        if not 0 <= self.error_rate <= 1:
            raise ValueError(f"fault error_rate must be 0..1 (got {self.error_rate})")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.error_rate > 0

    def to_dict(self) -> dict:
        return {"latency_ms": self.latency_ms, "error_rate": self.error_rate}


@dataclass(frozen=True)
class ServiceSettings:
    region: str  # e.g. us-east-1
    role: str  # the region's role in the pair: primary | dr
    write_dsn: str  # where writes go (`writes` says how: WRITE_PATHS)
    read_dsn: str  # the region's own node (the replica in the dr region)
    tenants: tuple[TenantEntry, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    pool_max: int = 10
    db_timeout_s: float = 2.0
    version: str = "stable"  # answered in X-Meridian-Version: lets a load generator tell canary from stable
    fault: VersionFault | None = None
    objects: ObjectStorage | None = None  # None: the object API answers 503 (no storage configured)
    db_secret: DbSecret | None = None  # the password's source; None: the DSNs carry it (local runs)
    writes: str = "direct"  # how writes reach the writer: a key of WRITE_PATHS
    tenant_files_dir: str | None = None  # every `*.json` there is a tenant file served beside `tenants` (service.tenants)
    tenant_poll_s: float = DEFAULT_TENANT_POLL_S  # how often that directory is checked for changed files

    def __post_init__(self) -> None:
        if self.role not in ("primary", "dr"):
            raise ValueError(f"role must be primary or dr (got {self.role!r})")
        if self.writes not in WRITE_PATHS:
            raise ValueError(f"writes must be one of {', '.join(WRITE_PATHS)} (got {self.writes!r})")
        if self.writes == "passive" and self.role != "dr":
            raise ValueError("only the dr region can be passive: the primary region must have a write path")
        if not 0.1 <= self.tenant_poll_s <= MAX_TENANT_POLL_S:
            raise ValueError(f"tenant_poll_s must be 0.1..{MAX_TENANT_POLL_S:g} s (got {self.tenant_poll_s})")

    @classmethod
    def from_dict(cls, d: dict) -> ServiceSettings:
        tenants = tuple(TenantEntry.from_dict(t) for t in d["tenants"])
        keys = ("host", "port", "pool_max", "db_timeout_s", "version", "writes", "tenant_files_dir", "tenant_poll_s")
        known = {k: d[k] for k in keys if k in d}
        if d.get("fault") is not None:
            known["fault"] = VersionFault(**d["fault"])
        objects = ObjectStorage(**d["objects"]) if d.get("objects") else None
        db_secret = DbSecret(**d["db_secret"]) if d.get("db_secret") else None
        return cls(d["region"], d["role"], d["write_dsn"], d["read_dsn"], tenants, objects=objects, db_secret=db_secret, **known)

    @classmethod
    def load(cls, path: str | Path | None = None) -> ServiceSettings:
        path = path or os.environ.get(CONFIG_ENV)
        if not path:
            raise SystemExit(f"service: no config: pass --config FILE or set {CONFIG_ENV}")
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        out = {
            "region": self.region,
            "role": self.role,
            "write_dsn": self.write_dsn,
            "read_dsn": self.read_dsn,
            "writes": self.writes,
            "host": self.host,
            "port": self.port,
            "pool_max": self.pool_max,
            "db_timeout_s": self.db_timeout_s,
            "version": self.version,
            **({"fault": self.fault.to_dict()} if self.fault is not None else {}),
            "tenants": [t.to_dict() for t in self.tenants],
        }
        if self.tenant_files_dir is not None:  # absent otherwise: settings without tenant files keep their bytes
            out["tenant_files_dir"] = self.tenant_files_dir
            out["tenant_poll_s"] = self.tenant_poll_s
        if self.objects is not None:
            out["objects"] = asdict(self.objects)
        if self.db_secret is not None:
            out["db_secret"] = asdict(self.db_secret)
        return out


@dataclass(frozen=True)
class MigrationSettings:
    admin_dsn: str  # the master user: applies the schema, creates the application user
    app_user: str  # what the API logs in as: DML on the schema, nothing else
    app_secret: DbSecret  # the application user's password: set to the secret's AWSCURRENT on every run

    @classmethod
    def from_dict(cls, d: dict) -> MigrationSettings:
        return cls(d["admin_dsn"], d["app_user"], DbSecret(**d["app_secret"]))

    @classmethod
    def load(cls, path: str | Path) -> MigrationSettings:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        return {"admin_dsn": self.admin_dsn, "app_user": self.app_user, "app_secret": asdict(self.app_secret)}
