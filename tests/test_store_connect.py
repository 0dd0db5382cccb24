"""The write pool's connect timeout covers every host of a multi-host DSN (the primary region's
cluster endpoint, then the same cluster's reader endpoint that forwards writes after a switchover)."""

from __future__ import annotations

import asyncio

import asyncpg

from service.store import PgStore, dsn_hosts


def test_hosts_of_a_dsn_in_order():
    dsn = "postgresql://meridian_app@writer.cluster-x.us-east-1.rds.amazonaws.com:5432,reader.cluster-ro-x.us-east-1.rds.amazonaws.com:5432/app?sslmode=verify-full"
    assert dsn_hosts(dsn) == [
        "writer.cluster-x.us-east-1.rds.amazonaws.com:5432",
        "reader.cluster-ro-x.us-east-1.rds.amazonaws.com:5432",
    ]
    assert dsn_hosts("postgresql://u:p@db:5432/app") == ["db:5432"]


def test_each_host_gets_the_whole_connect_timeout(monkeypatch):
    """asyncpg spends one `timeout` across all hosts: with 2 s in all, a first host that swallows
    packets uses it up and the second is never tried."""
    seen: dict[str, float] = {}

    async def create_pool(dsn, **kw):
        seen[dsn] = kw["timeout"]
        return object()

    monkeypatch.setattr(asyncpg, "create_pool", create_pool)
    write = "postgresql://u@a:5432,b:5432/app"
    read = "postgresql://u@r:5432/app"
    asyncio.run(PgStore(write, read, timeout_s=2.0).start())
    assert seen == {write: 4.0, read: 2.0}
