"""The TCP fault proxy against a local echo server: pass-through, latency, drop, blackhole, control API."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from meridian.sandbox.faultproxy import FaultProxy, Faults, control_handler


async def _echo_server():
    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _setup(**faults):
    echo = await _echo_server()
    proxy = await FaultProxy(("127.0.0.1", echo.sockets[0].getsockname()[1]), faults=Faults(**faults), seed=1).start()
    return echo, proxy


async def _teardown(echo, proxy):
    await proxy.stop()
    echo.close()


async def _roundtrip(port: int, payload: bytes, timeout: float = 5) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        got = b""
        while len(got) < len(payload):
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            got += chunk
        return got
    finally:
        writer.close()


def test_passes_bytes_through_both_ways_in_order():
    async def go():
        echo, proxy = await _setup()
        try:
            payload = bytes(range(256)) * 2000  # 512 KB, several chunks
            assert await _roundtrip(proxy.port, payload) == payload
            results = await asyncio.gather(*(_roundtrip(proxy.port, f"conn {i}".encode() * 100) for i in range(20)))
            assert results == [f"conn {i}".encode() * 100 for i in range(20)]
            assert proxy.stats.connections == 21 and proxy.stats.bytes_up == proxy.stats.bytes_down
        finally:
            await _teardown(echo, proxy)

    asyncio.run(go())


def test_latency_delays_each_direction_and_keeps_order():
    async def go():
        echo, proxy = await _setup(latency_ms=100, jitter_ms=20)
        try:
            t0 = time.monotonic()
            payload = b"x" * 10000
            assert await _roundtrip(proxy.port, payload) == payload
            # lower bound only (injected, not measured machine speed): both directions >= 80 ms each
            assert time.monotonic() - t0 >= 0.16
            proxy.set_faults(latency_ms=0, jitter_ms=0)
            assert await _roundtrip(proxy.port, b"fast") == b"fast"
        finally:
            await _teardown(echo, proxy)

    asyncio.run(go())


def test_drop_resets_new_connections():
    async def go():
        echo, proxy = await _setup(drop=1.0)
        try:
            with pytest.raises((ConnectionResetError, ConnectionError, asyncio.IncompleteReadError, OSError)):
                got = await _roundtrip(proxy.port, b"hello")
                if not got:
                    raise ConnectionResetError("closed without data")
            assert proxy.stats.dropped == 1
            proxy.set_faults(drop=0.0)
            assert await _roundtrip(proxy.port, b"hello") == b"hello"
        finally:
            await _teardown(echo, proxy)

    asyncio.run(go())


def test_blackhole_accepts_but_never_answers_then_lifts():
    async def go():
        echo, proxy = await _setup()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)  # an established connection
            writer.write(b"before")
            assert await asyncio.wait_for(reader.read(100), 5) == b"before"
            proxy.set_faults(blackhole=True)
            writer.write(b"during")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(100), 0.3)
            # new connections: accepted (no refusal), silent
            r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)
            w2.write(b"new")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r2.read(100), 0.3)
            proxy.set_faults(blackhole=False)
            # connections caught in the partition are closed when it lifts
            assert await asyncio.wait_for(r2.read(100), 5) == b""
            w2.close()
            writer.close()
            assert await _roundtrip(proxy.port, b"after") == b"after"
            assert proxy.stats.blackholed >= 2
        finally:
            await _teardown(echo, proxy)

    asyncio.run(go())


def test_upstream_down_resets_the_client():
    async def go():
        echo, proxy = await _setup()
        echo.close()
        await echo.wait_closed()
        try:
            got = b"?"
            try:
                got = await _roundtrip(proxy.port, b"x", timeout=2)
            except (ConnectionError, OSError):
                got = b""
            assert got == b""
            assert proxy.stats.upstream_failures == 1
        finally:
            await proxy.stop()

    asyncio.run(go())


def test_faults_validation():
    base = Faults()
    assert Faults.parse(base, {"latency_ms": 5}).latency_ms == 5.0
    for bad in ({"latency_ms": -1}, {"drop": 1.5}, {"blackhole": "yes"}, {"latency_ms": True}, {"loss": 0.1}, [1]):
        with pytest.raises(ValueError):
            Faults.parse(base, bad)


async def _http(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode() if body is not None else b""
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def test_control_api_over_http():
    async def go():
        echo, proxy = await _setup()
        ctl = await asyncio.start_server(control_handler(proxy), "127.0.0.1", 0)
        port = ctl.sockets[0].getsockname()[1]
        try:
            assert await _http(port, "GET", "/faults") == (
                200,
                {"latency_ms": 0.0, "jitter_ms": 0.0, "drop": 0.0, "blackhole": False},
            )
            code, doc = await _http(port, "PUT", "/faults", {"latency_ms": 50, "drop": 0.25})
            assert code == 200 and doc["latency_ms"] == 50 and proxy.faults.drop == 0.25
            code, doc = await _http(port, "PUT", "/faults", {"drop": 2})
            assert code == 400 and "drop" in doc["error"] and proxy.faults.drop == 0.25
            code, doc = await _http(port, "GET", "/stats")
            assert code == 200 and doc["connections"] == 0
            assert (await _http(port, "POST", "/reset"))[0] == 200
            assert (await _http(port, "GET", "/nope"))[0] == 404
            assert (await _http(port, "DELETE", "/faults"))[0] == 405
        finally:
            ctl.close()
            await _teardown(echo, proxy)

    asyncio.run(go())
