"""Free TCP ports on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket

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


def allocate(names: list[str] | tuple[str, ...], host: str = HOST, avoid: set[int] = frozenset()) -> dict[str, int]:
    """One distinct free port per name, chosen by the kernel (bind to port 0), all held open until
    every one is chosen so none repeats; ports in `avoid` (e.g. a stale manifest's) are skipped."""
    if len(set(names)) != len(names):
        raise ValueError(f"port names must be unique: {names}")
    held: list[socket.socket] = []
    out: dict[str, int] = {}
    try:
        for name in names:
            for _ in range(50):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((host, 0))
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
