"""The sandbox manifest: `.meridian/sandbox/<stack>/manifest.json`, what load, chaos and drills read.

The classes below are the format: `Manifest` and its parts, one dataclass per JSON object, fields
in the order they are written. `Manifest.from_json` reads what `to_json` writes (and what meridian
wrote before these types existed); a key that is missing or of the wrong type is a `ManifestInvalid`
naming it. Optional fields (None) are parts written later in a sandbox's life: a region's
`settings_file` once its service is prepared, `objects.regions` once the S3/KMS/STS stand-in is set
up, `up_seconds` when `up` is done, `error` when it failed, `canary` while canaries run.

Written atomically (temp file + rename), mode 0600: it holds the tenants' API keys (never in a
repr). `up`, restarts and promotions update a `Manifest` in place and write it again after every
process start, so a crash half-way through `up` still leaves the pids to clean.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import tempfile
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from meridian.sandbox.haproxy import ScaledFailover
from meridian.sandbox.procs import ProcRef

VERSION = 1
FILE = "manifest.json"


class ManifestInvalid(ValueError):
    """A manifest key is missing or of the wrong type; the message names it and the file."""


@dataclass
class Region:
    region: str
    service_url: str
    door_url: str
    db_port: int
    db_dsn: str
    db_role: str  # "primary" or "replica": promotions and failback change it
    service_db_dsn: str
    data_dir: str
    settings_file: str | None = None  # the service's settings as `up` wrote them from the plan
    substituted: list[str] | None = None  # a line per substitution of the plan's values


@dataclass
class Database:
    name: str
    user: str
    write_dsn: str


@dataclass
class HAProxy:
    port: int
    config: str
    stats_socket: str
    servers: dict[str, str]  # "<role>-<region>" -> host:port


@dataclass
class FaultProxy:
    port: int
    upstream: str
    control_url: str


@dataclass
class WriterEndpoint:
    """The stand-in for the Aurora cluster (writer) endpoints (meridian.sandbox.writerendpoint)."""

    port: int
    writer_file: str  # names the node it connects to now; promotions rewrite it


@dataclass
class Quota:
    gql_qps: int
    ingest_eps: int
    storage_gb: int


@dataclass
class Tenant:
    id: str
    plan: str
    api_key: str = field(repr=False)
    quota: Quota
    stack: str | None = None  # the stack of the zone holding it: the platform (inline) or a cell (None: written before cells)


@dataclass
class HAProxyChecks:
    inter_ms: int
    fall: int
    rise: int
    timeout_check_ms: int


@dataclass
class Failover:
    """The stack's failover settings and what they become at `time_scale` (haproxy.ScaledFailover)."""

    health_check_interval_s: int
    failure_threshold: int
    dns_ttl_s: int
    rto_target_s: int
    time_scale: float
    haproxy: HAProxyChecks
    dns_ttl_scaled_s: float
    detection_bound_scaled_s: float
    rto_target_scaled_s: float

    @classmethod
    def of(cls, scaled: ScaledFailover) -> Failover:
        return _decode(cls, scaled.to_dict(), "failover")

    def scaled(self) -> ScaledFailover:
        return ScaledFailover(
            self.health_check_interval_s, self.failure_threshold, self.dns_ttl_s, self.rto_target_s, self.time_scale
        )


@dataclass
class ObjectGrant:
    bucket: str
    prefix: str
    kms_key_arn: str
    role_arn: str


@dataclass
class Objects:
    endpoint: str
    spec: str
    regions: dict[str, dict[str, ObjectGrant]] | None = None  # region -> tenant -> what the stand-in made


@dataclass
class Canary:
    version: str
    fault: dict | None
    port: int
    digest: str
    started_at: str


@dataclass
class PlanRecord:
    program: str  # fromplan.program_hash: the program the services were rendered from
    sha256: str | None  # the previewed plan.json's sha256 (`meridian up`); None: no preview vouches for it


