"""The drill lock of a stack: who holds it, until when, and the rules every target's lock follows.

One lock per stack, wherever the drill's records go: the sandbox keeps it in the stack's sandbox
state (`file_acquire` below), AWS in an SSM parameter every operator and CI sees
(`meridian.targets.aws`). Both answer the same way:

- no lock: it is taken;
- a lock past its expiry is stale and taken over (the previous owner is named);
- `--resume` (or `--abandon`) from the host that held it, whose process is gone, takes it over
  (the partial run it resumes or forgets is the one that left it);
- anything else is refused (exit 2) naming the owner, when it expires and how to break it
  (`--break-lock`, after checking that no drill runs).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from meridian.errors import BadInput

ROLLBACK_ALLOWANCE_S = 600.0  # room after the steps' own timeouts for a rollback to finish


class LockHeld(BadInput):
    """Another drill holds the stack's lock (exit 2: wait, or break a stale one explicitly)."""


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class LockOwner:
    """Who runs the drill on the stack: user@host, process, drill, when it started and expires."""

    owner: str
    pid: int
    drill: str
    started: float
    expires: float
    token: str  # this claim's identity: a release or takeover acts only on the claim it read

    @classmethod
    def new(cls, drill: str, ttl_s: float) -> LockOwner:
        now = time.time()
        return cls(_who(), os.getpid(), drill, now, now + ttl_s, uuid.uuid4().hex)

    @classmethod
    def parse(cls, text: str) -> LockOwner | None:
        """The owner a lock holds; None when it is not a lock this program wrote."""
        try:
            doc = json.loads(text)
            return cls(
                str(doc["owner"]),
                int(doc["pid"]),
                str(doc["drill"]),
                float(doc["started"]),
                float(doc["expires"]),
                str(doc["token"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        return f"drill {self.drill} by {self.owner} (pid {self.pid}), started {_utc(self.started)}, expires {_utc(self.expires)}"

    def expired(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) >= self.expires

    def resumable_by(self, claimant: LockOwner) -> bool:
        """Held from the claimant's own host by a process that is gone: a partial run there, which
        `--resume` continues or `--abandon` forgets (the records say which drill it was)."""
        return self.owner == claimant.owner and not pid_alive(self.pid)


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (one we may not signal still runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drill_ttl_s(step_timeouts: list[float]) -> float:
    """A lock outlives the drill that took it: every step's timeout plus room for the rollback."""
    return sum(step_timeouts) + ROLLBACK_ALLOWANCE_S


def takeover_reason(held: LockOwner | None, claimant: LockOwner, *, resume: bool, break_lock: bool, where: str) -> str:
    """Why `claimant` may replace the lock `held` ("" when nothing is held); LockHeld when it may not."""
    if held is None:
        if break_lock:
            return "replaced an unreadable lock"
        raise LockHeld(
            f"the stack's drill lock ({where}) is not readable: check that no drill runs, then rerun with --break-lock"
        )
    if break_lock:
        return f"broke the lock of {held.describe()}"
    if held.expired():
        return f"took over the expired lock of {held.describe()}"
    if resume and held.resumable_by(claimant):
        return f"resumed the lock of {held.describe()}"
    raise LockHeld(
        f"the stack is locked by {held.describe()} ({where}): wait for that drill, or resume it with --resume "
        f"from {held.owner}; if no drill runs (check the stack first), rerun with --break-lock"
    )


def file_acquire(path: Path, claimant: LockOwner, *, resume: bool = False, break_lock: bool = False) -> str:
    """Take the lock file at `path` for `claimant` (created exclusively); what was taken over, if anything."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if _create(path, claimant):
        return ""
    text = _read(path)
    note = ""
    if text is not None:
        note = takeover_reason(LockOwner.parse(text), claimant, resume=resume, break_lock=break_lock, where=str(path))
        if _read(path) == text:  # compare, then remove: only the claim we judged
            path.unlink(missing_ok=True)
    if _create(path, claimant):  # one takeover at most: a lock appearing meanwhile is another drill's
        return note
    held = LockOwner.parse(_read(path) or "")
    raise LockHeld(f"another drill took the stack's lock just now ({held.describe() if held else path}); rerun when it is done")


def _create(path: Path, claimant: LockOwner) -> bool:
    """Create the lock with its content in one step (a hard link of a written file fails if the
    lock exists): no other drill ever reads a lock that is half written."""
    tmp = path.with_name(f".{path.name}.{claimant.token}")
    tmp.write_text(claimant.dumps())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def file_release(path: Path, claimant: LockOwner) -> None:
    """Remove the lock at `path` if it is still `claimant`'s (a broken and retaken lock is left alone)."""
    held = LockOwner.parse(_read(path) or "")
    if held is not None and held.token == claimant.token:
        path.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
