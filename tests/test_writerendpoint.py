"""The sandbox's stand-in for Aurora's cluster (writer) endpoints: each new connection goes to the node
the writer file names now; re-pointing it (a promotion) cuts the open connections, as a failover
drops the endpoint's; a writer that is down refuses at connect."""

from __future__ import annotations

import asyncio
from pathlib import Path

from meridian.sandbox.writerendpoint import WriterEndpoint, point


async def _node(tag: bytes) -> asyncio.Server:
    async def answer(reader, writer):
        while data := await reader.read(100):
            writer.write(tag + data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def _ask(port: int, what: bytes = b"?") -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(what)
    await writer.drain()
    return reader, writer, await asyncio.wait_for(reader.read(100), 2)


def test_connections_follow_the_writer_file_and_a_repoint_cuts_open_ones(tmp_path: Path):
    async def go() -> None:
        a, b = await _node(b"A"), await _node(b"B")
        port_of = {s: s.sockets[0].getsockname()[1] for s in (a, b)}
        writer_file = tmp_path / "writer"
        point(writer_file, f"127.0.0.1:{port_of[a]}")
        endpoint = WriterEndpoint(writer_file)
        server = await asyncio.start_server(endpoint.on_client, "127.0.0.1", 0)
        watcher = asyncio.create_task(endpoint.watch())
        port = server.sockets[0].getsockname()[1]
        try:
            old_reader, old_writer, got = await _ask(port)
            assert got == b"A?"
            point(writer_file, f"127.0.0.1:{port_of[b]}")  # a promotion
            assert await asyncio.wait_for(old_reader.read(100), 2) == b""  # the open connection was cut
            assert (await _ask(port))[2] == b"B?"
            b.close()
            await b.wait_closed()
            reader, _, got = await _ask(port)
            assert got == b""  # the writer is down: closed at once, nothing answers
            old_writer.close()
        finally:
            watcher.cancel()
            server.close()
            a.close()

    asyncio.run(go())
