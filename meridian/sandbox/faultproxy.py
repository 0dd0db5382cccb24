"""A TCP fault proxy (asyncio): put it in front of a database or a service to inject faults.

Faults, changeable at run time:
- `latency_ms` + `jitter_ms`: every chunk, each direction, is delayed by latency +/- jitter
  (uniform), order kept;
- `drop`: probability (0..1) that a new connection is reset at once (RST), as a lossy link would;
- `blackhole`: nothing is forwarded any more, and new connections are accepted but never answered
  (a partition: peers see timeouts, not refusals). Connections caught in it are closed when it lifts.

Control: in-process through `FaultProxy.set_faults(...)`, or over HTTP on the control port
(`GET /faults`, `PUT /faults` with a JSON object of the fields to change, `GET /stats`,
`POST /reset` to cut every open connection). Run alone:

    python -m meridian.sandbox.faultproxy --listen 127.0.0.1:7000 --upstream 127.0.0.1:5432 --control 127.0.0.1:7001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import socket
import struct
import time
from dataclasses import asdict, dataclass, fields, replace

CHUNK = 65536


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    drop: float = 0.0
    blackhole: bool = False

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must be >= 0")
        if not 0.0 <= self.drop <= 1.0:
            raise ValueError("drop must be a probability in 0..1")

    @classmethod
    def parse(cls, base: Faults, changes: dict) -> Faults:
        """`base` with `changes` applied; unknown keys and wrong types raise ValueError."""
        if not isinstance(changes, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)} (allowed: {', '.join(known)})")
        clean = {}
        for k, v in changes.items():
            if k == "blackhole":
                if not isinstance(v, bool):
                    raise ValueError("blackhole must be true or false")
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{k} must be a number")
            clean[k] = float(v) if k != "blackhole" else v
        return replace(base, **clean)

    def delay_s(self, rng: random.Random) -> float:
        if self.latency_ms == 0 and self.jitter_ms == 0:
            return 0.0
        return max(0.0, self.latency_ms + rng.uniform(-self.jitter_ms, self.jitter_ms)) / 1000.0


@dataclass
class Stats:
    connections: int = 0
    active: int = 0
    dropped: int = 0
    blackholed: int = 0
    upstream_failures: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(
        self,
        upstream: tuple[str, int],
        listen: tuple[str, int] = ("127.0.0.1", 0),
        faults: Faults = Faults(),
        seed: int | None = None,
    ):
        self.upstream = upstream
        self.listen = listen
        self.faults = faults
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task] = set()
        self._unblackholed = asyncio.Event()
        self._unblackholed.set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._on_client, *self.listen, reuse_address=True, backlog=1024)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset_connections()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def set_faults(self, **changes) -> Faults:
        self.faults = Faults.parse(self.faults, changes)
        if self.faults.blackhole:
            self._unblackholed.clear()
        else:
            self._unblackholed.set()
        return self.faults

    def reset_connections(self) -> int:
        n = 0
        for task in list(self._conns):
            task.cancel()
            n += 1
        return n

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self.stats.connections += 1
        self.stats.active += 1
        up_writer = None
        try:
            f = self.faults
            if f.drop and self._rng.random() < f.drop:
                self.stats.dropped += 1
                _reset(writer)
                return
            if f.blackhole:
                self.stats.blackholed += 1
                await self._swallow(reader)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                self.stats.upstream_failures += 1
                _reset(writer)
                return
            pumps = [
                asyncio.create_task(self._pump(reader, up_writer, "bytes_up")),
                asyncio.create_task(self._pump(up_reader, writer, "bytes_down")),
            ]
            try:
                done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                # one side closed: give the other a moment to flush what is in flight, then close
                if pending:
                    await asyncio.wait(pending, timeout=1.0)
            finally:
                for p in pumps:
                    p.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except asyncio.CancelledError:
            writer.transport.abort()
            if up_writer is not None:
                up_writer.transport.abort()
        finally:
            self.stats.active -= 1
            self._conns.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        """Read and discard until the peer leaves or the blackhole lifts (then the connection is closed)."""
        lifted = asyncio.create_task(self._unblackholed.wait())
        try:
            while True:
                read = asyncio.create_task(reader.read(CHUNK))
                done, _ = await asyncio.wait({read, lifted}, return_when=asyncio.FIRST_COMPLETED)
                if lifted in done:
                    read.cancel()
                    return
                if not read.result():
                    return
        finally:
            lifted.cancel()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: str) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer))
        last_due = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                if self.faults.blackhole:
                    # caught in a partition: swallow what comes, close once it lifts
                    await self._swallow_inline(reader)
                    return
                if not data:
                    break
                due = max(last_due, time.monotonic() + self.faults.delay_s(self._rng))
                last_due = due
                setattr(self.stats, counter, getattr(self.stats, counter) + len(data))
                queue.put_nowait((due, data))
            queue.put_nowait((last_due, None))
            await sender
        finally:
            sender.cancel()

    async def _swallow_inline(self, reader: asyncio.StreamReader) -> None:
        self.stats.blackholed += 1
        await self._swallow(reader)

    @staticmethod
    async def _send(queue: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                with contextlib.suppress(OSError, RuntimeError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(data)
            await writer.drain()


# --- control over HTTP ---------------------------------------------------------------------------


async def _http_reply(writer: asyncio.StreamWriter, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        f"Connection: close\r\n\r\n".encode()
        + data
    )
    with contextlib.suppress(Exception):
        await writer.drain()
        writer.close()


def control_handler(proxy: FaultProxy):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            length = int(headers.get("content-length", "0"))
            if length > 65536:
                return await _http_reply(writer, 400, {"error": "body too large"})
            body = await asyncio.wait_for(reader.readexactly(length), 5) if length else b""
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return await _http_reply(writer, 400, {"error": "bad request"})
        if path == "/faults" and method == "GET":
            return await _http_reply(writer, 200, asdict(proxy.faults))
        if path == "/faults" and method in ("PUT", "POST", "PATCH"):
            try:
                faults = proxy.set_faults(**json.loads(body or b"{}"))
            except (ValueError, TypeError) as exc:
                return await _http_reply(writer, 400, {"error": str(exc)})
            return await _http_reply(writer, 200, asdict(faults))
        if path == "/stats" and method == "GET":
            return await _http_reply(writer, 200, {**asdict(proxy.stats), "upstream": f"{proxy.upstream[0]}:{proxy.upstream[1]}"})
        if path == "/reset" and method == "POST":
            return await _http_reply(writer, 200, {"reset": proxy.reset_connections()})
        if path in ("/faults", "/stats", "/reset"):
            return await _http_reply(writer, 405, {"error": f"{method} not allowed on {path}"})
        return await _http_reply(writer, 404, {"error": f"no {path}: use /faults, /stats, /reset"})

    return handle


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(listen: tuple[str, int], upstream: tuple[str, int], control: tuple[str, int] | None, faults: Faults) -> None:
    proxy = await FaultProxy(upstream, listen, faults).start()
    ctl = await asyncio.start_server(control_handler(proxy), *control, reuse_address=True) if control else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        json.dumps(
            {
                "msg": "faultproxy listening",
                "port": proxy.port,
                "upstream": f"{upstream[0]}:{upstream[1]}",
                "control": ctl.sockets[0].getsockname()[1] if ctl else None,
            }
        ),
        flush=True,
    )
    await stop.wait()
    if ctl:
        ctl.close()
    await proxy.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m meridian.sandbox.faultproxy", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, type=_addr, help="HOST:PORT to accept on")
    p.add_argument("--upstream", required=True, type=_addr, help="HOST:PORT to forward to")
    p.add_argument("--control", type=_addr, help="HOST:PORT of the HTTP control API")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--drop", type=float, default=0.0)
    args = p.parse_args(argv)
    try:
        faults = Faults(args.latency_ms, args.jitter_ms, args.drop)
    except ValueError as exc:
        p.error(str(exc))
    asyncio.run(serve(args.listen, args.upstream, args.control, faults))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
