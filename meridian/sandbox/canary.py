"""A canary beside a region's stable service in the sandbox: its process and its HAProxy servers.

The canary is the same reference service, started from the region's own rendered settings with
another `version` (and, for rehearsal, a `fault`), on a free port. It joins HAProxy at run time
through the admin socket (`add server`), in the front door's `api` backend (a backup for dr, as its
stable server is) and in the region's own `region-<role>` backend, with weight 0: it serves nothing
until a weight is set. The split is the pair's weights, stable 100-p and canary p, so the share
read back from HAProxy (`get weight`) is the percentage itself. Nothing of this is cached: the
admin socket is the truth, so a restarted HAProxy (which forgets run-time servers) reads back 0 %.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from meridian import ports as portlib
from meridian.sandbox import core, procs
from meridian.sandbox import manifest as mf
from meridian.sandbox.haproxy import check_params

ROLES = ("primary", "dr")
SERVICE_DIR = core.SERVICE_PROJECT_DIR / "service"


class CanaryError(Exception):
    """HAProxy refused a command, or the canary did not start (the message says which)."""


def process_name(role: str) -> str:
    return f"svc-canary-{role}"


def server_name(role: str) -> str:
    return f"canary-{role}"


def stable_server(doc: mf.Manifest, role: str) -> str:
    for name in doc.haproxy.servers:
        if name.split("-", 1)[0] == role:
            return name
    raise CanaryError(f"no stable HAProxy server for {role} in the manifest ({list(doc.haproxy.servers)})")


def backends_of(role: str) -> tuple[str, str]:
    """The two backends a region's servers are in: the front door's and the region's own door."""
    return ("api", f"region-{role}")


