"""Run a container of the plan locally, as the pod would run it: its command, args, env and the
files its mounts show it, against local stand-ins for what only exists on AWS.

Everything that differs from the pod is an explicit `Substitutions` entry, and a run refuses to
start while any AWS endpoint is left in what the container would read: a value the engine only
knows after `up` (a new database's endpoint) is never silently kept or guessed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from components.workload import TENANTS_DIR
from meridian.preflight.workload import RenderedContainer, Unknown
from service.settings import MigrationSettings, ServiceSettings, dump_tenant_file, load_tenant_file

SETTINGS_FLAG = "--config"

AWS_HOST = re.compile(r"[A-Za-z0-9.-]+\.amazonaws\.com")


class Unsubstituted(Exception):
    """The container would read a value that only AWS can answer and no substitution covers."""


@dataclass(frozen=True)
class Substitutions:
    hosts: dict[str, str] = field(default_factory=dict)
    """`aws-host:port` (as the DSNs name it) -> `127.0.0.1:port` of the local stand-in: what
    `sandbox_address_for` answers, the only change made to a DSN."""
    interpreter: str = sys.executable
    """What the image's `python` is here: this checkout's venv (the image bakes the same package)."""
    port: int | None = None
    """A pod has its own network namespace; here the service binds this free port instead."""
    bind_host: str | None = None
    """...and this address instead of the pod's 0.0.0.0 (the sandbox serves 127.0.0.1 only)."""
    objects_endpoint: str | None = None
    """The local S3/STS/Secrets Manager stand-in the settings' object storage and database secret are
    pointed at (AWS's regional endpoints otherwise)."""
    db_secrets: dict[str, str] = field(default_factory=dict)
    """region -> the stand-in's copy of the database user's secret, in place of the plan's ARN."""
    tenant_data: dict[str, dict[str, str]] = field(default_factory=dict)
    """tenant id -> the stand-in's `kms_key_arn` / `role_arn` for it, in place of the plan's (objectstore.spec_from_settings)."""
    credentials: dict[str, str] = field(default_factory=dict)
    """Env that stands in for the pod's EKS Pod Identity credentials (e.g. the stand-in broker's key)."""
    tenant_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """cell -> tenant ids served from its tenant file (`<tenants dir>/<cell>.json`, as a cell's mounted
    Secret) instead of inline: the service's tenant files exercised with the plan's own entries."""
    cell_files: dict[str, str] = field(default_factory=dict)
    """cell -> its tenant file as the cell's plan renders it for this region (the Secret the pod
    mounts at `<tenants dir>/<cell>.json`): written there byte for byte, unless `tenant_data` stands
    in for its tenants' keys and roles as for the inline ones."""


@dataclass
class LocalPod:
    argv: list[str]
    env: dict[str, str]
    root: Path  # files the mounts would show, under root/<mountPath>
    port: int | None
    substituted: list[str]  # a line per substitution made, for the test's record


def _remap(value: str, mounts: dict[str, str]) -> str:
    for inside, outside in mounts.items():
        if value == inside or value.startswith(inside.rstrip("/") + "/"):
            return outside + value[len(inside) :]
    return value


# the key under which a stand-in answers for writes forwarded by an endpoint that also serves reads
FORWARDED_WRITES = "forwarded-writes:"


def sandbox_address_for(endpoint: str, addresses: Mapping[str, str]) -> str:
    """The sandbox's one difference from AWS in a connection string: the local process that stands in
    for an AWS endpoint (`host:port` as a DSN names it) is reached at its loopback address instead.
    An endpoint with no stand-in is refused, never passed through or guessed."""
    if endpoint not in addresses:
        raise Unsubstituted(
            f"no local stand-in for the endpoint {endpoint} (stand-ins: {', '.join(sorted(addresses)) or 'none'})"
        )
    return addresses[endpoint]


def _substitute_dsn(attr: str, dsn: str, subs: Substitutions, done: list[str]) -> str:
    """`dsn` with each endpoint its netloc names put through `sandbox_address_for`; user, database,
    query (sslmode, target_session_attrs) stay as rendered."""
    parts = urlsplit(dsn)
    auth, at, endpoints = parts.netloc.rpartition("@")

    def stand_in(endpoint: str) -> str:
        # a write through an endpoint that also serves reads (an Aurora secondary's reader endpoint,
        # forwarding writes) has its own stand-in (fromplan.local_addresses)
        forwarded = FORWARDED_WRITES + endpoint
        if attr == "write_dsn" and forwarded in subs.hosts:
            return sandbox_address_for(forwarded, subs.hosts)
        return sandbox_address_for(endpoint, subs.hosts)

    local = ",".join(stand_in(e) for e in endpoints.split(","))
    if local != endpoints:
        done.append(f"{attr}: {endpoints} -> {local}")
    return urlunsplit(parts._replace(netloc=f"{auth}{at}{local}"))


