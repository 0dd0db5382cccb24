"""`up`, `down`, `status` of a stack's sandbox, and the operations drills build on (stop a part,
promote the dr replica). Plain functions over a state directory; the CLI is in
`meridian.commands.sandbox`.

Order of `up`: the stack's plan (offline, cached: meridian.sandbox.fromplan) -> primary PostgreSQL
(initdb once, data kept between runs; TLS on) -> roles, database, schema -> the plan's migration Job
(it creates the service's own database user) -> dr replica (a fresh pg_basebackup every `up`:
replica data is derived) -> [fault proxies in front of the databases] -> the S3/KMS/STS stand-in (a
moto server with the buckets, tenant keys and tenant roles the plan's settings name, IAM enforced:
meridian.sandbox.objectstore) -> the service per region, started from the plan's Deployment
container -> [fault proxies in front of the services] -> HAProxy.
`down` stops them in reverse, each by its recorded pid and process group, and checks the ports are free.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from meridian import ports as portlib
from meridian.sandbox import fromplan, objectstore, podrun, procs, writerendpoint
from meridian.sandbox import manifest as mf
from meridian.sandbox import postgres as pglib
from meridian.sandbox.haproxy import Backend, RegionDoor, ScaledFailover, parse_show_stat, render
from stackconfig import StackConfig

HOST = portlib.HOST
READY_TIMEOUT_S = 30.0
SERVICE_PROJECT_DIR = Path(__file__).resolve().parent.parent.parent  # where the `service` package lives

# stop order: the front door first, the data last
STOP_ORDER = (
    "haproxy",
    "fp-svc-primary",
    "fp-svc-dr",
    "svc-primary",
    "svc-dr",
    "objects",
    "fp-db-primary",
    "fp-db-dr",
    "pg-writer",
    "pg-dr",
    "pg-primary",
)
# postgres: SIGINT is its "fast" shutdown (SIGTERM would wait for every client to leave)
STOP_SIGNAL = {"pg-primary": signal.SIGINT, "pg-dr": signal.SIGINT}


class SandboxError(Exception):
    """A part failed to start or to answer; the message says which and shows its log tail."""


class SandboxMissing(Exception):
    """Something the sandbox needs is not installed, or a bad option (maps to exit 2)."""


@dataclass(frozen=True)
class UpResult:
    manifest: mf.Manifest
    seconds: float
    already_up: bool = False
    cleaned: list[str] = field(default_factory=list)
    replanned: str = ""  # "old -> new" program hashes when a running sandbox was restarted for a new plan


@dataclass(frozen=True)
class PreviewedPlan:
    """What `meridian up` previewed: the program hash it rendered from (`fromplan.program_hash`) and
    the sha256 of its plan.json (`evidence.manifest.sha256_of`, as evidence and provenance hash it)."""

    program: str
    sha256: str


def plan_record(program: str, previewed: PreviewedPlan | None) -> mf.PlanRecord:
    """The manifest's `plan`: the program hash the services were rendered from, and the previewed
    plan's sha256 when that preview rendered the same program (else None: no preview vouches for it)."""
    return mf.PlanRecord(program, previewed.sha256 if previewed and previewed.program == program else None)


def reuse_running(old: mf.Manifest, program: str) -> bool:
    """A running sandbox serves this program's plan only if it was started from it: otherwise it
    runs the old settings, quotas and versions, and gating it would gate the old deployment."""
    return old.plan is not None and old.plan.program == program


def root_of(project_dir: Path, stack: str, state_dir: Path | None = None) -> Path:
    return (state_dir or project_dir / ".meridian" / "sandbox").resolve() / stack


def find_haproxy() -> str:
    """$MERIDIAN_HAPROXY if set (and only it), else `haproxy` on PATH or in /usr/sbin."""
    forced = os.environ.get("MERIDIAN_HAPROXY")
    for cand in [forced] if forced else [shutil.which("haproxy"), "/usr/sbin/haproxy"]:
        if cand and os.access(cand, os.X_OK):
            return cand
    raise SandboxMissing("haproxy not found: install the Debian package (`apt-get install -y haproxy`) or set MERIDIAN_HAPROXY")


def check_parts() -> tuple[pglib.PgBin, str]:
    """The binaries the sandbox needs, or SandboxMissing naming what is missing."""
    try:
        pg = pglib.find_pg()
        pglib.run_as()
    except pglib.PostgresMissing as exc:
        raise SandboxMissing(str(exc)) from None
    return pg, find_haproxy()


