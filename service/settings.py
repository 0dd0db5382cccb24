"""The service's settings: one JSON file (a mounted Secret in a cluster, written by the sandbox locally)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from service.quotas import TenantQuota

CONFIG_ENV = "MERIDIAN_SERVICE_CONFIG"


@dataclass(frozen=True)
class TenantData:
    """Where a tenant's objects live and what reaches them: its bucket (the region's pool bucket, or
    its own silo bucket) and prefix, its KMS key, and the role whose sessions are scoped to it."""

    bucket: str
    prefix: str  # `tenants/t-<id>/`: the same layout in pool and silo buckets
    kms_key_arn: str  # every object under the prefix is encrypted with this key, named on every PUT
    role_arn: str  # assumed per tenant with the tenant's session tag and a session policy naming only the above
    namespace: str  # the `kubernetes-namespace` session tag value: what the role's ABAC statements key on


@dataclass(frozen=True)
class ObjectStorage:
    """How the service reaches S3, KMS and STS in its region."""

    region: str
    cluster_arn: str | None = None  # the `eks-cluster-arn` session tag the tenant role's statements require
    endpoint_url: str | None = None  # a local S3/STS stand-in (the sandbox's moto server); None on AWS


@dataclass(frozen=True)
class TenantEntry:
    id: str
    plan: str
    key_sha256: tuple[str, ...]
    quota: TenantQuota
    data: TenantData | None = None


@dataclass(frozen=True)
class ServiceSettings:
    region: str  # e.g. us-east-1
    role: str  # the region's role in the pair: primary | dr
    write_dsn: str  # multi-host, target_session_attrs=read-write: follows a promotion
    read_dsn: str  # the region's own node (the replica in the dr region)
    tenants: tuple[TenantEntry, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    pool_max: int = 10
    db_timeout_s: float = 2.0
    objects: ObjectStorage | None = None  # None: the object API answers 503 (no storage configured)

    @classmethod
    def from_dict(cls, d: dict) -> ServiceSettings:
        tenants = tuple(
            TenantEntry(
                t["id"],
                t["plan"],
                tuple(t["key_sha256"]),
                TenantQuota(**t["quota"]),
                TenantData(**t["data"]) if t.get("data") else None,
            )
            for t in d["tenants"]
        )
        known = {k: d[k] for k in ("host", "port", "pool_max", "db_timeout_s") if k in d}
        objects = ObjectStorage(**d["objects"]) if d.get("objects") else None
        return cls(d["region"], d["role"], d["write_dsn"], d["read_dsn"], tenants, objects=objects, **known)

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
            "host": self.host,
            "port": self.port,
            "pool_max": self.pool_max,
            "db_timeout_s": self.db_timeout_s,
            "tenants": [
                {
                    "id": t.id,
                    "plan": t.plan,
                    "key_sha256": list(t.key_sha256),
                    "quota": {"gql_qps": t.quota.gql_qps, "ingest_eps": t.quota.ingest_eps, "storage_gb": t.quota.storage_gb},
                    **({"data": asdict(t.data)} if t.data else {}),
                }
                for t in self.tenants
            ],
        }
        if self.objects is not None:
            out["objects"] = asdict(self.objects)
        return out
