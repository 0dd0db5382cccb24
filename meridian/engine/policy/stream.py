"""Streaming registrations to the analyzer while the program runs, and AnalyzeStack split over processes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from meridian.engine.policy.analyzer import Analyzer
from meridian.engine.policy.config import PackInfo, PolicyPackError, effective_config
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


def stack_shards() -> int:
    """Processes AnalyzeStack is split over: one per core, at most 2 (beyond that, startup eats the gain)."""
    return max(1, min(2, os.cpu_count() or 1))


# Resources from which a second analyzer pays off (AnalyzeStack ~1 ms per resource on one process).
HELPER_THRESHOLD = 1000


class PolicyStream:
    """Feeds registrations to the analyzer as the program makes them.

    `on_register` runs in the SDK's monitor thread: it starts the Analyze call there and returns
    (a gRPC future, no waiting), so the analyzer process works on resource N while the SDK builds
    N+1. Handing registrations to another thread instead would not overlap: that thread only gets
    the GIL between the SDK's switch intervals, and loses it again at every gRPC call. Until the
    analyzer is up and configured (a background thread does that while the program imports),
    registrations wait in a backlog. `close()` marks the program done; the background thread then
    collects the answers and runs AnalyzeStack while the caller renders; `finish()` returns the report."""

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
        self._context_providers = {s.urn: s for s in self._context if s.type.startswith("pulumi:providers:")}
        self.helpers = list(helpers)  # more analyzers of the same pack, each running a share of the stack policies
        # A large stack gets its helper once it has `helper_threshold` resources: it starts while the
        # program still runs, and small stacks never pay for a second process.
        self._helper_factory = helper_factory
        self._helper_threshold = helper_threshold
        self._file_config = file_config
        self._source = config_source
        self._stack = stack
        self._lock = threading.Lock()
        self._live = False
        self._backlog: list[Subject] = []
        self._pending: list[tuple[str, Any]] = []
        self._violations: list[Violation] = []
        self._subjects: list[Subject] = []
        self._providers: dict[str, Subject] = {}
        self._error: BaseException | None = None
        self._analyzed = 0
        self._stack_s = 0.0
        self._closed = threading.Event()
        self._closed_at: float | None = None
        self._cpu_at_close: float | None = None
        self._thread = threading.Thread(target=self._run, name="policy-stream", daemon=True)
        self._thread.start()

    def on_register(self, reg: Any) -> None:
        subject = Subject.from_registration(reg)
        if self._helper_factory is not None and len(self._subjects) >= self._helper_threshold:
            factory, self._helper_factory = self._helper_factory, None
            self.helpers.append(factory())
        with self._lock:
            self._subjects.append(subject)
            if subject.type.startswith("pulumi:providers:"):
                self._providers[subject.urn] = subject
            if not self._live:
                self._backlog.append(subject)
                return
        self._send(subject)

    def _send(self, subject: Subject) -> None:
        if subject.type == "pulumi:pulumi:Stack" or self._error is not None:
            return
        request = self.analyzer.analyze_request(subject, self._providers)
        future = self.analyzer.stub.Analyze.future(request, timeout=600)
        with self._lock:
            self._pending.append((subject.urn, future))
            self._analyzed += 1

    def _run(self) -> None:
        try:
            info = self.analyzer.wait_ready()
            config = effective_config(info, self._file_config, self._source)
            # Until close, shard 0 runs every policy: Analyze only runs resource policies anyway.
            self.analyzer.configure(config, stack=self._stack)
            with self._lock:
                backlog, self._backlog, self._live = self._backlog, [], True
            for subject in backlog:
                self._send(subject)
            self._closed.wait()
            shards = 1 + len(self.helpers)
            if shards > 1:
                self.analyzer.configure(shard_config(info, config, 0, shards), stack=self._stack)
                for i, helper in enumerate(self.helpers, start=1):
                    helper.wait_ready()
                    helper.configure(shard_config(info, config, i, shards), stack=self._stack)
            stack_started = time.perf_counter()
            request = self.analyzer.stack_request(
                [*self._subjects, *self._context], {**self._context_providers, **self._providers}
            )
            stack_futures = [a.analyze_stack_raw(request) for a in (*self.helpers, self.analyzer)]
            del request
            with self._lock:
                pending, self._pending = self._pending, []
            for item in pending:
                self._collect(item)
            for future in stack_futures:
                self._collect(("", future))
            self._stack_s = time.perf_counter() - stack_started
        except BaseException as exc:  # handed to finish(), in the main thread
            self._error = exc

    def _collect(self, item: tuple[str, Any]) -> None:
        import grpc

        urn, future = item
        try:
            self._violations += [v for v in _violations(future.result(), urn) if v.urn not in self._context_urns]
        except grpc.RpcError as exc:
            raise PolicyPackError(
                f"the policy pack failed in {'Analyze on ' + urn if urn else 'AnalyzeStack'}: {exc.details()}"
            ) from None

    def close(self) -> None:
        """The program is done: no more registrations. Evaluation finishes in the background
        (drain, then AnalyzeStack) while the caller renders the rest of its report."""
        if self._closed_at is None:
            self._closed_at = time.perf_counter()
            self._cpu_at_close = self._cpu()
            self._closed.set()

    def _cpu(self) -> float | None:
        """CPU seconds of all the analyzers together."""
        values = [a.cpu_seconds() for a in (self.analyzer, *self.helpers)]
        return None if None in values else sum(values)

    def finish(self) -> PolicyReport:
        self.close()
        wait_started = time.perf_counter()
        cpu_wait_started = self._cpu()
        self._thread.join()
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
