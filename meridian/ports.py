"""Free TCP ports on 127.0.0.1, for the sandbox's parts and for Locust's master (below both)."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path

HOST = "127.0.0.1"


def is_free(port: int, host: str = HOST) -> bool:
    """True if nothing listens on `port` and it can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) != 0


def is_listening(port: int, host: str = HOST, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
LOWEST = 15000  # below the well-known services people run locally on 8000-9999 and friends


def ephemeral_range(path: str = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's range for outgoing connections' source ports (Linux's default when unreadable)."""
    try:
        low, high = (int(x) for x in Path(path).read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def allocate(names: list[str] | tuple[str, ...], host: str = HOST, avoid: set[int] = frozenset()) -> dict[str, int]:
    """One distinct free port per name, all held open until every one is chosen so none repeats;
    ports in `avoid` (e.g. a stale manifest's) are skipped.

    Chosen at random below the kernel's ephemeral range: a port from bind(0) lies inside it, and
    between its release here and the service binding it, any outgoing connection on the machine (a
    test client, another sandbox's proxy) may take it as a source port: EADDRINUSE at start."""
    if len(set(names)) != len(names):
        raise ValueError(f"port names must be unique: {names}")
    low, _ = ephemeral_range()
    pool = range(LOWEST, low) if low - LOWEST >= 1000 else None
    rng = random.SystemRandom()
    held: list[socket.socket] = []
    out: dict[str, int] = {}
    try:
        for name in names:
            for _ in range(200):
                port = rng.choice(pool) if pool is not None else 0
                if port in avoid or port in out.values():
                    continue
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind((host, port))
                except OSError:
                    s.close()
                    continue
                held.append(s)
                port = s.getsockname()[1]
                if port not in avoid and port not in out.values():
                    out[name] = port
                    break
            else:
                raise OSError(f"no free port for {name} on {host}")
    finally:
        for s in held:
            with contextlib.suppress(OSError):
                s.close()
    return out
