"""The sandbox as a Target: its manifest, HAProxy's admin socket, its processes and fault proxies.

Region loss kills the region's service process (SIGKILL: nothing is drained, as when a region goes
dark); HAProxy's health checks, scaled from the stack's Route 53 settings, then fail over by
themselves. Database operations act on the PostgreSQL servers (stop, `pg_promote`, rebuild as a
replica from a fresh base backup). Traffic is steered through HAProxy's runtime API: a drained
server is put in `maint`, so the `backup` (dr) server takes the traffic. Faults go through the
sandbox's fault proxies, present when the sandbox was started with `--fault-proxies`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import time
from pathlib import Path

import httpx

from meridian import ports
from meridian.errors import BadInput
from meridian.sandbox import canary, core, fromplan, procs
from meridian.sandbox import manifest as mf
from meridian.sandbox import postgres as pglib
from meridian.targets import lock as stacklock
from meridian.targets.protocol import (
    ROLES,
    ActionFailed,
    ActionResult,
    Fault,
    Health,
    RegionHealth,
    Role,
    TargetUnavailable,
    TenantCredential,
    Unsupported,
    check_percent,
    check_role,
    timed,
)

HTTP_TIMEOUT_S = 2.0
DRILL_LOCK = "drill-lock.json"  # one drill at a time on this sandbox, whatever --records says
# SIGQUIT is PostgreSQL's immediate shutdown: no checkpoint, no waiting for replicas (a crash)
CRASH, CLEAN = signal.SIGQUIT, signal.SIGINT


def from_stack(stack: str, project_dir: Path, *, state_dir: Path | None = None) -> SandboxTarget:
    return SandboxTarget(stack, core.root_of(project_dir, stack, state_dir))


# The sandbox's own lifecycle, for `meridian sandbox up|down|status` and `meridian up --target
# sandbox`: the commands reach the sandbox's parts only through this floor.
root_of, up, down, status = core.root_of, core.up, core.down, core.status
SandboxError, SandboxMissing = core.SandboxError, core.SandboxMissing
Manifest = mf.Manifest
PreviewedPlan, program_hash = core.PreviewedPlan, fromplan.program_hash


class SandboxTarget:
    kind = "sandbox"

    def __init__(self, stack: str, root: Path):
        self.stack = stack
        self.root = root
        doc = mf.read(root)
        if isinstance(doc, mf.Unreadable):
            raise TargetUnavailable(doc.hint(stack))
        if doc is None or doc.state != "up":
            state = "not up" if doc is None else doc.state
            raise TargetUnavailable(
                f"the {stack} sandbox is {state} ({root}): start it with "
                f"`meridian sandbox up --stack {stack}` (add --fault-proxies for chaos)"
            )

    # the manifest is re-read on every call: a drill in another process may have changed it
    @property
    def doc(self) -> mf.Manifest:
        doc = mf.read(self.root)
        if isinstance(doc, mf.Unreadable):
            raise TargetUnavailable(doc.hint(self.stack))
        if doc is None or doc.state != "up":
            raise TargetUnavailable(f"the {self.stack} sandbox is no longer up ({self.root})")
        return doc

    def endpoint(self) -> str:
        return self.doc.endpoint

    def plan_sha256(self) -> str | None:
        """The sha256 of the previewed plan the running services were started from (None: started
        without a preview of the same program, e.g. by `meridian sandbox up`)."""
        plan = self.doc.plan
        return plan.sha256 if plan else None

    def tenants(self) -> list[TenantCredential]:
        return [TenantCredential(t.id, t.plan, t.api_key, t.quota.gql_qps, t.quota.ingest_eps) for t in self.doc.tenants]

    def detection_bound_s(self) -> float:
        return float(self.doc.failover.detection_bound_scaled_s)

    def time_scale(self) -> float:
        return float(self.doc.failover.time_scale)

    def has_fault_proxies(self) -> bool:
        return bool(self.doc.faults)

    # --- the drill lock: in the stack's sandbox state, beside its manifest ----------------------

    def acquire_drill_lock(self, claimant: stacklock.LockOwner, *, resume: bool = False, break_lock: bool = False) -> str:
        return stacklock.file_acquire(self.root / DRILL_LOCK, claimant, resume=resume, break_lock=break_lock)

    def release_drill_lock(self, claimant: stacklock.LockOwner) -> None:
        stacklock.file_release(self.root / DRILL_LOCK, claimant)

    # --- looking ---------------------------------------------------------------------------------

    def health(self) -> Health:
        doc = self.doc
        return asyncio.run(_health(doc, core.haproxy_servers(doc)))

    # --- regions ---------------------------------------------------------------------------------

    def kill_region(self, role: Role) -> ActionResult:
        check_role(role)
        doc = self.doc
        return timed(
            "kill_region", role, lambda: (core.stop_part(doc, f"svc-{role}", signal.SIGKILL), f"svc-{role} killed (SIGKILL)")
        )

    def restore_region(self, role: Role) -> ActionResult:
        check_role(role)
        return timed("restore_region", role, lambda: self._restart(f"svc-{role}"))

    # --- databases -------------------------------------------------------------------------------

    def stop_database(self, role: Role, *, planned: bool = False) -> ActionResult:
        check_role(role)
        started, t0 = time.time(), time.monotonic()
        changed, detail, forced = _stop_database(self.doc, role, planned)
        return ActionResult("stop_database", role, started, round(time.monotonic() - t0, 4), changed, detail, forced)

    def restore_database(self, role: Role) -> ActionResult:
        check_role(role)

        def act() -> tuple[bool, str]:
            doc = self.doc
            name, other = f"pg-{role}", _other(role)
            if self._alive(doc, name):
                return False, f"{name} already running"
            was = doc.regions[role].db_role
            now_other = _db_role(doc, other)
            if was == "primary" and now_other == "primary":
                # the other side was promoted while this one was down: its timeline moved on
                seconds = core.rebuild_replica(doc, role)
                return True, f"{name} rebuilt as a replica of pg-{other} in {seconds:.2f} s"
            try:
                core.restart_part(doc, name)
            except core.SandboxError as exc:
                raise ActionFailed(str(exc)) from None
            return True, f"{name} restarted as {was}"

        return timed("restore_database", role, act)

    def promote(self, role: Role) -> ActionResult:
        check_role(role)

        def act() -> tuple[bool, str]:
            doc = self.doc
            current = _db_role(doc, role)
            if current == "primary":
                return False, f"pg-{role} is already the primary"
            if current != "replica":
                raise ActionFailed(f"pg-{role} cannot be promoted: it is {current}")
            try:
                seconds = core.promote_db(doc, role)
            except (RuntimeError, OSError) as exc:
                raise ActionFailed(f"promoting pg-{role} failed: {exc}") from None
            return True, f"pg-{role} promoted in {seconds * 1000:.0f} ms"

        return timed("promote", role, act)

    # --- traffic ---------------------------------------------------------------------------------

    def flip_traffic(self, to_role: Role) -> ActionResult:
        check_role(to_role)
        return timed("flip_traffic", to_role, lambda: self._route({to_role: True, _other(to_role): to_role == "primary"}))

    def set_weights(self, weights: dict[str, int]) -> ActionResult:
        unknown = sorted(set(weights) - set(ROLES))
        if unknown or not weights:
            raise BadInput(f"weights must name roles {', '.join(ROLES)} (got {', '.join(map(str, weights)) or 'none'})")
        for role, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 256:
                raise BadInput(f"weight of {role} must be an integer 0..256 (got {w!r})")
        full = {r: weights.get(r, 0) for r in ROLES}
        if not any(full.values()):
            raise BadInput("at least one region needs a weight > 0")
        if all(full.values()):
            raise Unsupported(
                "the sandbox front door is a failover pair (the dr server is HAProxy's backup, as the "
                "SECONDARY record is on Route 53): it cannot split traffic; use weights with one 0, or flip_traffic"
            )
        return timed("set_weights", None, lambda: self._route({r: w > 0 for r, w in full.items()}))

    def _route(self, enabled: dict[str, bool]) -> tuple[bool, str]:
        doc = self.doc
        servers = _servers_by_role(doc)
        before = core.haproxy_servers(doc)
        changed, said = False, []
        # enable before draining: there is never a moment with no server allowed
        for role in sorted(enabled, key=lambda r: not enabled[r]):
            name = servers[role]
            state = "ready" if enabled[role] else "maint"
            was_maint = before.get(name, "").startswith("MAINT")
            if was_maint == (not enabled[role]):
                continue
            try:
                reply = core.haproxy_command(doc, f"set server api/{name} state {state}").strip()
            except OSError as exc:
                raise ActionFailed(f"HAProxy admin socket did not answer: {exc}") from None
            if reply:
                raise ActionFailed(f"HAProxy refused `set server api/{name} state {state}`: {reply}")
            changed = True
            said.append(f"{name} -> {state}")
        return changed, ", ".join(said) or "already so"

    # --- canary (progressive delivery) ------------------------------------------------------------

    def region_endpoint(self, role: Role) -> str:
        """The region's own door (HAProxy `door-<role>`): load for judging a region the failover
        pair keeps idle. Sandboxes started before doors existed answer with the front door."""
        check_role(role)
        return self.doc.regions[role].door_url

    def start_canary(self, role: Role, version: str, fault: dict | None = None) -> ActionResult:
        """Run `version` beside the region's stable service (HAProxy weight 0 until set)."""
        check_role(role)
        return timed("start_canary", role, lambda: self._canary(canary.start, role, version, fault))

    def stop_canary(self, role: Role) -> ActionResult:
        """Stable back to all of the region's traffic, the canary's servers and process gone."""
        check_role(role)
        return timed("stop_canary", role, lambda: self._canary(canary.stop, role))

    def canary_digest(self, version: str, fault: dict | None) -> str:
        return canary.version_digest(version, fault)

    def set_canary_weight(self, role: Role, percent: int) -> ActionResult:
        check_role(role)
        check_percent(percent)
        return timed("set_canary_weight", role, lambda: self._canary(canary.set_weight, role, percent))

    def canary_weights(self) -> dict[str, int]:
        try:
            return canary.weights(self.doc)
        except canary.CanaryError as exc:
            raise ActionFailed(str(exc)) from None

    def canary_versions(self) -> dict[str, dict]:
        """Role -> the running canary's record (version, fault, port, digest)."""
        return {role: mf.to_json(rec) for role, rec in canary.running(self.doc).items()}

    def _canary(self, fn, *args) -> tuple[bool, str]:
        try:
            return fn(self.doc, *args)
        except canary.CanaryError as exc:
            raise ActionFailed(str(exc)) from None

    # --- faults ----------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> ActionResult:
        doc = self.doc
        if not doc.faults:
            raise Unsupported(
                f"the {self.stack} sandbox has no fault proxies: restart it with "
                f"`meridian sandbox down --stack {self.stack} && meridian sandbox up --stack {self.stack} --fault-proxies`"
            )
        name = f"{'db' if fault.layer == 'database' else 'svc'}-{fault.role}"
        change = {
            "latency": {"latency_ms": fault.latency_ms, "jitter_ms": fault.jitter_ms},
            "drop": {"drop": fault.probability},
            "blackhole": {"blackhole": True},
        }[fault.kind]
        return timed("inject", fault.role, lambda: (True, f"{name}: {_put_faults(doc, name, change)}"))

    def clear_faults(self) -> ActionResult:
        doc = self.doc
        clear = {"latency_ms": 0, "jitter_ms": 0, "drop": 0, "blackhole": False}

        def act() -> tuple[bool, str]:
            changed = []
            for name, proxy in doc.faults.items():
                try:
                    current = httpx.get(f"{proxy.control_url}/faults", timeout=HTTP_TIMEOUT_S).json()
                except httpx.HTTPError:
                    continue  # a proxy that is down carries no fault
                if any(current.get(k) != v for k, v in clear.items()):
                    _put_faults(doc, name, clear)
                    changed.append(name)
            return bool(changed), f"cleared {', '.join(changed)}" if changed else "no fault was active"

        return timed("clear_faults", None, act)

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _alive(doc: mf.Manifest, name: str) -> bool:
        ref = doc.processes.get(name)
        return ref is not None and procs.alive(ref)

    def _restart(self, name: str) -> tuple[bool, str]:
        doc = self.doc
        if self._alive(doc, name):
            return False, f"{name} already running"
        try:
            seconds = core.restart_part(doc, name)
        except core.SandboxError as exc:
            raise ActionFailed(str(exc)) from None
        return True, f"{name} restarted in {seconds:.2f} s"

    # --- backups and restores (added for the restore-from-backup drill) -----------------------------
    # A recovery point is a base backup of a region's database under <root>/backups/<id>; a restore
    # starts a *new* server from the latest one (as AWS Backup restores into a new cluster), beside
    # the running pair, until discard_restore(). None of this touches the pair itself.

    def backup(self, role: Role) -> ActionResult:
        check_role(role)

        def act() -> tuple[bool, str]:
            doc = self.doc
            pg, user = pglib.find_pg(), pglib.run_as()
            parent = self.root / "backups"
            parent.mkdir(exist_ok=True)
            pglib.chown_tree(parent, user)
            point = parent / (time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.3f}"[1:])
            try:
                pglib.basebackup(pg, user, doc.regions[role].db_port, point, "backup")
            except (RuntimeError, OSError) as exc:
                raise ActionFailed(f"base backup of pg-{role} failed: {exc}") from None
            return True, f"recovery point {point.name} of pg-{role}"

        return timed("backup", role, act)

    def restore_backup(self, role: Role) -> ActionResult:
        check_role(role)

        def act() -> tuple[bool, str]:
            points = sorted((self.root / "backups").glob("*")) if (self.root / "backups").is_dir() else []
            if not points:
                raise ActionFailed(f"no recovery point under {self.root / 'backups'}: take one with backup()")
            if _restore_record(self.root) is not None:
                raise ActionFailed("a restored server is already running: discard_restore() first")
            pg, user = pglib.find_pg(), pglib.run_as()
            data = self.root / "restores" / points[-1].name
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(points[-1], data, symlinks=True)
            (data / "standby.signal").unlink(missing_ok=True)  # a restore is a new primary, not a replica
            for lock in data.glob(".s.PGSQL.*.lock"):
                lock.unlink()
            pglib.chown_tree(data.parent, user)
            port = ports.allocate(["pg-restore"])["pg-restore"]
            ref, proc = procs.spawn(
                "pg-restore", pglib.server_argv(pg, data, port), self.root / "logs" / "pg-restore.log", user=user
            )
            _write_restore_record(
                self.root,
                {"ref": {"name": ref.name, **ref.to_dict()}, "port": port, "data": str(data), "recovery_point": points[-1].name},
            )
            try:
                asyncio.run(pglib.wait_ready(port, 60, proc))
            except (TimeoutError, RuntimeError) as exc:
                raise ActionFailed(f"the restored server did not start: {exc}") from None
            return True, f"recovery point {points[-1].name} restored into a new server on port {port}"

        return timed("restore_backup", role, act)

    def restored_ids(self, tenant: str, ids: list[int]) -> set[int]:
        """Which of `ids` (the tenant's event ids) the restored server holds."""
        record = _restore_record(self.root)
        if record is None:
            raise ActionFailed("no restored server: restore_backup() first")

        async def query() -> set[int]:
            import asyncpg

            conn = await asyncpg.connect(pglib.dsn(record["port"]), timeout=5)
            try:
                rows = await conn.fetch("SELECT id FROM events WHERE tenant_id = $1 AND id = ANY($2::bigint[])", tenant, ids)
            finally:
                await conn.close()
            return {r["id"] for r in rows}

        return asyncio.run(query())

    def discard_restore(self) -> ActionResult:
        def act() -> tuple[bool, str]:
            record = _restore_record(self.root)
            if record is None:
                return False, "no restored server"
            ref = procs.ProcRef.from_dict("pg-restore", record["ref"])
            procs.stop(ref, CLEAN)
            shutil.rmtree(record["data"], ignore_errors=True)
            (self.root / "restores" / RESTORE_RECORD).unlink(missing_ok=True)
            return True, f"restored server on port {record['port']} stopped and its data deleted"

        return timed("discard_restore", None, act)

    # --- dry runs (drills print these; added for `meridian drill`) ---------------------------------

    def explain(self, action: str, *args, **kwargs) -> list[str]:
        """What `action` would do to the sandbox's parts, without doing it."""
        role = args[0] if args else None
        servers = _servers_by_role(self.doc)
        if action == "kill_region":
            return [f"SIGKILL svc-{role} (pid from the manifest)"]
        if action == "restore_region":
            return [f"restart svc-{role} as `up` started it, wait for /healthz"]
        if action == "stop_database":
            return [
                f"{'SIGINT (clean shutdown)' if kwargs.get('planned') else 'SIGQUIT (immediate shutdown: a crash)'} pg-{role}"
            ]
        if action == "restore_database":
            return [
                f"restart pg-{role}, or rebuild it with pg_basebackup as a replica of pg-{_other(role)} if that one was promoted"
            ]
        if action == "promote":
            return [
                f"SELECT pg_promote() on pg-{role}",
                f"pg-writer (the Aurora cluster endpoints' stand-in) re-pointed at pg-{role}",
            ]
        if action == "flip_traffic":
            other = _other(role)
            return [
                f"haproxy: set server api/{servers[role]} state ready",
                f"haproxy: set server api/{servers[other]} state {'ready' if role == 'primary' else 'maint'}",
            ]
        if action == "backup":
            return [f"pg_basebackup of pg-{role} into <sandbox>/backups/<time> (the recovery point)"]
        if action == "restore_backup":
            return ["copy the latest recovery point, start a new PostgreSQL on a free port (the pair is untouched)"]
        if action == "discard_restore":
            return ["stop the restored PostgreSQL, delete its data"]
        if action == "inject":
            return ["fault proxy: PUT /faults"]
        if action == "clear_faults":
            return ["fault proxies: PUT /faults (all cleared)"]
        return [f"(no sandbox call mapped for {action})"]


