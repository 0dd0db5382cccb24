"""The sandbox runs what the plan renders: each region's service from its Deployment's container
(command, args, env, the mounted settings Secret, port) and the schema migration from the primary
region's Job, exactly as `meridian preview` records them, so a wiring mismatch between the program
and the service fails locally, offline.

The one substitution (`local_substitutions`, nothing else changes what a container reads): each
database endpoint the settings name (AWS hostnames known only after `up`) becomes the address of
the local process standing in for it (`local_addresses`, applied by `podrun.sandbox_address_for`:
only host and port change; user, database, sslmode, target_session_attrs stay as rendered); the
database user's secret becomes the stand-in's copy (meridian.sandbox.objectstore), read with the
stand-in broker's key as the pod's identity; the pod's bind address and port become a free loopback
port; the image's `python` is this checkout's.

A zone is what the sandbox runs: a platform whose config lists cells serves their tenants too, from
each cell's tenant file (its Secret `meridian-tenants-<cell>`, mounted into the platform's pods). So
the plan of a platform with cells comes with each cell's rendering of that file per region, from a
run of the cell's own program whose StackReference reads the platform run's outputs
(`PlannedCell`): the same bytes `meridian preview --stack <cell>` renders, never a rewrite.

The plan comes from running the program offline in a subprocess per stack (the SDK's runtime state
is global; the cells in parallel, after their platform), cached per zone and program hash under
`.meridian/cache/` (it holds the mock run's secrets: 0600).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from components.workload import CANARY_SUFFIX, TENANT_FILE_KEY, tenant_file_secret_name
from meridian.preflight.workload import DEPLOYMENT, JOB, SECRET, MountedFile, RenderedContainer
from meridian.sandbox.objectstore import broker_env
from meridian.sandbox.podrun import FORWARDED_WRITES, Substitutions, settings_path_of
from service.settings import MigrationSettings, ServiceSettings, TenantEntry, load_tenant_file
from stackconfig.zone import stack_config

CACHE_VERSION = 2  # 2: a platform's plan carries its cells' tenant files
# What the plan of a stack depends on: the program, the service it renders settings for, the config.
PROGRAM_GLOBS = ("__main__.py", "Pulumi.yaml", "components/**/*.py", "stackconfig/**/*.py", "service/**/*.py", "service/*.sql")


class PlanUnavailable(Exception):
    """The program could not be run offline for the sandbox (its error says why)."""


@dataclass(frozen=True)
class PlannedCell:
    """A cell stack of the zone, as its own plan renders what the platform's service reads of it."""

    tenant_files: dict[str, str]  # role -> its tenant file in that region (the Secret's `tenants.json`), as rendered
    api_keys: dict[str, str]  # tenant id -> the key the cell's plan hands it

    def entries(self, role: str) -> tuple[TenantEntry, ...]:
        return load_tenant_file(self.tenant_files[role])


@dataclass(frozen=True)
class PlannedWorkload:
    services: dict[str, RenderedContainer]  # role (primary / dr) -> the Deployment's service container
    migration: RenderedContainer  # the primary region's migration Job container
    master_user: str  # what the migration logs in as (the database resource's master user)
    api_keys: dict[str, str]  # tenant id -> the key the plan hands it (its digest is in the settings)
    cells: dict[str, PlannedCell] = field(default_factory=dict)  # the cells the platform serves, by stack name

    def service_settings(self, role: str) -> ServiceSettings:
        return ServiceSettings.from_dict(json.loads(_settings_file(self.services[role]).content))

    def zone_settings(self, role: str) -> ServiceSettings:
        """`role`'s settings with every cell's tenants beside the inline ones: what the service in
        that region serves once it has read its tenant files (what the object stand-in must hold)."""
        settings = self.service_settings(role)
        cells = tuple(t for cell in sorted(self.cells) for t in self.cells[cell].entries(role))
        return dataclasses.replace(settings, tenants=settings.tenants + cells)

    def tenant_stacks(self, platform: str) -> dict[str, str]:
        """Each tenant of the zone -> the stack holding it, the platform's inline ones first."""
        out = {t.id: platform for t in self.service_settings("primary").tenants}
        for cell in sorted(self.cells):
            out.update({t.id: cell for t in self.cells[cell].entries("primary")})
        return out

    def zone_api_keys(self) -> dict[str, str]:
        return {**self.api_keys, **{tid: key for cell in self.cells.values() for tid, key in cell.api_keys.items()}}

    def migration_settings(self) -> MigrationSettings:
        return MigrationSettings.from_dict(json.loads(_settings_file(self.migration).content))


