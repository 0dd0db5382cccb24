"""The pack's analyzer in its own process, as the Pulumi CLI starts it, and the calls it answers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2

from meridian.engine.policy.config import _LEVEL_ENUM, BadInput, PackInfo, PolicyPackError, _pack_info
from meridian.engine.policy.wire import Subject, Violation, _varint, _violations

_MAX_MESSAGE = 400 * 1024 * 1024
_GRPC_OPTIONS = [("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)]
STARTUP_TIMEOUT_S = 120.0


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (Linux /proc); None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# `python -m pulumi.policy 127.0.0.1:0 <pack>`, as the CLI starts it, with the cyclic GC relaxed first:
# the SDK decodes every resource once per policy into short-lived proxies, and default GC thresholds
# make AnalyzeStack superlinear in the stack's size (measured: 2.9x resources took 4x the time).
_BOOT = (
    "import gc, runpy; gc.freeze(); gc.set_threshold(100_000, 50, 1000); "
    "runpy.run_module('pulumi.policy', run_name='__main__', alter_sys=True)"
)


def stop_process(proc: subprocess.Popen) -> None:
    """Ask a child to stop, give it 5 s, then kill it; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class Analyzer:
    """The pack's analyzer in its own process, on 127.0.0.1; `with Analyzer(pack) as a: ...`."""

    def __init__(self, pack_dir: Path):
        self.pack_dir = Path(pack_dir)
        if not (self.pack_dir / "__main__.py").is_file() or not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise BadInput(f"{self.pack_dir}: not a policy pack (needs PulumiPolicy.yaml and __main__.py)")
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._channel = None
        self.stub = None
        self.info: PackInfo | None = None
        self.started_at = 0.0
        self.startup_seconds = 0.0
        self.cpu_at_ready: float | None = None
        self._ready = threading.Event()
        self._port: int | None = None

    # lifecycle
    def __enter__(self) -> Analyzer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Spawn the analyzer; `wait_ready` blocks until it listens (the program can run meanwhile)."""
        self._stderr = tempfile.TemporaryFile()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.started_at = time.perf_counter()
        self._proc = subprocess.Popen(
            [sys.executable, "-u", "-c", _BOOT, "127.0.0.1:0", str(self.pack_dir)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(self.pack_dir),
        )
        # the process is handed over: `stop` may clear `self._proc` (a config error) before the thread reads
        threading.Thread(target=self._read_port, args=(self._proc,), name="policy-port", daemon=True).start()

    def _read_port(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        try:
            line = proc.stdout.readline()
            self._port = int(line.strip())
        except (ValueError, OSError):  # not a port, or stdout closed by `stop`
            self._port = None
        self._ready.set()
        # Drain anything else the pack prints so it never blocks on a full pipe (until `stop` closes it).
        with contextlib.suppress(ValueError, OSError):
            for _ in proc.stdout:
                pass

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-3000:].strip()

    def wait_ready(self) -> PackInfo:
        if self.info is not None:
            return self.info
        import grpc
        from pulumi.runtime.proto import analyzer_pb2_grpc

        if not self._ready.wait(STARTUP_TIMEOUT_S) or self._port is None:
            code = self._proc.poll() if self._proc else None
            raise PolicyPackError(
                f"the policy pack in {self.pack_dir} did not start"
                + (f" (exit code {code})" if code is not None else f" within {STARTUP_TIMEOUT_S:.0f} s")
                + (f":\n{self._stderr_tail()}" if self._stderr_tail() else "")
            )
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self._port}", options=_GRPC_OPTIONS)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        try:
            self.info = _pack_info(self.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30, wait_for_ready=True), self.pack_dir)
        except grpc.RpcError as exc:
            raise PolicyPackError(
                f"the policy pack in {self.pack_dir} did not answer: {exc.details()}\n{self._stderr_tail()}"
            ) from None
        self.startup_seconds = time.perf_counter() - self.started_at
        self.cpu_at_ready = self.cpu_seconds()
        return self.info

    def cpu_seconds(self) -> float | None:
        return _cpu_seconds(self._proc.pid) if self._proc is not None else None

    @property
    def port(self) -> int:
        """The port it answers on (after `wait_ready`)."""
        assert self._port is not None, "wait_ready() first"
        return self._port

    def configure(self, config: Mapping[str, tuple[str, dict[str, Any]]], *, stack: str = "", project: str = "meridian") -> None:
        from pulumi.runtime.proto import analyzer_pb2

        self.wait_ready()
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in config.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = _LEVEL_ENUM[level]
            entry.properties.update(props)
        self._call("Configure", request)
        try:
            self.stub.ConfigureStack(
                analyzer_pb2.AnalyzerStackConfigureRequest(stack=stack, project=project, dry_run=True), timeout=30
            )
        except Exception:  # older analyzers do not implement it; nothing of ours depends on it
            pass

    def _call(self, method: str, request: Any, urn: str = "") -> Any:
        import grpc

        try:
            return getattr(self.stub, method)(request, timeout=600)
        except grpc.RpcError as exc:
            where = f" on {urn}" if urn else ""
            raise PolicyPackError(f"the policy pack failed in {method}{where}: {exc.details()}") from None

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # requests
    def analyze_request(self, subject: Subject, providers: Mapping[str, Subject]) -> Any:
        return analyze_request(subject, providers)

    def analyze(self, subject: Subject, providers: Mapping[str, Subject]) -> list[Violation]:
        return _violations(self._call("Analyze", self.analyze_request(subject, providers), subject.urn), subject.urn)

    def analyze_stack(self, subjects: Iterable[Subject], providers: Mapping[str, Subject]) -> list[Violation]:
        import grpc

        try:
            return _violations(self.analyze_stack_raw(self.stack_request(subjects, providers)).result(), "")
        except grpc.RpcError as exc:
            raise PolicyPackError(f"the policy pack failed in AnalyzeStack: {exc.details()}") from None

    def analyze_stack_raw(self, request: bytes) -> Any:
        """AnalyzeStack with a request serialized once (shared by every shard): a future."""
        from pulumi.runtime.proto import analyzer_pb2

        call = self._channel.unary_unary(
            "/pulumirpc.Analyzer/AnalyzeStack",
            request_serializer=None,
            response_deserializer=analyzer_pb2.AnalyzeResponse.FromString,
        )
        return call.future(request, timeout=600)

    def stack_request(self, subjects: Iterable[Subject], providers: Mapping[str, Subject]) -> bytes:
        return stack_request(subjects, providers)


def evaluate(analyzer: Analyzer, subjects: list[Subject]) -> list[Violation]:
    """Analyze every subject, then the stack (no streaming): for tests and the catalog."""
    providers = {s.urn: s for s in subjects if s.type.startswith("pulumi:providers:")}
    out = []
    for s in subjects:
        if s.type != "pulumi:pulumi:Stack":
            out += analyzer.analyze(s, providers)
    return out + analyzer.analyze_stack(subjects, providers)


# --- the requests, as the Pulumi CLI builds them (also built by the relay, engine.policy.relay) --------


def provider_message(subject: Subject, providers: Mapping[str, Subject]) -> Any:
    """The `AnalyzerProviderResource` of `subject`'s provider, or None when it has none."""
    from pulumi.runtime.proto import analyzer_pb2

    prov = providers.get(subject.provider)
    if prov is None:
        return None
    provider = analyzer_pb2.AnalyzerProviderResource(type=prov.type, urn=prov.urn, name=prov.name)
    provider.properties.MergeFromString(prov.wire)
    return provider


