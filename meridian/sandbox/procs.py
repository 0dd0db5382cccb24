"""Processes the sandbox starts: each in its own session (process group = its pid), remembered
by (pid, create time) so a stale pid that the OS has reused is never signalled."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcRef:
    name: str
    pid: int
    create_time: float
    log: str
    # how it was started (argv, user, cwd, env entries that differ from ours): what `respawn` replays
    # when chaos or a drill brings a stopped part back exactly as `up` started it
    launch: dict | None = None

    def to_dict(self) -> dict:
        d = {"pid": self.pid, "create_time": self.create_time, "log": self.log}
        if self.launch is not None:
            d["launch"] = self.launch
        return d

    @classmethod
    def from_dict(cls, name: str, d: dict) -> ProcRef:
        return cls(name, int(d["pid"]), float(d["create_time"]), d.get("log", ""), d.get("launch"))


def spawn(
    name: str, argv: list[str], log: Path, *, user: str | None = None, env: dict | None = None, cwd: Path | None = None
) -> tuple[ProcRef, subprocess.Popen]:
    """Start `argv` in a new session with stdout+stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            env=env,
            cwd=cwd,
            close_fds=True,
        )
    try:
        ct = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        ct = 0.0
    launch = {
        "argv": list(argv),
        "user": user,
        "cwd": str(cwd) if cwd else None,
        "env": {k: v for k, v in (env or {}).items() if os.environ.get(k) != v},
    }
    return ProcRef(name, proc.pid, ct, str(log), launch), proc


def respawn(ref: ProcRef) -> tuple[ProcRef, subprocess.Popen]:
    """Start a stopped part again the way it was first started (same argv, user, cwd, env, log)."""
    if not ref.launch:
        raise ValueError(f"{ref.name} has no launch record (started by an older meridian): restart the sandbox")
    if alive(ref):
        raise ValueError(f"{ref.name} is still running (pid {ref.pid})")
    env = {**os.environ, **ref.launch["env"]} if ref.launch.get("env") else None
    cwd = Path(ref.launch["cwd"]) if ref.launch.get("cwd") else None
    return spawn(ref.name, ref.launch["argv"], Path(ref.log), user=ref.launch.get("user"), env=env, cwd=cwd)


def _process(ref: ProcRef) -> psutil.Process | None:
    """The live process `ref` names, or None (gone, a zombie, or the pid now belongs to another)."""
    try:
        p = psutil.Process(ref.pid)
        if abs(p.create_time() - ref.create_time) > 0.05 or p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(ref: ProcRef) -> bool:
    return _process(ref) is not None


def group_members(pgid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, OSError):
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.pid) == pgid:
                out.append(p)
    return out


def _alive(processes: list[psutil.Process]) -> bool:
    out = False
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            out = out or p.status() != psutil.STATUS_ZOMBIE
    return out


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop(ref: ProcRef, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
    """Stop the process `ref` names and everything in its process group; True if it was running.

    Sends `sig` to the leader, waits up to `timeout`, then SIGKILLs the group. Only a group whose
    leader is still the very process started (pid and create time) is signalled.
    """
    return stop_outcome(ref, sig, timeout) != "not running"


def stop_outcome(ref: ProcRef, sig: int = signal.SIGTERM, timeout: float = 10.0) -> str:
    """`stop`, saying how it went: "not running", "stopped" (by `sig` within `timeout`) or "forced"
    (the group was SIGKILLed: a clean shutdown that did not finish)."""
    p = _process(ref)
    pgid = ref.pid
    if p is None:
        _reap(ref.pid)
        # the leader is gone (a crash): orphans may live on in its group. While a group has members
        # its id cannot be reused as a pid, so with no process of that pid they are ours.
        if not psutil.pid_exists(pgid):
            for member in group_members(pgid):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    member.kill()
        return "not running"
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        p.send_signal(sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _process(ref) is not None:
        _reap(ref.pid)
        time.sleep(0.02)
    leader = _process(ref)
    forced = leader is not None
    # PostgreSQL's children each call setsid(): the group alone misses them. Take the leader's
    # descendants before the leader dies (then they are init's and nobody's to find).
    descendants = []
    if leader is not None:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            descendants = leader.children(recursive=True)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            child.kill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (group_members(pgid) or _process(ref) is not None or _alive(descendants)):
        _reap(ref.pid)
        time.sleep(0.02)
    _reap(ref.pid)
    return "forced" if forced else "stopped"


def tail(path: str | Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