def _settings_file(container: RenderedContainer) -> MountedFile:
    path = settings_path_of(container)
    mounted = container.file(path) if path else None
    if mounted is None or not isinstance(mounted.content, str):
        raise PlanUnavailable(f"{container.owner_urn}: no settings file mounted at {path!r} in the plan")
    return mounted


def _netloc(dsn: str) -> str:
    return urlsplit(dsn).netloc.rpartition("@")[2]


def local_addresses(planned: PlannedWorkload, *, nodes: dict[str, int], writer_endpoint: int) -> dict[str, str]:
    """Each database endpoint the rendered settings name -> the local process standing in for it
    (`podrun.sandbox_address_for` answers from this): a region's own node (its reader endpoint, and
    its writer where it writes to its own node: RDS's `direct` primary, a `passive` dr replica) is
    that region's PostgreSQL; an Aurora cluster endpoint (`forwarded`: the global writer, or a
    secondary forwarding to it) is the writer endpoint stand-in (meridian.sandbox.writerendpoint).
    `nodes`: role -> the port its service reaches its node at (the node or its fault proxy)."""
    addresses: dict[str, str] = {}

    def add(endpoint: str, local: str) -> None:
        if addresses.setdefault(endpoint, local) != local:
            raise PlanUnavailable(f"the endpoint {endpoint} is two different things in the plan's settings")

    for role, port in nodes.items():
        settings = planned.service_settings(role)
        read = _netloc(settings.read_dsn)
        add(read, f"127.0.0.1:{port}")
        local = f"127.0.0.1:{writer_endpoint if settings.writes == 'forwarded' else port}"
        for write in _netloc(settings.write_dsn).split(","):  # a multi-host DSN: each endpoint its stand-in
            if write == read and settings.writes == "forwarded":
                # an Aurora cluster's reader endpoint: it reads locally and forwards writes to the
                # global writer; a local replica cannot forward, so writes meet the writer's stand-in
                add(FORWARDED_WRITES + write, local)
            else:
                add(write, local)
    # the migration writes where the primary region's service does (its first write endpoint)
    primary_write = _netloc(planned.service_settings("primary").write_dsn).split(",")[0]
    add(
        _netloc(planned.migration_settings().admin_dsn), addresses.get(FORWARDED_WRITES + primary_write, addresses[primary_write])
    )
    return addresses


def local_substitutions(
    planned: PlannedWorkload,
    role: str,
    *,
    addresses: dict[str, str],
    service_port: int | None,
    objects: dict | None = None,
    tenant_files: dict[str, tuple[str, ...]] | None = None,
) -> Substitutions:
    """The one place the plan's in-cluster endpoints meet the sandbox's processes (module docstring).
    `tenant_files`: cell -> the tenants served from its tenant file instead of inline (podrun.Substitutions).
    The zone's cells' tenant files, as their plans render them for `role`'s region, go where the pod
    mounts them (`cell_files`)."""
    return Substitutions(
        tenant_files=dict(tenant_files or {}),
        cell_files={cell: planned.cells[cell].tenant_files[role] for cell in sorted(planned.cells)},
        hosts=addresses,
        port=service_port,
        bind_host="127.0.0.1" if service_port is not None else None,
        # the object stand-in (objectstore.set_up's result): its endpoint for AWS's, its broker's key for Pod Identity's
        objects_endpoint=objects["endpoint"] if objects else None,
        tenant_data=objects["regions"][planned.service_settings(role).objects.region]["tenants"] if objects else {},
        db_secrets=objects.get("db_secrets", {}) if objects else {},
        credentials=broker_env(objects) if objects else {},
    )