def scaled_failover(cfg: StackConfig, time_scale: float) -> ScaledFailover:
    fo = cfg.failover
    try:
        return ScaledFailover(fo.health_check_interval_s, fo.failure_threshold, fo.dns_ttl_s, fo.rto_target_s, time_scale)
    except ValueError as exc:
        raise SandboxMissing(str(exc)) from None


# --- up ------------------------------------------------------------------------------------------


def up(
    cfg: StackConfig,
    stack: str,
    root: Path,
    *,
    time_scale: float,
    fault_proxies: bool = False,
    fresh: bool = False,
    project_dir: Path | None = None,
    previewed: PreviewedPlan | None = None,
    on_step: Callable[[str], None] | None = None,
    tenant_files: dict[str, tuple[str, ...]] | None = None,
) -> UpResult:
    """`project_dir`: the checkout whose program renders the services (default: this one).
    `on_step`: told what `up` is doing as it goes (rendering the plan, each part started).
    `previewed`: the plan `meridian up` previewed, recorded in the manifest (`plan_record`). A
    running sandbox started from another program (settings, quotas, versions changed) is stopped
    and started again from the new plan (every part; the primary's data is kept, the replica
    rebuilt, as after any restart). `tenant_files`: cell -> tenant ids each region's service serves
    from that cell's tenant file (`<tenants dir>/<cell>.json`) instead of its settings, as a platform
    serves its cells' tenants (service.tenants): it changes where the services read tenants from, never
    which, and asking for it always starts the sandbox afresh."""
    failover = scaled_failover(cfg, time_scale)
    pg, haproxy_bin = check_parts()
    user = pglib.run_as()
    t0 = time.monotonic()
    program = fromplan.program_hash(project_dir or SERVICE_PROJECT_DIR, stack)
    old = mf.read(root)
    cleaned: list[str] = []
    replanned = ""
    running = isinstance(old, mf.Manifest) and old.state == "up" and bool(old.processes)
    running = running and all(procs.alive(p) for p in old.processes.values())
    if running and reuse_running(old, program) and not tenant_files:
        if previewed is not None and old.plan != plan_record(program, previewed):
            old.plan = plan_record(program, previewed)  # the same program: the preview vouches for it
            mf.write(root, old)
        return UpResult(old, time.monotonic() - t0, already_up=True)
    if not fresh:  # before anything is stopped: a refused `up` leaves the sandbox as it found it
        _refuse_to_discard_a_promoted_dr(root, stack)
    if running:
        replanned = f"{old.plan.program if old.plan else 'unrecorded'} -> {program}"
    if old is not None:
        # a new plan, a crash, a failed up, or a half-stopped sandbox: stop what is left of it, by pid
        cleaned = _stop_all(old)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    try:
        pglib.check_traversable(root, user)
    except PermissionError as exc:
        raise SandboxMissing(str(exc)) from None
    step = on_step or (lambda _what: None)
    step(f"rendering the {stack} plan offline (what the sandbox runs)")
    try:
        planned = fromplan.load(project_dir or SERVICE_PROJECT_DIR, stack)
    except fromplan.PlanUnavailable as exc:
        raise SandboxError(str(exc)) from None
    tenant_files = {cell: tuple(ids) for cell, ids in (tenant_files or {}).items()}
    unknown = sorted(
        {t for ids in tenant_files.values() for t in ids} - {t.id for t in planned.service_settings("primary").tenants}
    )
    if unknown:
        raise SandboxMissing(f"tenant files name tenants stack {stack} does not have: {', '.join(unknown)}")
    taken = sorted(set(tenant_files) & set(planned.cells))
    if taken:
        raise SandboxMissing(f"tenant files named {', '.join(taken)}: a cell of zone {stack} has that file; name another")
    pg_root = root / "pg"
    if fresh and pg_root.exists():
        shutil.rmtree(pg_root)
    shutil.rmtree(pg_root / "dr", ignore_errors=True)  # the replica is rebuilt from the primary every time
    for sub in ("logs", "etc", "run"):
        (root / sub).mkdir(exist_ok=True)
    pg_root.mkdir(exist_ok=True)
    pglib.chown_tree(pg_root, user)

    names = ["pg-primary", "pg-dr", "pg-writer", "objects", "svc-primary", "svc-dr", "haproxy", "door-primary", "door-dr"]
    if fault_proxies:
        for fp in ("fp-db-primary", "fp-db-dr", "fp-svc-primary", "fp-svc-dr"):
            names += [fp, f"{fp}-control"]
    old_ports = set(old.ports.values()) if isinstance(old, mf.Manifest) else set()
    port = portlib.allocate(names, avoid=old_ports)

    doc = _skeleton(cfg, stack, root, port, failover, fault_proxies, planned)
    doc.plan = plan_record(program, previewed)
    mf.write(root, doc)
    popen: dict[str, object] = {}

    def started(ref: procs.ProcRef, proc) -> None:
        doc.processes[ref.name] = ref
        popen[ref.name] = proc
        mf.write(root, doc)
        step(f"{ref.name} started ({len(doc.processes)} of {len(names)} parts, {time.monotonic() - t0:.0f} s)")

    try:
        asyncio.run(
            _bring_up(planned, root, doc, port, pg, haproxy_bin, user, failover, fault_proxies, started, popen, tenant_files)
        )
    except BaseException as exc:
        _stop_all(doc)
        doc.state = "failed"
        doc.error = str(exc)
        doc.processes = {}
        mf.write(root, doc)
        if isinstance(exc, (SandboxError, SandboxMissing, KeyboardInterrupt)):
            raise
        raise SandboxError(f"sandbox up failed: {type(exc).__name__}: {exc}") from exc
    doc.state = "up"
    doc.up_seconds = round(time.monotonic() - t0, 3)
    mf.write(root, doc)
    return UpResult(doc, time.monotonic() - t0, cleaned=cleaned, replanned=replanned)