def analyze_request(subject: Subject, providers: Mapping[str, Subject]) -> Any:
    from pulumi.runtime.proto import analyzer_pb2

    request = analyzer_pb2.AnalyzeRequest(
        type=subject.type,
        urn=subject.urn,
        name=subject.name,
        options=analyzer_pb2.AnalyzerResourceOptions(protect=subject.protect, parent=subject.parent),
    )
    request.properties.MergeFromString(subject.wire)
    provider = provider_message(subject, providers)
    if provider is not None:
        request.provider.CopyFrom(provider)
    return request


def stack_request(subjects: Iterable[Subject], providers: Mapping[str, Subject]) -> bytes:
    """The serialized AnalyzeStackRequest, built resource by resource (`repeated AnalyzerResource
    resources = 1`): no second in-memory copy of every resource's properties at 25k resources."""
    return b"".join(stack_part(s, providers) for s in subjects)


def stack_part(s: Subject, providers: Mapping[str, Subject]) -> bytes:
    """One resource of the AnalyzeStackRequest, serialized (its `resources` entry, tag included):
    the request is these parts concatenated, in the subjects' order."""
    from pulumi.runtime.proto import analyzer_pb2

    r = analyzer_pb2.AnalyzerResource(type=s.type, urn=s.urn, name=s.name, parent=s.parent, dependencies=s.dependencies)
    r.options.protect = s.protect
    r.options.parent = s.parent
    for prop, urns in s.property_dependencies.items():
        r.propertyDependencies[prop].urns.extend(urns)
    provider = provider_message(s, providers)
    if provider is not None:
        r.provider.CopyFrom(provider)
    # `properties` (field 2, length-delimited) appended as recorded: fields may come in any order
    data = r.SerializeToString() + b"\x12" + _varint(len(s.wire)) + s.wire
    return b"\x0a" + _varint(len(data)) + data
