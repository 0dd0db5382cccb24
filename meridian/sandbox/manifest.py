"""The sandbox manifest: `.meridian/sandbox/<stack>/manifest.json`, what load, chaos and drills read.

Written atomically (temp file + rename), mode 0600: it holds the tenants' API keys. Written again
after every process start, so a crash half-way through `up` still leaves the pids to clean.

    {
      "version": 1, "stack": "us", "state": "starting|up|failed|down", "root": "<abs dir>",
      "created_at": "<iso8601>", "updated_at": "<iso8601>",
      "endpoint": "http://127.0.0.1:<haproxy port>",          # the front door (Route 53 stand-in)
      "regions": {
        "primary": {"region": "us-east-1", "service_url": "http://127.0.0.1:<p>", "db_port": <p>,
                    "db_dsn": "postgresql://meridian@127.0.0.1:<p>/meridian", "db_role": "primary",
                    "data_dir": "<dir>"},
        "dr":      {... "db_role": "replica" ...}
      },
      "database": {"name": "meridian", "user": "meridian",
                   "write_dsn": "postgresql://meridian@127.0.0.1:<p1>,127.0.0.1:<p2>/meridian?target_session_attrs=read-write"},
      "haproxy": {"port": <p>, "config": "<file>", "stats_socket": "<file>",
                  "servers": {"primary-<region>": "127.0.0.1:<p>", "dr-<region>": "127.0.0.1:<p>"}},
      "faults": {"<name>": {"port": <p>, "upstream": "127.0.0.1:<p>", "control_url": "http://127.0.0.1:<p>"}},
      "ports": {"<name>": <port>, ...},
      "processes": {"<name>": {"pid": <pid>, "create_time": <epoch s>, "log": "<file>"}},
      "tenants": [{"id", "plan", "api_key", "quota": {"gql_qps", "ingest_eps", "storage_gb"}}],
      "plan": {"program": "<fromplan.program_hash it was rendered from>",
               "sha256": "<the previewed plan.json's sha256 (meridian up), null when no preview vouches>"},
      "failover": {"health_check_interval_s", "failure_threshold", "dns_ttl_s", "rto_target_s", "time_scale",
                   "haproxy": {"inter_ms", "fall", "rise", "timeout_check_ms"},
                   "dns_ttl_scaled_s", "detection_bound_scaled_s", "rto_target_scaled_s"}
    }
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from meridian.sandbox.procs import ProcRef

VERSION = 1
FILE = "manifest.json"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def path_of(root: Path) -> Path:
    return root / FILE


def read(root: Path) -> dict | None:
    p = path_of(root)
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"version": VERSION, "state": "corrupt", "processes": {}}
    return doc if isinstance(doc, dict) else {"version": VERSION, "state": "corrupt", "processes": {}}


def write(root: Path, doc: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    doc["updated_at"] = now_iso()
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=root)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path_of(root))
    except BaseException:
        with __import__("contextlib").suppress(OSError):
            os.unlink(tmp)
        raise


def processes(doc: dict) -> list[ProcRef]:
    return [ProcRef.from_dict(name, d) for name, d in (doc.get("processes") or {}).items()]