def _refuse_to_discard_a_promoted_dr(root: Path, stack: str) -> None:
    """`up` rebuilds dr from the primary; after a failover that did not fail back, dr's database is
    the one that took the writes since the fault, and rebuilding it would discard them silently.
    The data directory says so itself, whatever the manifest says (or if it is unreadable): a
    replica carries `standby.signal`, a promoted one no longer does."""
    data_dir = root / "pg" / "dr"
    if (data_dir / "PG_VERSION").exists() and not (data_dir / "standby.signal").exists():
        raise SandboxMissing(
            f"the sandbox of stack {stack} stopped failed over: its dr database ({data_dir}) was promoted and holds "
            f"the writes acknowledged since the failover, which `sandbox up` would discard by rebuilding dr from the "
            f"primary. Keep them: copy what you need from that database (it runs while the sandbox does; after a crash "
            f"start it by hand with `postgres -D {data_dir}`), then `meridian sandbox down --stack {stack}` and "
            f"`meridian sandbox up --stack {stack} --fresh` to start over knowingly"
        )


def _skeleton(
    cfg: StackConfig,
    stack: str,
    root: Path,
    port: dict[str, int],
    failover: ScaledFailover,
    fault_proxies: bool,
    planned: fromplan.PlannedWorkload,
) -> mf.Manifest:
    regions = {}
    for role, spec in cfg.regions.both:
        db_port = port[f"fp-db-{role}"] if fault_proxies else port[f"pg-{role}"]
        regions[role] = mf.Region(
            region=spec.region,
            service_url=f"http://{HOST}:{port[f'svc-{role}']}",
            door_url=f"http://{HOST}:{port[f'door-{role}']}",
            db_port=port[f"pg-{role}"],
            db_dsn=pglib.dsn(port[f"pg-{role}"]),
            db_role="primary" if role == "primary" else "replica",
            service_db_dsn=pglib.dsn(db_port),
            data_dir=str(root / "pg" / role),
        )
    db_ports = [port["fp-db-primary"], port["fp-db-dr"]] if fault_proxies else [port["pg-primary"], port["pg-dr"]]
    faults = {}
    if fault_proxies:
        for fp, upstream in (
            ("fp-db-primary", "pg-primary"),
            ("fp-db-dr", "pg-dr"),
            ("fp-svc-primary", "svc-primary"),
            ("fp-svc-dr", "svc-dr"),
        ):
            faults[fp.removeprefix("fp-")] = mf.FaultProxy(
                port=port[fp],
                upstream=f"{HOST}:{port[upstream]}",
                control_url=f"http://{HOST}:{port[fp + '-control']}",
            )
    # the tenants the services serve are the zone's (the platform's inline ones, then each cell's
    # tenant file), with the keys each stack's plan hands them
    keys, stacks = planned.zone_api_keys(), planned.tenant_stacks(stack)
    tenants = [
        mf.Tenant(
            id=t.id,
            plan=t.plan,
            api_key=keys[t.id],
            quota=mf.Quota(gql_qps=t.quota.gql_qps, ingest_eps=t.quota.ingest_eps, storage_gb=t.quota.storage_gb),
            stack=stacks[t.id],
        )
        for t in planned.zone_settings("primary").tenants
    ]
    return mf.Manifest(
        version=mf.VERSION,
        stack=stack,
        state="starting",
        root=str(root),
        created_at=mf.now_iso(),
        endpoint=f"http://{HOST}:{port['haproxy']}",
        regions=regions,
        database=mf.Database(name=pglib.DB_NAME, user=pglib.APP_USER, write_dsn=pglib.multi_host_dsn(db_ports)),
        haproxy=mf.HAProxy(
            port=port["haproxy"],
            config=str(root / "etc" / "haproxy.cfg"),
            stats_socket=str(root / "run" / "haproxy.sock"),
            servers={},
        ),
        faults=faults,
        ports=port,
        processes={},
        tenants=tenants,
        failover=mf.Failover.of(failover),
        objects=mf.Objects(endpoint=f"http://{HOST}:{port['objects']}", spec=str(root / "etc" / "objects-spec.json")),
    )


