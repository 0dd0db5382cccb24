"""PostgreSQL for the sandbox: binaries, a primary cluster, a streaming replica, promotion, lag.

Each cluster is our own (initdb dirs under the sandbox root, our own ports, unix sockets in the
data dir): nothing here touches a cluster the Debian package may have created on 5432. As root,
every server tool runs as the `postgres` user.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "meridian"
APP_USER = "meridian"
REPL_USER = "replicator"
SERVER_TOOLS = ("initdb", "postgres", "pg_basebackup")


class PostgresMissing(Exception):
    pass


@dataclass(frozen=True)
class PgBin:
    bindir: Path
    version: str

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _version_key(path: str) -> tuple:
    m = re.search(r"/(\d+)(?:\.(\d+))?/bin$", path)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def find_pg() -> PgBin:
    """Server binaries: $MERIDIAN_PG_BINDIR, else the newest /usr/lib/postgresql/*/bin, else PATH."""
    candidates: list[Path] = []
    if os.environ.get("MERIDIAN_PG_BINDIR"):
        candidates.append(Path(os.environ["MERIDIAN_PG_BINDIR"]))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    for bindir in candidates:
        if all(os.access(bindir / t, os.X_OK) for t in SERVER_TOOLS):
            out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10)
            return PgBin(bindir, out.stdout.strip().split()[-1] if out.returncode == 0 else "?")
    raise PostgresMissing(
        "PostgreSQL server binaries (initdb, postgres, pg_basebackup) not found: install the Debian package "
        "(`apt-get install -y postgresql`) or set MERIDIAN_PG_BINDIR"
    )


def run_as() -> str | None:
    """The user to run server tools as: `postgres` when we are root (postgres refuses root), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing(
            "running as root needs a `postgres` user to run the servers (the Debian package creates it)"
        ) from None
    return "postgres"


def check_traversable(path: Path, user: str | None) -> None:
    """The server user must reach `path`: every ancestor executable by it."""
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for d in [path, *path.parents]:
        if not d.exists():
            continue
        st = d.stat()
        if st.st_uid == pw.pw_uid and st.st_mode & stat.S_IXUSR:
            continue
        if st.st_gid == pw.pw_gid and st.st_mode & stat.S_IXGRP:
            continue
        if st.st_mode & stat.S_IXOTH:
            continue
        raise PermissionError(
            f"user {user} cannot reach {path}: {d} is not searchable by it (chmod o+x {d}, or pick another --state-dir)"
        )


def chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for root, _dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for n in files:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


def run_tool(pg: PgBin, user: str | None, argv: list[str], timeout: float = 60) -> None:
    proc = subprocess.run(
        [pg.tool(argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        user=user,
        group=user,
        extra_groups=[] if user else None,
        cwd="/",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")


def ensure_tls(data_dir: Path, user: str | None) -> None:
    """TLS on (self-signed, once per data dir): the services' DSNs demand `sslmode=require`, as RDS
    with `rds.force_ssl` does. A replica's base backup copies the certificate and the setting."""
    if (data_dir / "server.crt").exists():
        return
    openssl = shutil.which("openssl")
    if openssl is None:
        raise PostgresMissing("openssl not found: the sandbox's PostgreSQL needs a certificate (`apt-get install -y openssl`)")
    key, crt = data_dir / "server.key", data_dir / "server.crt"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=127.0.0.1",
        ]
        + ["-keyout", str(key), "-out", str(crt)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    os.chmod(key, 0o600)
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
    chown_tree(data_dir, user)


async def ensure_role(port: int, role: str) -> None:
    """The database's master user as the plan names it (RDS's master is `rds_superuser`; here a superuser)."""
    import asyncpg

    conn = await asyncpg.connect(dsn(port, "postgres", "postgres"), timeout=10)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await conn.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
    finally:
        await conn.close()


def initdb(pg: PgBin, user: str | None, data_dir: Path) -> None:
    run_tool(pg, user, ["initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
    # loopback only, trust: a local sandbox. (initdb's trust lines cover 127.0.0.1 and replication.)
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write(PRIMARY_CONF)


# fsync off: a process crash loses nothing committed (the OS has it), only a machine crash would;
# synchronous_commit stays on so RPO measured here means what it means in production.
PRIMARY_CONF = """
# --- meridian sandbox ---
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
fsync = off
full_page_writes = off
synchronous_commit = on
shared_buffers = '64MB'
max_connections = 100
wal_receiver_status_interval = '1s'
# a replica whose primary went away retries every this long, and only notices pg_promote between
# retries: the 5 s default would add up to 5 s to every promotion in failover drills
wal_retrieve_retry_interval = '100ms'
logging_collector = off
# small, fast-changing tables: analyze within seconds, or fresh data is planned on empty-table stats
autovacuum_naptime = '2s'
log_min_messages = warning
"""


def server_argv(pg: PgBin, data_dir: Path, port: int) -> list[str]:
    # port and socket dir on the command line: they change every `up`, the data dir stays
    return [
        pg.tool("postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-c",
        f"unix_socket_directories={data_dir}",
        "-c",
        "listen_addresses=127.0.0.1",
    ]


def basebackup(pg: PgBin, user: str | None, primary_port: int, data_dir: Path, app_name: str) -> None:
    """A streaming replica of the primary at `primary_port` in `data_dir` (standby.signal written)."""
    run_tool(
        pg,
        user,
        [
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary_port),
            "-U",
            REPL_USER,
            "-D",
            str(data_dir),
            "-X",
            "stream",
            "-c",
            "fast",
            "-R",
            "--no-sync",
            "-d",
            f"application_name={app_name}",
        ],
        timeout=120,
    )


def dsn(port: int, user: str = APP_USER, db: str = DB_NAME) -> str:
    return f"postgresql://{user}@127.0.0.1:{port}/{db}"


def multi_host_dsn(ports: list[int], user: str = APP_USER, db: str = DB_NAME) -> str:
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    return f"postgresql://{user}@{hosts}/{db}?target_session_attrs=read-write"


async def bootstrap(port: int) -> None:
    """Roles, database and schema on a fresh primary (idempotent)."""
    import asyncpg

    from service.store import migrate

    conn = await asyncpg.connect(dsn(port, "postgres", "postgres"), timeout=10)
    try:
        roles = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
        if APP_USER not in roles:
            await conn.execute(f"CREATE ROLE {APP_USER} LOGIN")
        if REPL_USER not in roles:
            await conn.execute(f"CREATE ROLE {REPL_USER} LOGIN REPLICATION")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME):
            await conn.execute(f"CREATE DATABASE {DB_NAME} OWNER {APP_USER}")
    finally:
        await conn.close()
    await migrate(dsn(port))


async def wait_ready(port: int, timeout: float, proc=None) -> None:
    """Until the server at `port` accepts a query (raise TimeoutError, or RuntimeError if `proc` died)."""
    import asyncpg

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Exception | None = None
    while loop.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode}")
        try:
            conn = await asyncpg.connect(dsn(port, "postgres", "postgres"), timeout=1)
            await conn.close()
            return
        except Exception as exc:  # starting up, not listening yet
            last = exc
            await asyncio.sleep(0.05)
    raise TimeoutError(f"not ready after {timeout:g} s ({type(last).__name__}: {last})")


async def role_of(port: int, timeout: float = 2.0) -> str:
    import asyncpg

    conn = await asyncpg.connect(dsn(port, "postgres", "postgres"), timeout=timeout)
    try:
        return "replica" if await conn.fetchval("SELECT pg_is_in_recovery()", timeout=timeout) else "primary"
    finally:
        await conn.close()


async def replication(port: int, timeout: float = 2.0) -> list[dict]:
    """`pg_stat_replication` on the primary at `port`: per standby, state and lag (bytes, seconds)."""
    import asyncpg

    conn = await asyncpg.connect(dsn(port, "postgres", "postgres"), timeout=timeout)
    try:
        rows = await conn.fetch(
            "SELECT application_name, state, sync_state,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,"
            " EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_s"
            " FROM pg_stat_replication",
            timeout=timeout,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def replay_age_s(port: int, timeout: float = 2.0) -> float:
    """On the replica at `port`: seconds since it last replayed a transaction, or since it started
    when it has replayed none yet (a replica stalled from its start is behind all that time)."""
    import asyncpg

    conn = await asyncpg.connect(dsn(port, "postgres", "postgres"), timeout=timeout)
    try:
        return await conn.fetchval(
            "SELECT EXTRACT(EPOCH FROM clock_timestamp()"
            " - COALESCE(pg_last_xact_replay_timestamp(), pg_postmaster_start_time()))::float8",
            timeout=timeout,
        )
    finally:
        await conn.close()


async def replication_lag(primary_port: int, replica_port: int, timeout: float = 2.0) -> tuple[float | None, int | None]:
    """(seconds, bytes) the replica is behind the primary. Bytes from the primary's current WAL
    position against the standby's replay position (`pg_stat_replication`); seconds, while bytes
    are behind, from the replica's last replayed transaction. Not `replay_lag`: it keeps its last
    value while a stream is stalled and is NULL when idle. (None, None): no standby streams."""
    rows = [r for r in await replication(primary_port, timeout) if r["state"] == "streaming"]
    if not rows or any(r["lag_bytes"] is None for r in rows):
        return None, None
    behind = max(int(r["lag_bytes"]) for r in rows)
    if behind <= 0:
        return 0.0, 0
    return max(0.0, await replay_age_s(replica_port, timeout)), behind


async def promote(port: int, timeout: float = 10.0) -> None:
    """Promote the replica at `port` (pg_promote waits until it is a primary)."""
    import asyncpg

    conn = await asyncpg.connect(dsn(port, "postgres", "postgres"), timeout=timeout)
    try:
        ok = await conn.fetchval("SELECT pg_promote(true, $1)", int(timeout), timeout=timeout + 1)
    finally:
        await conn.close()
    if not ok:
        raise RuntimeError(f"pg_promote on port {port} did not finish in {timeout:g} s")