def _stop_database(doc: dict, role: str, planned: bool) -> tuple[bool, str, bool]:
    """(changed, detail, forced): a clean shutdown (planned: every committed write shipped first)
    or a crash. A clean one that did not finish in time was forced: its whole process group
    SIGKILLed, which is no clean shutdown, and it says so."""
    outcome = core.stop_part_outcome(doc, f"pg-{role}", CLEAN if planned else CRASH)
    if not planned:
        return outcome != "not running", f"pg-{role}: crash (immediate shutdown)", False
    if outcome == "forced":
        return True, f"pg-{role}: clean shutdown did not finish; forced (process group SIGKILLed): unclean", True
    return outcome != "not running", f"pg-{role}: clean shutdown", False


def _other(role: str) -> Role:
    return "dr" if role == "primary" else "primary"


def _servers_by_role(doc: mf.Manifest) -> dict[str, str]:
    out = {}
    for name in doc.haproxy.servers:
        role = name.split("-", 1)[0]
        if role in ROLES:
            out[role] = name
    if set(out) != set(ROLES):
        raise TargetUnavailable(
            f"the sandbox manifest names HAProxy servers {list(doc.haproxy.servers)}, not one per role {ROLES}"
        )
    return out


def _db_role(doc: mf.Manifest, role: str) -> str:
    try:
        return asyncio.run(pglib.role_of(doc.regions[role].db_port, timeout=HTTP_TIMEOUT_S))
    except Exception:  # refused, timed out, shutting down: not a database to act on
        return "down"