async def _bring_up(
    planned: fromplan.PlannedWorkload,
    root: Path,
    doc: mf.Manifest,
    port: dict,
    pg: pglib.PgBin,
    haproxy_bin: str,
    user,
    failover,
    fault_proxies: bool,
    started,
    popen,
    tenant_files: dict[str, tuple[str, ...]],
) -> None:
    logs = root / "logs"
    primary_dir, dr_dir = root / "pg" / "primary", root / "pg" / "dr"

    # primary region's database
    if not (primary_dir / "PG_VERSION").exists():
        shutil.rmtree(primary_dir, ignore_errors=True)
        await asyncio.to_thread(pglib.initdb, pg, user, primary_dir)
    await asyncio.to_thread(pglib.ensure_tls, primary_dir, user)
    _clear_stale_pidfile(primary_dir)
    started(
        *procs.spawn("pg-primary", pglib.server_argv(pg, primary_dir, port["pg-primary"]), logs / "pg-primary.log", user=user)
    )
    await _ready("pg-primary", pglib.wait_ready(port["pg-primary"], READY_TIMEOUT_S, popen["pg-primary"]), doc)
    await pglib.bootstrap(port["pg-primary"])
    # the Aurora cluster endpoints' stand-in: connects to whichever node writes (the primary's now)
    _spawn_writer_endpoint(doc, port, f"{HOST}:{port['pg-primary']}", logs, started)
    # object storage and the database user's secret: the AWS stand-in, IAM enforced once set up
    objects = await _start_objects(planned, doc, root, port, started, popen)
    # the plan's migration Job, as the master user: schema, and the service's own user (its
    # password from the stand-in's secret, read with the pod's identity)
    await pglib.ensure_role(port["pg-primary"], planned.master_user)
    await asyncio.to_thread(
        _run_once,
        planned.migration,
        root / "pods" / "migrate",
        fromplan.local_substitutions(
            planned,
            "primary",
            addresses=fromplan.local_addresses(
                planned, nodes={"primary": port["pg-primary"], "dr": port["pg-dr"]}, writer_endpoint=port["pg-writer"]
            ),
            service_port=None,
            objects=objects,
        ),
        logs / "migrate.log",
    )

    # dr region's database: a streaming replica
    await asyncio.to_thread(pglib.basebackup, pg, user, port["pg-primary"], dr_dir, "dr")
    started(*procs.spawn("pg-dr", pglib.server_argv(pg, dr_dir, port["pg-dr"]), logs / "pg-dr.log", user=user))
    await _ready("pg-dr", pglib.wait_ready(port["pg-dr"], READY_TIMEOUT_S, popen["pg-dr"]), doc)

    if fault_proxies:
        for role in ("primary", "dr"):
            _spawn_faultproxy(f"fp-db-{role}", port, f"pg-{role}", logs, started)

    # the service, one per region: the plan's Deployment container, run locally, with the broker's
    # key as its identity (Pod Identity on EKS)
    db_port = {role: port[f"fp-db-{role}"] if fault_proxies else port[f"pg-{role}"] for role in ("primary", "dr")}
    writerendpoint.point(Path(doc.writer_endpoint.writer_file), f"{HOST}:{db_port['primary']}")
    addresses = fromplan.local_addresses(planned, nodes=db_port, writer_endpoint=port["pg-writer"])
    for role in ("primary", "dr"):
        subs = fromplan.local_substitutions(
            planned, role, addresses=addresses, service_port=port[f"svc-{role}"], objects=objects, tenant_files=tenant_files
        )
        try:
            pod = podrun.prepare(planned.services[role], root / "pods" / role, subs)
        except podrun.Unsubstituted as exc:
            raise SandboxError(f"svc-{role}: {exc}") from None
        doc.regions[role].settings_file = podrun.local_path(pod, podrun.settings_path_of(planned.services[role]))
        doc.regions[role].substituted = pod.substituted
        started(*procs.spawn(f"svc-{role}", pod.argv, logs / f"svc-{role}.log", env=_pod_env(pod), cwd=SERVICE_PROJECT_DIR))
    await asyncio.gather(
        *(
            _ready(
                f"svc-{role}",
                _wait_http(f"http://{HOST}:{port[f'svc-{role}']}/healthz", READY_TIMEOUT_S, popen[f"svc-{role}"]),
                doc,
            )
            for role in ("primary", "dr")
        )
    )

    if fault_proxies:
        for role in ("primary", "dr"):
            _spawn_faultproxy(f"fp-svc-{role}", port, f"svc-{role}", logs, started)

    # HAProxy: the Route 53 stand-in
    svc_port = {role: port[f"fp-svc-{role}"] if fault_proxies else port[f"svc-{role}"] for role in ("primary", "dr")}
    backends = [
        Backend(f"{role}-{doc.regions[role].region}", HOST, svc_port[role], backup=(role == "dr")) for role in ("primary", "dr")
    ]
    doc.haproxy.servers = {b.name: f"{b.host}:{b.port}" for b in backends}
    sock = Path(doc.haproxy.stats_socket)
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    cfg_path = Path(doc.haproxy.config)
    doors = tuple(RegionDoor(role, port[f"door-{role}"], b) for role, b in zip(("primary", "dr"), backends, strict=True))
    cfg_path.write_text(render(failover, port["haproxy"], backends, str(sock), doors=doors))
    started(*procs.spawn("haproxy", [haproxy_bin, "-db", "-f", str(cfg_path)], logs / "haproxy.log"))
    await _ready("haproxy", _wait_http(f"{doc.endpoint}/healthz", READY_TIMEOUT_S, popen["haproxy"]), doc)