def _substitute_settings(text: str, subs: Substitutions, done: list[str], mounts: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The settings file the container's `--config` names, through the model that reads it (the
    service's or the migration's): what its reader cannot load fails here. Also returns the tenant
    files to write (local path -> content)."""
    doc = json.loads(text)
    if "admin_dsn" in doc:
        migration = MigrationSettings.from_dict(doc)
        admin = _substitute_dsn("admin_dsn", migration.admin_dsn, subs, done)
        secret = _substitute_secret("app_secret", migration.app_secret, subs, done)
        return json.dumps(dataclasses.replace(migration, admin_dsn=admin, app_secret=secret).to_dict(), indent=1), {}
    settings = ServiceSettings.from_dict(doc)
    changes: dict = {attr: _substitute_dsn(attr, getattr(settings, attr), subs, done) for attr in ("write_dsn", "read_dsn")}
    if settings.objects is not None and subs.objects_endpoint is not None:
        changes["objects"] = dataclasses.replace(settings.objects, endpoint_url=subs.objects_endpoint)
        done.append(f"objects.endpoint_url: AWS's regional endpoints -> {subs.objects_endpoint}")
    if settings.db_secret is not None:
        changes["db_secret"] = _substitute_secret("db_secret", settings.db_secret, subs, done)
    if subs.tenant_data:
        changes["tenants"] = tuple(_substitute_tenant(t, subs.tenant_data, done) for t in settings.tenants)
    files = _split_tenants(settings, changes, subs, done, mounts)
    if subs.port is not None:
        changes["port"] = subs.port
        done.append(f"port: {settings.port} -> {subs.port} (the pod's own network namespace)")
    if subs.bind_host is not None:
        changes["host"] = subs.bind_host
        done.append(f"host: {settings.host} -> {subs.bind_host}")
    return json.dumps(dataclasses.replace(settings, **changes).to_dict(), indent=1), files


def _split_tenants(
    settings: ServiceSettings, changes: dict, subs: Substitutions, done: list[str], mounts: dict[str, str]
) -> dict:
    """The tenants directory where the pod would have it (the cells' mount, or where it would be),
    with the zone's cells' tenant files in it (`subs.cell_files`), and `subs.tenant_files`' tenants
    moved out of the inline settings into files of their own there."""
    if settings.tenant_files_dir is None and not subs.tenant_files and not subs.cell_files:
        return {}
    inside = settings.tenant_files_dir or TENANTS_DIR  # no cells in the plan: where their mount would be
    local = _remap(inside, mounts)
    if local == inside:
        raise Unsubstituted(f"the tenants directory {inside} is under none of the container's mounts")
    changes["tenant_files_dir"] = local
    done.append(f"tenant_files_dir: {inside} -> {local}")
    clash = sorted(set(subs.tenant_files) & set(subs.cell_files))
    if clash:
        raise Unsubstituted(f"tenant_files names {', '.join(clash)}, a cell of the zone with a tenant file of its own")
    files = {}
    for cell, rendered in sorted(subs.cell_files.items()):
        try:
            entries = load_tenant_file(rendered)
        except ValueError as exc:
            raise Unsubstituted(f"the tenant file cell {cell}'s plan renders does not load: {exc}") from None
        local_entries = [_substitute_tenant(t, subs.tenant_data, done) for t in entries]
        files[f"{local}/{cell}.json"] = rendered if local_entries == list(entries) else dump_tenant_file(local_entries)
        done.append(f"cell_files[{cell}]: its plan's tenant file ({len(entries)} tenants) -> {local}/{cell}.json")
    tenants = changes.get("tenants", settings.tenants)
    served = {t.id for t in tenants}
    moved = {tid: cell for cell, ids in subs.tenant_files.items() for tid in ids}
    unknown = sorted(set(moved) - served)
    if unknown:
        raise Unsubstituted(f"tenant_files names tenants the settings do not serve: {', '.join(unknown)}")
    changes["tenants"] = tuple(t for t in tenants if t.id not in moved)
    for cell, ids in sorted(subs.tenant_files.items()):
        files[f"{local}/{cell}.json"] = dump_tenant_file([t for t in tenants if t.id in ids])
        done.append(f"tenants {', '.join(ids)}: inline -> the tenant file {cell}.json")
    Path(local).mkdir(parents=True, exist_ok=True)
    return files


def _substitute_secret(attr: str, secret, subs: Substitutions, done: list[str]):
    """The plan's secret ARN and AWS's endpoint -> the stand-in's copy for that region; a secret the
    stand-in does not hold stays as it is (and the service, asking AWS, fails visibly)."""
    local = subs.db_secrets.get(secret.region)
    if local is None or subs.objects_endpoint is None:
        return secret
    done.append(f"{attr}: {secret.arn} -> the stand-in's {local}")
    return dataclasses.replace(secret, arn=local, endpoint_url=subs.objects_endpoint)


def _substitute_tenant(tenant, stand_in: dict[str, dict[str, str]], done: list[str]):
    if tenant.data is None or tenant.id not in stand_in:
        return tenant
    local = {k: stand_in[tenant.id][k] for k in ("kms_key_arn", "role_arn")}
    done.append(f"tenants[{tenant.id}].data: kms_key_arn, role_arn -> the stand-in's")
    return dataclasses.replace(tenant, data=dataclasses.replace(tenant.data, **local))


def settings_path_of(container: RenderedContainer) -> str | None:
    """The file the container's `--config` argument names (what the service or migration reads)."""
    args = [str(a) for a in container.spec.get("args") or []]
    return args[args.index(SETTINGS_FLAG) + 1] if SETTINGS_FLAG in args[:-1] else None


def prepare(container: RenderedContainer, root: Path, subs: Substitutions, *, settings_path: str | None = None) -> LocalPod:
    """Write the container's mounted files under `root` and build its argv and env, substituted.
    `settings_path`: the settings file to substitute in (default: what `--config` names)."""
    done: list[str] = []
    settings_path = settings_path or settings_path_of(container)
    mounts = {m["mountPath"]: str(root) + m["mountPath"] for m in container.spec.get("volumeMounts") or []}
    for f in container.files.values():
        if f.content is None or isinstance(f.content, Unknown):
            raise Unsubstituted(
                f"{container.owner_urn}: mounted file {f.path} has no content in the plan ({f.secret_urn or 'no such Secret'})"
            )
        text, tenant_files = _substitute_settings(f.content, subs, done, mounts) if f.path == settings_path else (f.content, {})
        left = sorted(set(AWS_HOST.findall(text)))
        if left:
            raise Unsubstituted(f"{container.owner_urn}: {f.path} still names AWS endpoints {left}: substitute each explicitly")
        local = Path(_remap(f.path, mounts))
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text)
        os.chmod(local, f.mode)
        for path, content in tenant_files.items():
            Path(path).write_text(content)
            os.chmod(path, f.mode)
    command = list(container.spec.get("command") or [])
    # container paths are remapped onto the mounts; the local interpreter is a host path (it may
    # itself lie under a directory the pod mounts, e.g. a checkout in /tmp), so it goes in after
    argv = [_remap(str(a), mounts) for a in [*command, *(container.spec.get("args") or [])]]
    if command[:1] == ["python"]:
        argv[0] = subs.interpreter
        done.append(f"command[0]: python -> {subs.interpreter}")
    env = {}
    for var in container.spec.get("env") or []:
        if "value" not in var:
            raise Unsubstituted(f"{container.owner_urn}: env {var.get('name')} comes from {list(var)}: not supported locally")
        env[var["name"]] = _remap(str(var["value"]), mounts)
    if subs.credentials:
        env.update(subs.credentials)
        done.append(f"credentials: EKS Pod Identity -> env {sorted(subs.credentials)}")
    return LocalPod(argv, env, root, subs.port, done)


def local_path(pod: LocalPod, container_path: str | None) -> str | None:
    """Where a file the container reads (at `container_path`) was written for the local run."""
    return str(pod.root) + container_path if container_path else None


def start(pod: LocalPod, log: Path, *, cwd: Path) -> subprocess.Popen:
    """Start the pod's process with only its own env (plus PATH and the checkout on PYTHONPATH)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(cwd), "PYTHONDONTWRITEBYTECODE": "1", **pod.env}
    with open(log, "ab") as out:
        return subprocess.Popen(
            pod.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
