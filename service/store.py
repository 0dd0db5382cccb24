"""The PostgreSQL store. Every query is scoped by the tenant the API key proved, never by the URL.

Reads use the region's own node (`read_dsn`). Writes go through `write_dsn`, in one of three ways
(`service.settings.WRITE_PATHS`): `direct` (the writer's endpoint, `target_session_attrs=read-write`),
`forwarded` (the region's own Aurora cluster: the global writer, or a secondary forwarding writes
to it, which answers session checks as read-only, so the DSN demands nothing) and `passive` (a dr
region whose RDS replica is not promoted: the DSN names the region's own replica with
`target_session_attrs=read-write`, so writes land there only once it is promoted, and are refused
as `Passive` until then). Connection-level failures are retried briefly with backoff.

`health()` reports what the region can do now; `readiness_problems()` judges it against what the
region's role needs (the meaning of `/healthz`, the readiness probe and Route 53's checks).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

import asyncpg

from service.dbsecret import SecretPassword, SecretUnavailable

TRANSIENT = (
    SecretUnavailable,  # the password's source cannot answer now
    asyncpg.exceptions.InvalidPasswordError,  # a rotated password: the source is read again (PgStore._run)
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now (starting, in recovery)
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a pooled connection to a node that is no longer primary
    asyncpg.exceptions.InternalClientError,  # target_session_attrs matched no host (no primary yet)
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full, out of memory
)


class Unavailable(Exception):
    """The database cannot serve this request now (maps to 503 + Retry-After)."""


class Passive(Exception):
    """This region takes no writes while its replica is not promoted (maps to 503 `region_passive`
    + Retry-After): the caller writes through the primary region, or again after a failover."""


# Aurora PostgreSQL's session setting for global write forwarding: a secondary forwards a session's
# writes unless it is `off` (default `session`). On a node that does not know it (plain PostgreSQL,
# RDS) `current_setting(..., true)` is NULL: such a read-only node forwards nothing. What a session
# can see stops there: whether the cluster has forwarding enabled is the RDS API's
# `GlobalWriteForwardingStatus` (set by the program on both clusters, checked by preflight
# `readiness` in the plan and by the AWS drills after every change of writer).
FORWARDING_SETTING = "apg_write_forward.consistency_mode"
FORWARDING_MODES = ("session", "eventual", "global")


def readiness_problems(role: str, writes: str, health: dict) -> list[str]:
    """Why a region of this `role` cannot serve what it must now (empty: ready), from `health()`.

    primary: it serves reads and writes: its own node answers, and writes land on the writer
    (directly, or forwarded by its own Aurora cluster after a switchover demoted it).
    dr: it could take over: its own node answers as a replica (or promoted primary), and its write
    path is what the stack gives a passive region: forwarding configured on its own secondary
    (`forwarded`), or none until promotion, declared as such (`passive`) and not counted against it.
    """
    problems = []
    if health.get("db") != "reachable":
        problems.append(f"the region's own database node is unreachable ({health.get('error')})")
    elif health.get("db_role") not in ("primary", "replica"):
        problems.append(f"the region's own database node has no known role ({health.get('db_role')})")
    allowed = ("ok", "forwarding") + (("passive",) if role == "dr" and writes == "passive" else ())
    if health.get("writes") not in allowed:
        problems.append(f"writes {health.get('writes')}: {health.get('write_error', 'no write path')}")
    return problems


class Store(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def insert_events(self, tenant: str, events: list[tuple[str, dict]]) -> list[int]: ...
    async def list_events(self, tenant: str, after: int, limit: int, type_: str | None) -> list[dict]: ...
    async def get_event(self, tenant: str, event_id: int) -> dict | None: ...
    async def health(self) -> dict: ...


def _row(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"],
        "tenant": r["tenant_id"],
        "type": r["type"],
        "payload": json.loads(r["payload"]),
        "created_at": r["created_at"].isoformat(),
    }


def dsn_hosts(dsn: str) -> list[str]:
    """The hosts of a `postgresql://user@host1:port,host2:port/db` DSN, in order (at least one)."""
    netloc = dsn.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    return [h for h in netloc.split(",") if h] or [""]


class PgStore:
    def __init__(
        self,
        write_dsn: str,
        read_dsn: str,
        *,
        pool_max: int = 10,
        timeout_s: float = 2.0,
        attempts: int = 3,
        password: SecretPassword | None = None,
        writes: str = "direct",
    ):
        """`password`: where new connections take the password from (Secrets Manager); None: the DSNs'.
        `writes`: how `write_dsn` reaches the writer (`service.settings.WRITE_PATHS`)."""
        self.write_dsn, self.read_dsn, self.writes = write_dsn, read_dsn, writes
        self.pool_max, self.timeout_s, self.attempts = pool_max, timeout_s, attempts
        self.password = password
        self._write: asyncpg.Pool | None = None
        self._read: asyncpg.Pool | None = None

    async def start(self) -> None:
        # min_size=0: the service starts (and reports unhealthy) even when its database is down
        kw = dict(
            min_size=0,
            max_size=self.pool_max,
            command_timeout=self.timeout_s,
            max_inactive_connection_lifetime=30,
            **({"password": self.password} if self.password is not None else {}),
        )
        self._write = await asyncpg.create_pool(self.write_dsn, timeout=self.connect_timeout(self.write_dsn), **kw)
        self._read = (
            self._write
            if self.read_dsn == self.write_dsn
            else await asyncpg.create_pool(self.read_dsn, timeout=self.connect_timeout(self.read_dsn), **kw)
        )

    def connect_timeout(self, dsn: str) -> float:
        """`timeout_s` for each host the DSN lists: asyncpg spends one connect timeout across all of
        them, so a first host that swallows packets (a switched-over cluster endpoint) would use it up
        before the next host (the reader endpoint that forwards writes) is ever tried."""
        return self.timeout_s * len(dsn_hosts(dsn))

    async def close(self) -> None:
        for pool in {id(p): p for p in (self._write, self._read) if p is not None}.values():
            pool.terminate()

    async def _run(self, pool: asyncpg.Pool | None, fn):
        assert pool is not None, "start() first"
        delay = 0.05
        for attempt in range(self.attempts):
            try:
                async with pool.acquire(timeout=self.timeout_s) as conn:
                    return await fn(conn)
            except TRANSIENT as exc:
                if pool is self._write and self.writes == "passive" and _is_read_only(exc):
                    raise Passive(
                        "this region is passive: its database is a read replica until it is promoted; "
                        "write through the primary region, or retry after a failover"
                    ) from None
                if isinstance(exc, asyncpg.exceptions.InvalidPasswordError) and self.password is not None:
                    self.password.refused()
                if attempt == self.attempts - 1:
                    raise Unavailable(f"{type(exc).__name__}: {exc}") from None
                await pool.expire_connections()
                await asyncio.sleep(delay)
                delay *= 2

    async def insert_events(self, tenant: str, events: list[tuple[str, dict]]) -> list[int]:
        types = [t for t, _ in events]
        payloads = [json.dumps(p) for _, p in events]

        async def go(conn):
            rows = await conn.fetch(
                "INSERT INTO events (tenant_id, type, payload) SELECT $1, t, p::jsonb FROM unnest($2::text[], $3::text[]) AS x(t, p) RETURNING id",
                tenant,
                types,
                payloads,
            )
            return [r["id"] for r in rows]

        return await self._run(self._write, go)

    async def list_events(self, tenant: str, after: int, limit: int, type_: str | None) -> list[dict]:
        # two statements, not `($3 IS NULL OR type = $3)`: that form gets a generic plan that sorts
        # the tenant's rows instead of walking the (tenant_id, id) index (15x slower at 10k rows);
        # ORDER BY the index's own columns so the walk needs no sort even on stale statistics
        cols = "SELECT id, tenant_id, type, payload::text AS payload, created_at FROM events"

        async def go(conn):
            if type_ is None:
                rows = await conn.fetch(
                    f"{cols} WHERE tenant_id = $1 AND id > $2 ORDER BY tenant_id, id LIMIT $3", tenant, after, limit
                )
            else:
                rows = await conn.fetch(
                    f"{cols} WHERE tenant_id = $1 AND id > $2 AND type = $3 ORDER BY tenant_id, id LIMIT $4",
                    tenant,
                    after,
                    type_,
                    limit,
                )
            return [_row(r) for r in rows]

        return await self._run(self._read, go)

    async def get_event(self, tenant: str, event_id: int) -> dict | None:
        async def go(conn):
            r = await conn.fetchrow(
                "SELECT id, tenant_id, type, payload::text AS payload, created_at FROM events WHERE tenant_id = $1 AND id = $2",
                tenant,
                event_id,
            )
            return _row(r) if r else None

        return await self._run(self._read, go)

    async def health(self) -> dict:
        """What the region can do now: its own node (reachable, its role) and its write path, probed
        at once, each within the timeout. `writes`: `ok` (a writable node), `forwarding` (an Aurora
        secondary that forwards the session's writes), `passive` (a passive region's unpromoted
        replica), `unavailable` (with `write_error`)."""
        assert self._read is not None and self._write is not None

        async def probe(pool: asyncpg.Pool, sql: str):
            try:
                async with pool.acquire(timeout=self.timeout_s) as conn:
                    return await conn.fetchrow(sql, timeout=self.timeout_s), None
            except (*TRANSIENT, asyncpg.PostgresError) as exc:
                if isinstance(exc, asyncpg.exceptions.InvalidPasswordError) and self.password is not None:
                    self.password.refused()
                await pool.expire_connections()
                return None, exc

        (read, read_err), (write, write_err) = await asyncio.gather(
            probe(self._read, "SELECT pg_is_in_recovery() AS standby"),
            # a pooled connection may sit on a node demoted since: target_session_attrs only
            # chose the node when it connected
            probe(
                self._write,
                "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro, "
                f"current_setting('{FORWARDING_SETTING}', true) AS forwarding",
            ),
        )
        out: dict[str, Any] = (
            {"db": "unreachable", "error": _describe(read_err)}
            if read is None
            else {"db": "reachable", "db_role": "replica" if read["standby"] else "primary"}
        )
        out["write_path"] = self.writes
        if write is not None and not write["standby"] and write["ro"] == "off":
            out["writes"] = "ok"
        elif write is not None and self.writes == "forwarded" and (write["forwarding"] or "").lower() in FORWARDING_MODES:
            out["writes"] = "forwarding"
        elif self.writes == "passive" and (
            (write is not None and write["standby"]) or (write is None and _is_read_only(write_err))
        ):
            out["writes"] = "passive"
        else:
            if write is not None:
                await self._write.expire_connections()
                write_err = f"the write DSN reached a read-only node ({FORWARDING_SETTING}: {write['forwarding'] or 'absent'})"
            out.update({"writes": "unavailable", "write_error": _describe(write_err)})
        return out


def _is_read_only(exc: BaseException | None) -> bool:
    """The write path reached only nodes that take no writes (a standby, a demoted primary)."""
    return isinstance(exc, (asyncpg.exceptions.TargetServerAttributeNotMatched, asyncpg.exceptions.ReadOnlySQLTransactionError))


def _describe(err: BaseException | str | None) -> str | None:
    return err if err is None or isinstance(err, str) else f"{type(err).__name__}: {err}"


async def ensure_app_user(admin_dsn: str, user: str, password: str) -> None:
    """Create (or re-password) the API's login role: DML on the schema's tables and sequences,
    no DDL, no role management. Idempotent, so the migration Job can run on every release."""
    if not user.replace("_", "").isalnum():
        raise ValueError(f"application user must be letters, digits and _, got {user!r}")
    conn = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user)
        # a password cannot be a bind parameter in DDL: quote it as a literal on the server side
        literal = await conn.fetchval("SELECT quote_literal($1)", password)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f'{verb} ROLE "{user}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {literal}')
        db = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{user}"')
        await conn.execute(f'GRANT USAGE ON SCHEMA public TO "{user}"')
        await conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{user}"')
        await conn.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{user}"')
    finally:
        await conn.close()


async def migrate(dsn: str, schema_sql: str | None = None) -> None:
    """Apply `schema.sql` (idempotent) on the node `dsn` reaches."""
    from importlib.resources import files

    sql = schema_sql or files("service").joinpath("schema.sql").read_text()
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