def _pod_env(pod: podrun.LocalPod) -> dict[str, str]:
    """Only what the container's spec gives it, plus what a local interpreter needs to find the code."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SERVICE_PROJECT_DIR), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
        **pod.env,
    }


def _run_once(container, pod_root: Path, subs: podrun.Substitutions, log: Path) -> None:
    """A Job's container, run to completion (the migration); its log tail in the error if it fails."""
    try:
        pod = podrun.prepare(container, pod_root, subs)
    except podrun.Unsubstituted as exc:
        raise SandboxError(f"migrate: {exc}") from None
    ref, proc = procs.spawn("migrate", pod.argv, log, env=_pod_env(pod), cwd=SERVICE_PROJECT_DIR)
    try:
        code = proc.wait(READY_TIMEOUT_S * 2)
    except subprocess.TimeoutExpired:
        procs.stop(ref)
        raise SandboxError(f"the migration Job did not finish:\n{procs.tail(ref.log)}") from None
    if code != 0:
        raise SandboxError(f"the migration Job failed ({code}):\n{procs.tail(ref.log)}")


def object_credentials(root: Path) -> dict[str, str]:
    """The env a service process gets for its Pod Identity: the object stand-in broker's key (empty
    when the stand-in has not been set up in `root`)."""
    out = root / "run" / "objects.json"
    return objectstore.broker_env(json.loads(out.read_text())) if out.is_file() else {}


async def _start_objects(planned: fromplan.PlannedWorkload, doc: mf.Manifest, root: Path, port: dict, started, popen) -> dict:
    """Start the stand-in with what the plan's service settings name, wait for its setup (its out
    file appears whole), and record what it made in the manifest."""
    spec = objectstore.spec_from_settings((planned.zone_settings(role) for role in ("primary", "dr")), role_per_tenant=True)
    spec_path, out = Path(doc.objects.spec), root / "run" / "objects.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    with contextlib.suppress(FileNotFoundError):
        out.unlink()
    argv = [
        sys.executable,
        "-m",
        "meridian.sandbox.objectstore",
        "--listen",
        f"{HOST}:{port['objects']}",
        "--spec",
        str(spec_path),
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SERVICE_PROJECT_DIR), os.environ.get("PYTHONPATH")]))}
    started(*procs.spawn("objects", argv, root / "logs" / "objects.log", env=env, cwd=SERVICE_PROJECT_DIR))

    async def ready() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S * 2  # moto's import and setup: seconds on a loaded machine
        while not out.exists():
            if popen["objects"].poll() is not None:
                raise RuntimeError(f"exited with code {popen['objects'].returncode}")
            if loop.time() > deadline:
                raise TimeoutError(f"no {out} after {READY_TIMEOUT_S * 2:g} s")
            await asyncio.sleep(0.1)

    await _ready("objects", ready(), doc)
    made = json.loads(out.read_text())
    doc.objects.regions = {
        region: {
            tid: mf.ObjectGrant(bucket=t["bucket"], prefix=t["prefix"], kms_key_arn=t["kms_key_arn"], role_arn=t["role_arn"])
            for tid, t in r["tenants"].items()
        }
        for region, r in made["regions"].items()
    }
    return made