@dataclass
class Manifest:
    version: int
    stack: str
    state: str  # starting | up | failed | down
    root: str
    created_at: str
    endpoint: str  # the front door (the Route 53 stand-in)
    regions: dict[str, Region]  # role -> region
    database: Database
    haproxy: HAProxy
    faults: dict[str, FaultProxy]  # empty without --fault-proxies
    ports: dict[str, int]
    processes: dict[str, ProcRef]
    tenants: list[Tenant]
    failover: Failover
    objects: Objects
    updated_at: str | None = None
    error: str | None = None
    up_seconds: float | None = None
    canary: dict[str, Canary] | None = None  # role -> the canary running there
    plan: PlanRecord | None = None  # what the running services were rendered from (None: before plans were recorded)
    writer_endpoint: WriterEndpoint | None = None  # None: written before the stand-in existed

    @classmethod
    def from_json(cls, doc: object) -> Manifest:
        return _decode(cls, doc, "manifest")

    def to_json(self) -> dict:
        return to_json(self)


@dataclass(frozen=True)
class Unreadable:
    """A manifest that is there but cannot be read (not JSON, or a key missing or mistyped):
    state "corrupt". `processes` are the pids it still names, so `up`/`down` can stop them."""

    path: Path
    reason: str
    processes: dict[str, ProcRef] = field(default_factory=dict)
    state: str = "corrupt"

    def hint(self, stack: str) -> str:
        return (
            f"the sandbox manifest {self.path} cannot be read: {self.reason}; stop what it names with "
            f"`meridian sandbox down --stack {stack}`, then `meridian sandbox up --stack {stack}` again"
        )


# --- JSON <-> types ------------------------------------------------------------------------------


def _decode(tp, value, where: str):
    """`value` (parsed JSON) as type `tp`, or ManifestInvalid naming `where` (a dotted key path)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value, where)
    if tp is ProcRef:  # a process record: its name is its key in `processes`
        _expect(value, dict, where)
        try:
            return ProcRef.from_dict(where.rsplit(".", 1)[-1], value)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestInvalid(f"{where}: not a process record ({type(exc).__name__}: {exc})") from None
    if dataclasses.is_dataclass(tp):
        _expect(value, dict, where)
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _decode(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING:
                raise ManifestInvalid(f"{where}.{f.name}: missing")
        return tp(**kwargs)
    if origin is dict:
        _expect(value, dict, where)
        _, item_type = args
        return {k: _decode(item_type, v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        _expect(value, list, where)
        (item_type,) = args
        return [_decode(item_type, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is dict:
        _expect(value, dict, where)
        return value
    _expect(value, tp, where)
    return value


@functools.cache
def _hints(tp) -> dict:
    return typing.get_type_hints(tp)


def _expect(value, tp, where: str) -> None:
    """The value itself stays out of the message: it may be an API key."""
    allowed = (int, float) if tp is float else (tp,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and tp is not bool):
        raise ManifestInvalid(f"{where}: expected {tp.__name__}, got {type(value).__name__}")


def to_json(value):
    """A manifest or any part of it as JSON values; None optional fields are left out."""
    if isinstance(value, ProcRef):
        return value.to_dict()
    if dataclasses.is_dataclass(value):
        return {
            f.name: to_json(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None or f.default is dataclasses.MISSING
        }
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


# --- the file ------------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def path_of(root: Path) -> Path:
    return root / FILE


def read(root: Path) -> Manifest | Unreadable | None:
    """The manifest in `root`; None when there is none; Unreadable when it cannot be read."""
    p = path_of(root)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return Unreadable(p, f"not JSON ({exc})")
    try:
        return Manifest.from_json(doc)
    except ManifestInvalid as exc:
        return Unreadable(p, str(exc), _salvage_processes(doc))


def _salvage_processes(doc: object) -> dict[str, ProcRef]:
    """The process records that still parse in a manifest that does not: pids `up`/`down` may stop."""
    found = doc.get("processes") if isinstance(doc, dict) else None
    out = {}
    for name, rec in (found or {}).items() if isinstance(found, dict) else ():
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            out[name] = ProcRef.from_dict(name, rec)
    return out


def write(root: Path, manifest: Manifest) -> None:
    root.mkdir(parents=True, exist_ok=True)
    manifest.updated_at = now_iso()
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=root)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(manifest.to_json(), f, indent=2, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path_of(root))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