def zone_cells(project_dir: Path, stack: str) -> list[str]:
    """The cells a platform stack lists (`meridian:cells.names`), as its file says: what its sandbox serves."""
    cells = (stack_config(project_dir, stack) or {}).get("meridian:cells") or {}
    names = cells.get("names") if isinstance(cells, dict) else None
    return sorted(str(n) for n in names) if isinstance(names, list) else []


def program_hash(project_dir: Path, stack: str) -> str:
    """What the zone of `stack` renders from: the program and the stack files of the platform and its cells."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}\0{stack}\0".encode())
    stack_files = {project_dir / f"Pulumi.{s}.yaml" for s in [stack, *zone_cells(project_dir, stack)]}
    files = {p for pattern in PROGRAM_GLOBS for p in project_dir.glob(pattern)} | stack_files
    for path in sorted(files):
        if path.is_file():
            digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def load(project_dir: Path, stack: str, *, timeout: float = 600) -> PlannedWorkload:
    """The zone's planned workload (a platform stack's, with its cells'), from the cache or fresh
    offline runs of the program: the platform first, then its cells in parallel reading its outputs."""
    project_dir = project_dir.resolve()
    cache = project_dir / ".meridian" / "cache"
    path = cache / f"sandbox-plan-{stack}-{program_hash(project_dir, stack)}.json"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            _render_in_subprocess(project_dir, [stack, str(tmp)], stack, timeout)
            doc = json.loads(tmp.read_text())
            outputs = doc.pop("platform_outputs", None)
            if doc["cells"]:
                tmp.write_text(json.dumps(outputs))  # what the cells' StackReferences read (0600: secrets)
            doc["cells"] = _render_cells(project_dir, doc["cells"], tmp, timeout) if doc["cells"] else {}
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, path)  # atomic: concurrent `up`s of one stack share the result
        finally:
            tmp.unlink(missing_ok=True)
    return _decode(json.loads(path.read_text()))


def _render_cells(project_dir: Path, cells: list[str], outputs: Path, timeout: float) -> dict[str, dict]:
    def one(cell: str) -> dict:
        out = outputs.with_name(f"{outputs.name}.{cell}")
        try:
            _render_in_subprocess(project_dir, [cell, str(out), "--platform-outputs", str(outputs)], cell, timeout)
            return json.loads(out.read_text())
        finally:
            out.unlink(missing_ok=True)

    with ThreadPoolExecutor(max_workers=max(1, min(len(cells), os.cpu_count() or 1))) as pool:
        return dict(zip(cells, pool.map(one, cells), strict=True))


def _render_in_subprocess(project_dir: Path, args: list[str], stack: str, timeout: float) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "meridian.sandbox.fromplan", str(project_dir), *args],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(project_dir), os.environ.get("PYTHONPATH")]))},
    )
    if proc.returncode != 0:
        raise PlanUnavailable(f"the offline plan of stack {stack!r} failed:\n{proc.stderr.strip()[-3000:]}")


def _decode(doc: dict) -> PlannedWorkload:
    def container(d: dict) -> RenderedContainer:
        files = {p: MountedFile(**f) for p, f in d.pop("files").items()}
        return RenderedContainer(**d, files=files)

    return PlannedWorkload(
        services={role: container(c) for role, c in doc["services"].items()},
        migration=container(doc["migration"]),
        master_user=doc["master_user"],
        api_keys=doc["api_keys"],
        cells={cell: PlannedCell(**c) for cell, c in doc["cells"].items()},
    )


def render(project_dir: Path, stack: str, out: Path) -> None:
    """Run the program offline and write what the sandbox needs of its plan to `out` (0600)."""
    from google.protobuf import json_format

    from meridian.engine.plan import Plan
    from meridian.engine.run import run_program
    from meridian.preflight.workload import Unknown, rendered_containers, reveal
    from stackconfig import load_stack

    cfg = load_stack(project_dir, stack)
    run = run_program(project_dir, stack, reveal=["tenant_api_keys"])
    plan = Plan("meridian", stack, run.registrations, run.outputs)
    role_of = {spec.region: role for role, spec in cfg.regions.both}
    services: dict[str, dict] = {}
    migrations = []
    for c in rendered_containers(run.registrations, plan.region_of):
        for f in c.files.values():
            if isinstance(f.content, Unknown) or f.content is None:
                raise SystemExit(f"{c.owner_urn}: {f.path} has no known content in the plan")
        encoded = dataclasses.asdict(c)
        if c.owner_type == DEPLOYMENT and c.name == "api" and not c.owner_urn.endswith(CANARY_SUFFIX):
            services[role_of[c.region]] = encoded
        elif c.owner_type == JOB:
            migrations.append(encoded)
    if set(services) != {"primary", "dr"} or len(migrations) != 1:
        raise SystemExit(
            f"expected one service Deployment per region and one migration Job, got {sorted(services)}, {len(migrations)}"
        )
    masters = {
        reveal(json_format.MessageToDict(r.inputs)).get("masterUsername")
        or reveal(json_format.MessageToDict(r.inputs)).get("username")
        for r in run.registrations
        if r.type in ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance")
    } - {None}
    if len(masters) != 1:
        raise SystemExit(f"expected one master user across the database resources, got {sorted(masters)}")
    keys = run.revealed["tenant_api_keys"]
    doc = {"services": services, "migration": migrations[0], "master_user": masters.pop(), "api_keys": keys}
    doc["cells"] = list(cfg.cells.names)
    if cfg.cells.names:  # what the cells' StackReferences read, as the platform's state would hold it
        doc["platform_outputs"] = run.wire_outputs
    out.touch(mode=0o600)
    out.write_text(json.dumps(doc))


def render_cell(project_dir: Path, cell: str, platform_outputs: Path, out: Path) -> None:
    """Run a cell's program offline, its StackReference answered with `platform_outputs`, and write
    what its platform's service reads of it to `out` (0600): its tenant file per region, exactly as
    its Secret renders it, and its tenants' keys."""
    from google.protobuf import json_format

    from meridian.engine.plan import Plan
    from meridian.engine.run import run_program
    from meridian.preflight.workload import reveal
    from stackconfig import load_stack

    cfg = load_stack(project_dir, cell)
    outputs = {cfg.platform: json.loads(platform_outputs.read_text())}
    run = run_program(project_dir, cell, stack_outputs=outputs, reveal=["tenant_api_keys"])
    plan = Plan("meridian", cell, run.registrations, run.outputs)
    role_of = {spec.region: role for role, spec in cfg.regions.both}
    files: dict[str, str] = {}
    for r in run.registrations:
        if r.type != SECRET:
            continue
        secret = reveal(json_format.MessageToDict(r.inputs))
        if (secret.get("metadata") or {}).get("name") != tenant_file_secret_name(cell):
            continue
        content = (secret.get("stringData") or {}).get(TENANT_FILE_KEY)
        if not isinstance(content, str):
            raise SystemExit(f"{r.urn}: no known {TENANT_FILE_KEY} in the plan")
        files[role_of[plan.region_of(r)]] = content
    if set(files) != {"primary", "dr"}:
        raise SystemExit(f"expected the cell's tenant file Secret in each of its regions, got {sorted(files)}")
    keys = run.revealed["tenant_api_keys"]
    out.touch(mode=0o600)
    out.write_text(json.dumps({"tenant_files": files, "api_keys": keys}))


if __name__ == "__main__":
    if sys.argv[4:5] == ["--platform-outputs"]:
        render_cell(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[5]), Path(sys.argv[3]))
    else:
        render(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