def _spawn_writer_endpoint(doc: mf.Manifest, port: dict, writer: str, logs: Path, started) -> None:
    writer_file = Path(doc.root) / "etc" / "writer"
    writerendpoint.point(writer_file, writer)
    doc.writer_endpoint = mf.WriterEndpoint(port=port["pg-writer"], writer_file=str(writer_file))
    argv = [sys.executable, "-m", "meridian.sandbox.writerendpoint", "--listen", f"{HOST}:{port['pg-writer']}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SERVICE_PROJECT_DIR), os.environ.get("PYTHONPATH")]))}
    ref, proc = procs.spawn("pg-writer", [*argv, "--writer-file", str(writer_file)], logs / "pg-writer.log", env=env)
    started(ref, proc)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not portlib.is_listening(port["pg-writer"]):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SandboxError(f"pg-writer did not start:\n{procs.tail(ref.log)}")
        time.sleep(0.02)


def _spawn_faultproxy(name: str, port: dict, upstream: str, logs: Path, started) -> None:
    argv = [
        sys.executable,
        "-m",
        "meridian.sandbox.faultproxy",
        "--listen",
        f"{HOST}:{port[name]}",
        "--upstream",
        f"{HOST}:{port[upstream]}",
        "--control",
        f"{HOST}:{port[name + '-control']}",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SERVICE_PROJECT_DIR), os.environ.get("PYTHONPATH")]))}
    ref, proc = procs.spawn(name, argv, logs / f"{name}.log", env=env, cwd=SERVICE_PROJECT_DIR)
    started(ref, proc)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not (portlib.is_listening(port[name]) and portlib.is_listening(port[name + "-control"])):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SandboxError(f"{name} did not start:\n{procs.tail(ref.log)}")
        time.sleep(0.02)


def _clear_stale_pidfile(data_dir: Path) -> None:
    """A postmaster.pid left by a killed server whose pid is gone: postgres copes, but a pid reused
    by another process would make it refuse to start. We stopped our own servers by pid already."""
    pidfile = data_dir / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        pid = int(pidfile.read_text().splitlines()[0])
        import psutil

        try:
            cmd = " ".join(psutil.Process(pid).cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            cmd = ""
        if str(data_dir) not in cmd:
            pidfile.unlink()


async def _ready(name: str, waiter, doc: mf.Manifest) -> None:
    try:
        await waiter
    except (TimeoutError, RuntimeError, OSError) as exc:
        ref = doc.processes.get(name)
        log = ref.log if ref is not None else ""
        raise SandboxError(f"{name} did not become ready: {exc}\n--- {log} (tail) ---\n{procs.tail(log)}") from None


async def _wait_http(url: str, timeout: float, proc=None) -> None:
    import httpx

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no answer"
    async with httpx.AsyncClient(timeout=1.0) as client:
        while loop.time() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"exited with code {proc.returncode}")
            try:
                r = await client.get(url)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{url} not healthy after {timeout:g} s (last: {last})")


# --- down ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownResult:
    stopped: list[str]
    already_gone: list[str]
    ports_busy: list[int]
    wiped: bool
    was_up: bool


def _ordered(doc: mf.Manifest | mf.Unreadable) -> list[procs.ProcRef]:
    refs = doc.processes
    order = [n for n in STOP_ORDER if n in refs] + sorted(n for n in refs if n not in STOP_ORDER)
    return [refs[n] for n in order]


def _stop_all(doc: mf.Manifest | mf.Unreadable) -> list[str]:
    stopped = []
    for ref in _ordered(doc):
        if procs.stop(ref, STOP_SIGNAL.get(ref.name, signal.SIGTERM)):
            stopped.append(ref.name)
    return stopped


def down(root: Path, *, wipe: bool = False) -> DownResult:
    doc = mf.read(root)
    if doc is None:
        if wipe and root.exists():
            shutil.rmtree(root)
        return DownResult([], [], [], wipe and not root.exists(), was_up=False)
    refs = _ordered(doc)
    stopped, gone = [], []
    for ref in refs:
        (stopped if procs.stop(ref, STOP_SIGNAL.get(ref.name, signal.SIGTERM)) else gone).append(ref.name)
    ports = sorted(set(doc.ports.values())) if isinstance(doc, mf.Manifest) else []
    busy = _wait_ports_free(ports, 5.0)
    if wipe:
        shutil.rmtree(root, ignore_errors=True)
    elif isinstance(doc, mf.Manifest):  # an unreadable one stays for `up` to replace (status shows why)
        doc.state = "down"
        doc.processes = {}
        mf.write(root, doc)
    return DownResult(stopped, gone, busy, wipe, was_up=bool(refs))


