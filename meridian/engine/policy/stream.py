"""Streaming registrations to the analyzer while the program runs, and AnalyzeStack split over processes."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from meridian.engine.policy.analyzer import Analyzer, _cpu_seconds, stop_process
from meridian.engine.policy.config import PackInfo, PolicyPackError, effective_config
from meridian.engine.policy.relay import CONTEXT, DONE, FAILED, HELLO, STACK, STACK_TYPE, frame, read_frame, subject_frame
from meridian.engine.policy.report import PolicyReport, PolicyTimings
from meridian.engine.policy.wire import Subject, Violation, _violations

# The stack rule that costs most of AnalyzeStack at scale: `tenant-data-access` evaluates every
# session against every tenant resource it could reach (measured at 1,000 tenants, 26,135
# resources: 11.7 s of the 15 s all stack rules take together, the next 0.7 s). It runs alone on
# the last shard, every other stack rule on the others, so the shards finish close together.
HEAVY_STACK_POLICIES = ("tenant-data-access",)


def shard_config(
    pack: PackInfo, config: Mapping[str, tuple[str, dict[str, Any]]], shard: int, shards: int
) -> dict[str, tuple[str, dict[str, Any]]]:
    """The config one analyzer of `shards` runs: shard 0 runs every resource policy and its share of
    the stack policies; the others only their share of the stack policies. AnalyzeStack costs the
    SDK a full decode of every resource per stack policy, so splitting the stack policies over
    processes divides its wall time (the resource policies run hidden, during the program)."""
    stack_policies = [p.name for p in pack.policies if p.kind == "stack"]
    heavy = [name for name in stack_policies if name in HEAVY_STACK_POLICIES]
    light = [name for name in stack_policies if name not in HEAVY_STACK_POLICIES]
    if heavy and shards > 1:  # the heavy ones alone on the last shard; the rest shared by the others
        mine = set(heavy) if shard == shards - 1 else {n for i, n in enumerate(light) if i % (shards - 1) == shard}
    else:  # shard 0 also finishes the Analyze backlog: give it the smaller share
        mine = {name for i, name in enumerate(stack_policies) if (len(stack_policies) - 1 - i) % shards == shard}
    out = {}
    for p in pack.policies:
        level, props = config[p.name]
        runs_here = p.name in mine if p.kind == "stack" else shard == 0
        out[p.name] = (level if runs_here else "disabled", props)
    return out


def stack_shards(cores: int | None = None) -> int:
    """Processes AnalyzeStack is split over: one per core the preview has to itself (`cores`, default
    every core of the machine), at most 2 (beyond that, startup eats the gain). With one core, a
    second shard saves no time and costs its own startup and its own decoding of the whole stack
    (a zone's workers keep every core busy: `meridian preview --zone`)."""
    return max(1, min(2, (os.cpu_count() or 1) if cores is None else cores))


PIPE_BYTES = 1 << 20  # the relay's stdin: a burst of registrations the program writes without waiting

# Resources from which a second analyzer pays off (AnalyzeStack ~1 ms per resource on one process).
HELPER_THRESHOLD = 1000


class PolicyStream:
    """Feeds registrations to the analyzer as the program makes them.

    `on_register` runs in the SDK's monitor thread: it writes the registration to the relay
    (`engine.policy.relay`, a process of its own) and returns, so neither the gRPC calls nor their
    answers take the GIL from the program; the relay makes the Analyze calls on the other core while
    the SDK builds the next resource. Until the analyzer is up and configured (a background thread
    does that while the program imports), registrations wait in a backlog. `close()` marks the
    program done; the background thread then configures the shards, has the relay send
    AnalyzeStack and reads back every answer while the caller renders; `finish()` returns the report."""

    def __init__(
        self,
        analyzer: Analyzer,
        file_config: Mapping[str, Any],
        config_source: Path,
        stack: str,
        helpers: Sequence[Analyzer] = (),
        helper_factory: Callable[[], Analyzer] | None = None,
        helper_threshold: int = HELPER_THRESHOLD,
        context: Sequence[Subject] = (),
    ):
        self.analyzer = analyzer
        # Another stack's resources the stack rules see beside this stack's (a cell's platform, whose
        # parts the cell uses): in AnalyzeStack only, never analyzed one by one, and no verdict on
        # them kept (that stack's own preview judges them).
        self._context = list(context)
        self._context_urns = frozenset(s.urn for s in self._context)
        self.helpers = list(helpers)  # more analyzers of the same pack, each running a share of the stack policies
        # A large stack gets its helper once it has `helper_threshold` resources: it starts while the
        # program still runs, and small stacks never pay for a second process.
        self._helper_factory = helper_factory
        self._helper_threshold = helper_threshold
        self._file_config = file_config
        self._source = config_source
        self._stack = stack
        self._lock = threading.Lock()  # held while a registration is written: frames in registration order
        self._live = False
        self._backlog: list[Subject] = []
        self._registered = 0
        self._violations: list[Violation] = []
        self._error: BaseException | None = None
        self._analyzed = 0
        self._stack_s = 0.0
        self._closed = threading.Event()
        self._closed_at: float | None = None
        self._cpu_at_close: float | None = None
        self._relay = Relay()
        self._thread = threading.Thread(target=self._run, name="policy-stream", daemon=True)
        self._thread.start()

    def on_register(self, reg: Any) -> None:
        subject = Subject.from_registration(reg)
        if self._helper_factory is not None and self._registered >= self._helper_threshold:
            factory, self._helper_factory = self._helper_factory, None
            self.helpers.append(factory())
        with self._lock:
            self._registered += 1
            if not self._live:
                self._backlog.append(subject)
                return
            self._send(subject)

    def _send(self, subject: Subject) -> None:
        """Hand one registration to the relay (the caller holds the lock)."""
        if self._error is not None:
            return
        try:
            self._relay.send(subject_frame(subject))
        except PolicyPackError as exc:  # the relay is gone: finish() reports why
            self._error = exc
            return
        if subject.type != STACK_TYPE:
            self._analyzed += 1

    def _run(self) -> None:
        try:
            info = self.analyzer.wait_ready()
            config = effective_config(info, self._file_config, self._source)
            # Until close, shard 0 runs every policy: Analyze only runs resource policies anyway.
            self.analyzer.configure(config, stack=self._stack)
            with self._lock:
                self._relay.send(frame(HELLO, pickle.dumps(self.analyzer.port)))
                backlog, self._backlog, self._live = self._backlog, [], True
                for subject in backlog:
                    self._send(subject)
            self._closed.wait()
            if self._error is not None:
                return
            shards = 1 + len(self.helpers)
            if shards > 1:
                self.analyzer.configure(shard_config(info, config, 0, shards), stack=self._stack)
                for i, helper in enumerate(self.helpers, start=1):
                    helper.wait_ready()
                    helper.configure(shard_config(info, config, i, shards), stack=self._stack)
            stack_started = time.perf_counter()
            with self._lock:  # every registration is written: the relay may build the stack
                for subject in self._context:  # another stack's resources, for AnalyzeStack only
                    self._relay.send(subject_frame(subject, CONTEXT))
                self._relay.send(frame(STACK, pickle.dumps([a.port for a in (*self.helpers, self.analyzer)])))
            self._violations += [v for v in self._relay.answers() if v.urn not in self._context_urns]
            self._stack_s = time.perf_counter() - stack_started
        except BaseException as exc:  # handed to finish(), in the main thread
            self._error = exc

    def close(self) -> None:
        """The program is done: no more registrations. Evaluation finishes in the background
        (the relay's Analyze backlog, then AnalyzeStack) while the caller renders the rest of its report."""
        if self._closed_at is None:
            self._closed_at = time.perf_counter()
            self._cpu_at_close = self._cpu()
            self._closed.set()

    def stop(self) -> None:
        """Stop the relay whatever happened (the analyzers are stopped by their own context)."""
        self._relay.stop()

    def _cpu(self) -> float | None:
        """CPU seconds of all the analyzers together."""
        values = [a.cpu_seconds() for a in (self.analyzer, *self.helpers)]
        return None if None in values else sum(values)

    def finish(self) -> PolicyReport:
        self.close()
        wait_started = time.perf_counter()
        cpu_wait_started = self._cpu()
        self._thread.join()
        relay_cpu = self._relay.cpu_seconds()
        self._relay.stop()
        if self._error is not None:
            raise self._error
        done = time.perf_counter()
        cpu_done = self._cpu()
        assert self._closed_at is not None
        timings = PolicyTimings(
            startup_s=self.analyzer.startup_seconds,
            after_program_s=done - self._closed_at,
            waited_s=done - wait_started,
            stack_s=self._stack_s,
            relay_cpu_s=relay_cpu,
        )
        readies = [a.cpu_at_ready for a in (self.analyzer, *self.helpers)]
        ready = None if None in readies else sum(readies)
        timings.startup_cpu_s = ready
        if None not in (cpu_done, ready, self._cpu_at_close, cpu_wait_started):
            timings.analyzer_cpu_s = cpu_done - ready
            timings.during_program_cpu_s = max(0.0, self._cpu_at_close - ready)
            timings.hidden_cpu_s = max(0.0, cpu_wait_started - ready)
        assert self.analyzer.info is not None
        return PolicyReport(self.analyzer.info, str(self._source), self._violations, self._analyzed, timings)


class Relay:
    """The relay process (`engine.policy.relay`): registrations in, the analyzers' answers out."""

    def __init__(self) -> None:
        self._stderr = tempfile.TemporaryFile()
        # the relay imports this very copy of meridian, wherever it was imported from
        source = str(Path(__file__).resolve().parents[3])
        path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
        self._proc: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "meridian.engine.policy.relay"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONPATH": path},
        )
        assert self._proc.stdin is not None
        self._fd = self._proc.stdin.fileno()
        # A larger pipe lets the program run ahead of the relay through a burst of registrations
        # (Linux only; elsewhere, or beyond the system's limit, the default size serves).
        with contextlib.suppress(ImportError, AttributeError, OSError):
            import fcntl

            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:  # a closed pipe: the relay is gone
            raise self.failure("while the program ran") from None

    def answers(self) -> list[Violation]:
        """Every answer's violations, in the order the relay collected them; raises on a failed call."""
        from pulumi.runtime.proto import analyzer_pb2

        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        out: list[Violation] = []
        while (got := read_frame(self._proc.stdout)) is not None:
            kind, payload = got
            if kind == DONE:
                return out
            urn, data = pickle.loads(payload)  # FAILED: the call's gRPC details; ANSWER: the serialized answer
            if kind == FAILED:
                raise PolicyPackError(f"the policy pack failed in {'Analyze on ' + urn if urn else 'AnalyzeStack'}: {data}")
            out += _violations(analyzer_pb2.AnalyzeResponse.FromString(data), urn)
        raise self.failure("before it answered")

    def failure(self, when: str) -> PolicyPackError:
        proc = self._proc
        code = proc.poll() if proc is not None else None
        tail = ""
        with contextlib.suppress(ValueError, OSError):  # stopped already: no stderr left to show
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace")[-3000:].strip()
        return PolicyPackError(
            f"the engine's relay to the policy pack stopped {when}"
            + (f" (exit code {code})" if code is not None else "")
            + (f":\n{tail}" if tail else "")
        )

    def cpu_seconds(self) -> float | None:
        return _cpu_seconds(self._proc.pid) if self._proc is not None else None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        stop_process(proc)
        self._stderr.close()