def version_digest(version: str, fault: dict | None) -> str:
    """The sandbox's stand-in for an image digest: sha256 over the service's source files (sorted
    by path) and the version's own settings (version name, fault). Two runs of the same code and
    settings give the same digest; any change to either gives another."""
    h = hashlib.sha256()
    for path in sorted(SERVICE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(SERVICE_DIR).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    h.update(json.dumps({"version": version, "fault": fault}, sort_keys=True).encode())
    return "sha256:" + h.hexdigest()


def _command(doc: mf.Manifest, command: str) -> str:
    try:
        return core.haproxy_command(doc, command).strip()
    except OSError as exc:
        raise CanaryError(f"HAProxy admin socket did not answer `{command}`: {exc}") from None


def _expect_empty(doc: mf.Manifest, command: str) -> None:
    reply = _command(doc, command)
    if reply:
        raise CanaryError(f"HAProxy refused `{command}`: {reply}")


def _weight(doc: mf.Manifest, backend: str, server: str) -> int | None:
    """The server's current weight, None if HAProxy has no such server."""
    reply = _command(doc, f"get weight {backend}/{server}")
    head = reply.split(" ", 1)[0]
    return int(head) if head.isdigit() else None


def running(doc: mf.Manifest) -> dict[str, mf.Canary]:
    """The canaries the manifest records whose process is alive: role -> record."""
    out = {}
    for role, rec in (doc.canary or {}).items():
        ref = doc.processes.get(process_name(role))
        if ref is not None and procs.alive(ref):
            out[role] = rec
    return out


def start(
    doc: mf.Manifest, role: str, version: str, fault: dict | None, timeout: float = core.READY_TIMEOUT_S
) -> tuple[bool, str]:
    """Start (or keep) `role`'s canary running `version`; it joins HAProxy at weight 0."""
    from service.settings import ServiceSettings, VersionFault

    root = Path(doc.root)
    current = running(doc).get(role)
    if current is not None and current.version == version and current.fault == fault:
        _join(doc, role, current.port)
        return False, f"{process_name(role)} already runs {version}"
    if current is not None:
        stop(doc, role)
        reread = mf.read(root)
        doc = reread if isinstance(reread, mf.Manifest) else doc
    # the settings the region's stable service runs with: what `sandbox up` wrote from the plan's Deployment
    stable = ServiceSettings.from_dict(json.loads(Path(doc.regions[role].settings_file).read_text()))
    port = portlib.allocate([process_name(role)], avoid=set(doc.ports.values()))[process_name(role)]
    settings = dataclasses.replace(
        stable, port=port, version=version, fault=VersionFault(**fault) if fault else None
    )  # the region's own settings: same database, tenants and quotas; only what the version changes differs
    conf = root / "etc" / f"service-canary-{role}.json"
    conf.write_text(json.dumps(settings.to_dict(), indent=2))
    os.chmod(conf, 0o600)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},  # only the broker's key reaches the stand-in
        "PYTHONPATH": os.pathsep.join(filter(None, [str(core.SERVICE_PROJECT_DIR), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        **core.object_credentials(root),
    }
    ref, proc = procs.spawn(
        process_name(role),
        [sys.executable, "-m", "service", "--config", str(conf)],
        root / "logs" / f"{process_name(role)}.log",
        env=env,
        cwd=core.SERVICE_PROJECT_DIR,
    )
    doc.processes[ref.name] = ref
    doc.ports[ref.name] = port
    doc.canary = doc.canary or {}
    doc.canary[role] = mf.Canary(
        version=version, fault=fault, port=port, digest=version_digest(version, fault), started_at=mf.now_iso()
    )
    mf.write(root, doc)
    try:
        asyncio.run(core._ready(ref.name, core._wait_http(f"http://{core.HOST}:{port}/healthz", timeout, proc), doc))
    except core.SandboxError as exc:
        stop(doc, role)
        raise CanaryError(str(exc)) from None
    _join(doc, role, port)
    return True, f"{process_name(role)} runs {version} on port {port}, in HAProxy at weight 0"


def _join(doc: mf.Manifest, role: str, port: int) -> None:
    """Add the canary's servers to HAProxy (weight 0, checked, ready) unless they are there."""
    fo = doc.failover.scaled()
    name = server_name(role)
    for backend in backends_of(role):
        if _weight(doc, backend, name) is not None:
            continue
        backup = " backup" if backend == "api" and role == "dr" else ""
        reply = _command(doc, f"add server {backend}/{name} {core.HOST}:{port} weight 0 check {check_params(fo)}{backup}")
        if "New server registered" not in reply:
            raise CanaryError(f"HAProxy refused to add {backend}/{name}: {reply}")
        _expect_empty(doc, f"enable health {backend}/{name}")
        _expect_empty(doc, f"set server {backend}/{name} state ready")


def set_weight(doc: mf.Manifest, role: str, percent: int) -> tuple[bool, str]:
    """Send `percent` of the region's traffic to its canary, in both of the region's backends at
    once (one admin-socket line: HAProxy runs the commands back to back)."""
    name, stable = server_name(role), stable_server(doc, role)
    before = weights(doc)[role]
    present = _weight(doc, "api", name) is not None
    if not present:
        if percent == 0:
            _restore_stable(doc, role)
            return before != 0, f"no canary in {role}: all traffic on {stable}"
        raise CanaryError(f"no canary server in HAProxy for {role}: start the canary first")
    commands = []
    for backend in backends_of(role):
        # canary first when it grows, stable first when it shrinks: the canary never exceeds its target share
        pair = [f"set weight {backend}/{stable} {100 - percent}", f"set weight {backend}/{name} {percent}"]
        commands += pair if percent < before else pair[::-1]
    reply = _command(doc, "; ".join(commands))
    if reply:
        raise CanaryError(f"HAProxy refused the weights ({'; '.join(commands)}): {reply}")
    return before != percent, f"{role}: canary {percent} %, stable {100 - percent} %"


def _restore_stable(doc: mf.Manifest, role: str) -> None:
    stable = stable_server(doc, role)
    for backend in backends_of(role):
        _expect_empty(doc, f"set weight {backend}/{stable} 100%")  # back to its configured weight


def weights(doc: mf.Manifest) -> dict[str, int]:
    """Role -> the canary's share (0..100) as HAProxy has it now (the front door's backend)."""
    out = {}
    for role in ROLES:
        canary = _weight(doc, "api", server_name(role))
        stable = _weight(doc, "api", stable_server(doc, role))
        if canary is None or stable is None or canary + stable == 0:
            out[role] = 0
        else:
            out[role] = round(100 * canary / (canary + stable))
    return out


def stop(doc: mf.Manifest, role: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Take the canary out of HAProxy (stable back to all traffic), then stop its process."""
    root = Path(doc.root)
    name = server_name(role)
    said = []
    for backend in backends_of(role):
        if _weight(doc, backend, name) is None:
            continue
        _expect_empty(doc, f"set weight {backend}/{stable_server(doc, role)} 100%")
        _command(doc, f"set server {backend}/{name} state maint")
        _command(doc, f"shutdown sessions server {backend}/{name}")
        deadline = time.monotonic() + timeout
        while True:  # `del server` waits for the server's last connection to close
            reply = _command(doc, f"del server {backend}/{name}")
            if "Server deleted" in reply or _weight(doc, backend, name) is None:
                break
            if time.monotonic() > deadline:
                raise CanaryError(f"HAProxy would not delete {backend}/{name}: {reply}")
            time.sleep(0.05)
        said.append(f"{backend}/{name} removed")
    ref = doc.processes.get(process_name(role))
    if ref is not None:
        if procs.stop(ref):
            said.append(f"{process_name(role)} stopped")
        doc.processes.pop(ref.name, None)
    doc.ports.pop(process_name(role), None)
    (doc.canary or {}).pop(role, None)
    mf.write(root, doc)
    return bool(said), ", ".join(said) or f"no canary in {role}"