def _wait_ports_free(ports: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        busy = [p for p in ports if portlib.is_listening(p)]
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.05)


# --- status --------------------------------------------------------------------------------------


def status(root: Path) -> dict:
    """Each part's health and the replication lag; `healthy` is true only if every part is."""
    doc = mf.read(root)
    if doc is None:
        return {"state": "not up", "healthy": False, "parts": {}, "error": None}
    if isinstance(doc, mf.Unreadable):
        return {"state": doc.state, "healthy": False, "parts": {}, "error": doc.hint(root.name)}
    if doc.state in ("down", "failed"):
        return {"state": doc.state, "healthy": False, "parts": {}, "error": doc.error}
    return asyncio.run(_status(doc))


async def replication_status(doc: mf.Manifest) -> dict:
    """The dr replica as the drill measures it: WAL bytes not yet replayed (on the primary) and
    seconds since the replica last replayed a transaction, never `replay_lag` (stale while a
    stream is stalled, NULL when idle)."""
    try:
        rows = await pglib.replication(doc.regions["primary"].db_port)
        dr = next((r for r in rows if r["application_name"] == "dr"), None)
        if dr is None:
            return {"state": "not streaming"}
        age = await pglib.replay_age_s(doc.regions["dr"].db_port)
        return {"state": dr["state"], "lag_bytes": dr["lag_bytes"], "since_replay_s": round(max(0.0, age), 3)}
    except Exception as exc:
        return {"state": "unknown", "error": f"{type(exc).__name__}: {exc}"}


async def _status(doc: mf.Manifest) -> dict:
    import httpx

    parts: dict[str, dict] = {}
    for ref in doc.processes.values():
        parts[ref.name] = {"pid": ref.pid, "running": procs.alive(ref), "port": doc.ports.get(ref.name)}

    async def db(role: str) -> None:
        p = parts.setdefault(f"pg-{role}", {})
        try:
            p["role"] = await pglib.role_of(doc.regions[role].db_port)
            p["healthy"] = p.get("running", False)
        except Exception as exc:
            p.update(healthy=False, error=f"{type(exc).__name__}: {exc}")

    async def svc(client, role: str) -> None:
        p = parts.setdefault(f"svc-{role}", {})
        try:
            r = await client.get(f"{doc.regions[role].service_url}/healthz")
            body = r.json()
            p.update(
                healthy=r.status_code == 200 and p.get("running", False),
                http=r.status_code,
                db=body.get("db"),
                db_role=body.get("db_role"),
            )
        except Exception as exc:
            p.update(healthy=False, error=f"{type(exc).__name__}: {exc}")

    async def front(client) -> None:
        p = parts.setdefault("haproxy", {})
        try:
            r = await client.get(f"{doc.endpoint}/healthz")
            p.update(
                healthy=r.status_code == 200 and p.get("running", False),
                http=r.status_code,
                serving_region=r.json().get("region"),
            )
        except Exception as exc:
            p.update(healthy=False, error=f"{type(exc).__name__}: {exc}")
        servers = await asyncio.to_thread(haproxy_servers, doc)
        if servers:
            p["servers"] = servers

    async with httpx.AsyncClient(timeout=2.0) as client:
        await asyncio.gather(db("primary"), db("dr"), svc(client, "primary"), svc(client, "dr"), front(client))
    if "objects" in parts:
        parts["objects"]["healthy"] = parts["objects"]["running"] and portlib.is_listening(doc.ports["objects"])
    for name, fault in doc.faults.items():
        parts[f"fp-{name}"]["healthy"] = parts[f"fp-{name}"]["running"] and portlib.is_listening(fault.port)
    if doc.writer_endpoint is not None and "pg-writer" in parts:
        writer = parts["pg-writer"]
        writer["healthy"] = writer["running"] and portlib.is_listening(doc.writer_endpoint.port)
        with contextlib.suppress(OSError):
            writer["writer"] = Path(doc.writer_endpoint.writer_file).read_text().strip()

    replication = await replication_status(doc)
    healthy = all(p.get("healthy", False) for p in parts.values()) and replication.get("state") == "streaming"
    return {
        "state": doc.state,
        "stack": doc.stack,
        "endpoint": doc.endpoint,
        "healthy": healthy,
        "parts": parts,
        "replication": replication,
        "failover": mf.to_json(doc.failover),
    }


