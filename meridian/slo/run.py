"""Run the Locust suite as subprocesses (Locust monkey-patches with gevent: never in this process).

Standalone by default; with `workers=N`, Locust's own master + N workers on this machine (the same
command lines run in-region on EKS, see docs/slo.md). The suite's plugin writes the raw timings,
a per-second progress log and its own verdict into the run directory; `meridian slo` reads them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from meridian.errors import BadInput, GateFailed
from meridian.ports import allocate
from meridian.slo.evaluate import Sample
from meridian.slo.raw import read_raw
from meridian.targets import Target

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
SHAPES = ("flat", "steady", "spike", "soak")


class LoadFailed(GateFailed):
    """Locust itself failed (not the SLO): the message carries its log tail."""


@dataclass(frozen=True)
class LoadSpec:
    shape: str = "steady"
    users: int = 20
    spawn_rate: float = 10.0
    duration_s: float = 30.0
    workers: int = 0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise BadInput(f"unknown shape {self.shape!r} (allowed: {', '.join(SHAPES)})")
        if not 1 <= self.users <= 10_000:
            raise BadInput(f"--users must be 1..10000 (got {self.users})")
        if not self.spawn_rate > 0:
            raise BadInput(f"spawn rate must be > 0 (got {self.spawn_rate})")
        if not 1 <= self.duration_s <= 24 * 3600:
            raise BadInput(f"--duration must be 1..86400 s (got {self.duration_s:g})")
        if not 0 <= self.workers <= 64:
            raise BadInput(f"--workers must be 0..64 (got {self.workers})")


@dataclass
class LocustRun:
    out_dir: Path
    procs: list[subprocess.Popen]
    started: float
    spec: LoadSpec
    _progress_seen: int = 0

    @property
    def running(self) -> bool:
        return self.procs[0].poll() is None

    def progress(self) -> list[dict]:
        """Progress lines written since the last call (one per second of the run)."""
        path = self.out_dir / "progress.jsonl"
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            return []
        new, self._progress_seen = lines[self._progress_seen :], len(lines)
        return [json.loads(ln) for ln in new if ln.strip()]

    def wait(self, timeout: float, on_progress: Callable[[dict], None] | None = None) -> int:
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            for p in self.progress():
                if on_progress:
                    on_progress(p)
            time.sleep(0.25)
        if self.running:
            self.stop()
            raise LoadFailed(f"Locust did not finish within {timeout:g} s; stopped. Log: {self.out_dir / 'locust.log'}")
        for p in self.progress():
            if on_progress:
                on_progress(p)
        for w in self.procs[1:]:
            try:
                w.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.kill()
        return self.procs[0].returncode

    def end_now(self, timeout: float = 30.0) -> int:
        """End an open-ended run gracefully: SIGINT makes Locust fire `quitting` (raw timings and
        its verdict are written) and exit with the verdict. (Locust 2.47 dies on SIGTERM without
        running its handler when started headless from a pipe-less Popen: measured.)"""
        if self.running:
            self.procs[0].send_signal(signal.SIGINT)
        try:
            self.procs[0].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise LoadFailed(
                f"Locust did not stop within {timeout:g} s of SIGINT; killed. Log: {self.out_dir / 'locust.log'}"
            ) from None
        return self.wait(timeout)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    def samples(self) -> list[Sample]:
        raw = self.out_dir / "raw.csv"
        if not raw.exists():
            log_tail = tail(self.out_dir / "locust.log")
            raise LoadFailed(f"Locust wrote no raw timings (exit {self.procs[0].returncode}); log tail:\n{log_tail}")
        return read_raw(raw)


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def start(
    target: Target, project_dir: Path, spec: LoadSpec, out_dir: Path, *, slo_path: Path | None = None, host: str | None = None
) -> LocustRun:
    """Start the suite against `target`'s front door (or `host`, e.g. one region's door); returns at once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("raw.csv", "live.csv", "progress.jsonl", "verdict.json", "windows.json"):
        (out_dir / stale).unlink(missing_ok=True)
    tenants_file = out_dir / "tenants.json"  # holds API keys: owner-only, removed after the run
    fd = os.open(tenants_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([{"id": t.id, "plan": t.plan, "api_key": t.api_key} for t in target.tenants()], f)
    suite = [
        "-f",
        str(LOCUSTFILE),
        "--stack",
        target.stack,
        "--project-dir",
        str(project_dir),
        "--tenants-file",
        str(tenants_file),
        "--shape",
        spec.shape,
    ]
    if slo_path is not None:
        suite += ["--slo", str(slo_path)]
    head = [
        sys.executable,
        "-m",
        "locust",
        "--headless",
        "--host",
        host or target.endpoint(),
        "-u",
        str(spec.users),
        "-r",
        f"{spec.spawn_rate:g}",
        "-t",
        f"{int(round(spec.duration_s))}s",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "2",
        "--raw-out",
        str(out_dir),
        *suite,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(out_dir / "locust.log", "ab")
    argvs = [head]
    if spec.workers:
        port = allocate(["locust-master"])["locust-master"]
        argvs = [
            head
            + [
                "--master",
                "--expect-workers",
                str(spec.workers),
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
            ]
        ]
        argvs += [
            [
                sys.executable,
                "-m",
                "locust",
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
                "--loglevel",
                "WARNING",
                *suite,
            ]
        ] * spec.workers
    procs = [
        subprocess.Popen(a, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=project_dir, env=env)
        for a in argvs
    ]
    log.close()
    return LocustRun(out_dir, procs, time.time(), spec)


def finish(run: LocustRun) -> None:
    (run.out_dir / "tenants.json").unlink(missing_ok=True)