def _put_faults(doc: mf.Manifest, name: str, change: dict) -> dict:
    proxy = doc.faults[name]
    try:
        r = httpx.put(f"{proxy.control_url}/faults", json=change, timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise ActionFailed(f"fault proxy {name} did not answer: {type(exc).__name__}: {exc}") from None
    if r.status_code != 200:
        raise ActionFailed(f"fault proxy {name} refused {change}: {r.text[:200]}")
    return r.json()


async def _health(doc: mf.Manifest, servers: dict[str, str]) -> Health:
    by_region = {r.region: role for role, r in doc.regions.items()}
    names = _servers_by_role(doc)

    async def db(role: str) -> str:
        try:
            return await pglib.role_of(doc.regions[role].db_port, timeout=HTTP_TIMEOUT_S)
        except Exception:
            return "down"

    async def svc(client: httpx.AsyncClient, url: str) -> httpx.Response | None:
        try:
            return await client.get(f"{url}/healthz")
        except httpx.HTTPError:
            return None

    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
        front, *rest = await asyncio.gather(
            svc(client, doc.endpoint), *(svc(client, doc.regions[r].service_url) for r in ROLES), *(db(r) for r in ROLES)
        )
    services, dbs = dict(zip(ROLES, rest[:2], strict=True)), dict(zip(ROLES, rest[2:], strict=True))
    serving = None
    if front is not None and front.status_code == 200:
        try:
            serving = by_region.get(front.json().get("region"))
        except ValueError:  # something else answered on the front door
            serving = None
    regions = {}
    for role in ROLES:
        r = services[role]
        regions[role] = RegionHealth(
            role,
            doc.regions[role].region,
            r is not None and r.status_code == 200,
            dbs[role],
            servers.get(names[role], "").startswith("UP"),
        )
    lag, behind = await _replication_lag(doc, dbs)
    problems = [f"{role}: service down" for role in ROLES if not regions[role].service_up]
    problems += [f"{role}: database {dbs[role]}" for role in ROLES if dbs[role] not in ("primary", "replica")]
    if sorted(dbs.values()) != ["primary", "replica"] and not any("database" in p for p in problems):
        problems.append(f"databases are {dbs['primary']}/{dbs['dr']}, not one primary and one replica")
    if serving is None:
        problems.insert(0, "the front door does not answer")
    return Health(not problems, serving, regions, lag, "; ".join(problems) or "ok", behind)


async def _replication_lag(doc: Manifest, dbs: dict[str, str]) -> tuple[float | None, int | None]:
    """(ms, bytes) the replica is behind the primary, or (None, None) when none streams."""
    primary = next((r for r in ROLES if dbs[r] == "primary"), None)
    replica = next((r for r in ROLES if dbs[r] == "replica"), None)
    if primary is None or replica is None:
        return None, None
    try:
        lag_s, behind = await pglib.replication_lag(
            doc.regions[primary].db_port, doc.regions[replica].db_port, timeout=HTTP_TIMEOUT_S
        )
    except Exception:
        return None, None
    return (None if lag_s is None else round(lag_s * 1000, 3)), behind


# --- restore records (the restore-from-backup drill) -----------------------------------------------

RESTORE_RECORD = "current.json"


def _restore_record(root: Path) -> dict | None:
    """The restored server this sandbox runs, if any and still alive."""
    try:
        record = json.loads((root / "restores" / RESTORE_RECORD).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return record if procs.alive(procs.ProcRef.from_dict("pg-restore", record["ref"])) else None


def _write_restore_record(root: Path, record: dict) -> None:
    (root / "restores").mkdir(exist_ok=True)
    (root / "restores" / RESTORE_RECORD).write_text(json.dumps(record, indent=1))