def haproxy_servers(doc: mf.Manifest) -> dict[str, str]:
    """Server name -> status (UP, DOWN, ...) from HAProxy's stats socket; {} if it does not answer."""
    try:
        text = haproxy_command(doc, "show stat")
    except OSError:
        return {}
    return {name: row.get("status", "?") for name, row in parse_show_stat(text).items()}


def haproxy_command(doc: mf.Manifest, command: str, timeout: float = 2.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(doc.haproxy.stats_socket)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


# --- operations for drills and tests -------------------------------------------------------------


def stop_part(doc: mf.Manifest, name: str, sig: int | None = None) -> bool:
    """Stop one recorded part (e.g. `pg-primary` to fail the primary region's database)."""
    return stop_part_outcome(doc, name, sig) != "not running"


def stop_part_outcome(doc: mf.Manifest, name: str, sig: int | None = None) -> str:
    """`stop_part`, saying how: "not running", "stopped" or "forced" (see procs.stop_outcome)."""
    ref = doc.processes.get(name)
    if ref is None:
        raise KeyError(f"no part {name!r} in the manifest (parts: {', '.join(doc.processes)})")
    return procs.stop_outcome(ref, sig if sig is not None else STOP_SIGNAL.get(name, signal.SIGTERM))


def promote_dr(doc: mf.Manifest, timeout: float = 10.0) -> float:
    """Promote the dr region's replica; returns seconds taken. The manifest's db roles are updated."""
    return promote_db(doc, "dr", timeout)


def restart_part(doc: mf.Manifest, name: str, timeout: float = READY_TIMEOUT_S) -> float:
    """Start a stopped part again exactly as `up` started it and wait until it answers; returns
    seconds taken. The manifest records the new pid."""
    ref = doc.processes.get(name)
    if ref is None:
        raise KeyError(f"no part {name!r} in the manifest (parts: {', '.join(doc.processes)})")
    t0 = time.monotonic()
    try:
        new, proc = procs.respawn(ref)
    except ValueError as exc:
        raise SandboxError(str(exc)) from None
    doc.processes[name] = new
    mf.write(Path(doc.root), doc)
    port = doc.ports[name]
    if name.startswith("pg-"):
        waiter = pglib.wait_ready(port, timeout, proc)
    elif name.startswith("svc-"):
        waiter = _wait_http(f"http://{HOST}:{port}/livez", timeout, proc)
    elif name == "haproxy":
        waiter = _wait_http(f"{doc.endpoint}/livez", timeout, proc)
    else:
        waiter = _wait_listening(port, timeout, proc)
    asyncio.run(_ready(name, waiter, doc))
    return time.monotonic() - t0


async def _wait_listening(port: int, timeout: float, proc) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not portlib.is_listening(port):
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode}")
        if loop.time() > deadline:
            raise TimeoutError(f"port {port} not listening after {timeout:g} s")
        await asyncio.sleep(0.02)


def promote_db(doc: mf.Manifest, role: str, timeout: float = 10.0) -> float:
    """Promote `role`'s replica to primary; returns seconds taken. The manifest's db roles are updated."""
    t0 = time.monotonic()
    asyncio.run(pglib.promote(doc.regions[role].db_port, timeout))
    elapsed = time.monotonic() - t0
    doc.regions[role].db_role = "primary"
    if doc.writer_endpoint is not None:  # the cluster endpoints now lead to the new writer (failover)
        proxy = doc.faults.get(f"db-{role}")
        writerendpoint.point(
            Path(doc.writer_endpoint.writer_file), f"{HOST}:{proxy.port if proxy else doc.regions[role].db_port}"
        )
    mf.write(Path(doc.root), doc)
    return elapsed


def rebuild_replica(doc: mf.Manifest, role: str, timeout: float = READY_TIMEOUT_S) -> float:
    """Failback's first half: `role`'s database (stopped) is rebuilt as a streaming replica of the
    other region's database (now the primary), from a fresh base backup, then started."""
    other = "dr" if role == "primary" else "primary"
    name = f"pg-{role}"
    ref = doc.processes.get(name)
    if ref is not None and procs.alive(ref):
        raise SandboxError(f"{name} is running: stop it before rebuilding it as a replica")
    t0 = time.monotonic()
    pg, user = pglib.find_pg(), pglib.run_as()
    data_dir = Path(doc.regions[role].data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    pglib.basebackup(pg, user, doc.regions[other].db_port, data_dir, role)
    # a base backup copies the socket lock files it finds (the socket dir is the data dir): stale here
    for lock in data_dir.glob(".s.PGSQL.*.lock"):
        lock.unlink()
    doc.regions[role].db_role = "replica"
    mf.write(Path(doc.root), doc)
    restart_part(doc, name, timeout)
    return time.monotonic() - t0
