"""The sandbox's stand-in for the cluster (writer) endpoints of an Aurora global database.

On AWS each region's pods write through their own cluster's endpoint: the global writer's own, or a
secondary's, which forwards the writes to the writer (global write forwarding); a switchover or
failover changes which cluster writes, and the endpoints' connections are dropped. PostgreSQL has
no forwarding, so the sandbox stands in for both endpoints with one TCP proxy that connects each
new connection to whichever node is the writer now, named in a file the sandbox rewrites when it
promotes a node (`point`); when the writer changes, open connections are cut, as at a failover.

What differs from AWS, and only here: a session through it lands on the writer itself, so it
answers writable to the service's check, where an Aurora secondary answers read-only with
forwarding on; and while the writer is down, a connection fails at connect, where a secondary
accepts it and fails the forwarded write (docs/sandbox.md).

    python -m meridian.sandbox.writerendpoint --listen 127.0.0.1:7000 --writer-file etc/writer
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path

CHUNK = 65536
POLL_S = 0.05


def point(writer_file: Path, address: str) -> None:
    """Name the node writes go to now (`host:port`), atomically."""
    tmp = writer_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(address)
    os.replace(tmp, writer_file)


def _read(writer_file: Path) -> tuple[str, int] | None:
    try:
        host, _, port = writer_file.read_text().strip().rpartition(":")
        return host, int(port)
    except (OSError, ValueError):
        return None


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


class WriterEndpoint:
    def __init__(self, writer_file: Path):
        self.writer_file = writer_file
        self.writer = _read(writer_file)
        self.conns: set[asyncio.Task] = set()

    def _refresh(self) -> None:
        now = _read(self.writer_file)
        if now != self.writer:
            self.writer = now
            for task in list(self.conns):  # as a failover drops the endpoint's connections
                task.cancel()

    async def watch(self) -> None:
        while True:
            self._refresh()
            await asyncio.sleep(POLL_S)

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.conns.add(task)
        up_writer = None
        try:
            self._refresh()
            if self.writer is None:
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.writer)
            except OSError:
                return  # the writer is down: the connection fails, as the endpoint's would
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except asyncio.CancelledError:
            pass
        finally:
            self.conns.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    with contextlib.suppress(OSError):
                        w.close()


async def serve(listen: tuple[str, int], writer_file: Path) -> None:
    endpoint = WriterEndpoint(writer_file)
    server = await asyncio.start_server(endpoint.on_client, *listen, reuse_address=True, backlog=1024)
    watcher = asyncio.create_task(endpoint.watch())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    watcher.cancel()
    server.close()
    for task in list(endpoint.conns):
        task.cancel()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m meridian.sandbox.writerendpoint", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, help="HOST:PORT to accept on")
    p.add_argument("--writer-file", required=True, type=Path, help="file naming the writer's HOST:PORT")
    args = p.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    asyncio.run(serve((host or "127.0.0.1", int(port)), args.writer_file))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
