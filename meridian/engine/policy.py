"""Offline CrossGuard: drive the project's policy pack through its own analyzer protocol.

The pack (`policies/`) runs in its own process exactly as the Pulumi CLI runs it
(`python -u -m pulumi.policy 127.0.0.1:0 policies`, which prints the port). This module:

1. reads the stack's policy config (`policies/config/<stack>.json`, the file
   `pulumi preview --policy-pack-config` takes), merges it over the pack's schema defaults and
   initial config, validates it against each policy's schema and sends it with `Configure`
   (every policy gets an explicit enforcement level: the proto default would be advisory);
2. streams one `Analyze` per registration while the program is still running (`PolicyStream`,
   fed by `RecordingMonitor.on_register` through a queue and a background thread, with a window
   of calls in flight), so the analyzer's work overlaps the SDK's;
3. sends `AnalyzeStack` once with every resource, its parent, dependencies, property dependencies
   and provider;
4. always stops the analyzer process (context manager), whatever happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2, json_format, struct_pb2

from meridian.errors import BadInput, MeridianError

PACK_DIR = "policies"
CONFIG_DIR = "policies/config"
LEVELS = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_ENUM = {"advisory": 0, "mandatory": 1, "disabled": 2, "remediate": 3}
_ENUM_LEVEL = {v: k for k, v in _LEVEL_ENUM.items()}
_SEVERITY = {0: "", 1: "low", 2: "medium", 3: "high", 4: "critical"}
_MAX_MESSAGE = 400 * 1024 * 1024
_GRPC_OPTIONS = [("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)]
STARTUP_TIMEOUT_S = 120.0


class PolicyPackError(MeridianError):
    """The policy pack itself is broken (does not start, or fails on a resource): exit 2."""


# --- policy metadata and config ---------------------------------------------------------------


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    level: str
    severity: str
    kind: str  # "resource" | "stack"
    schema: dict[str, Any]
    required: tuple[str, ...]
    remediation: str
    tags: tuple[str, ...]

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.schema.items() if isinstance(v, dict) and "default" in v}


@dataclass(frozen=True)
class PackInfo:
    name: str
    version: str
    description: str
    policies: tuple[PolicyInfo, ...]
    initial_config: dict[str, dict[str, Any]]

    def policy(self, name: str) -> PolicyInfo:
        return next(p for p in self.policies if p.name == name)


def _pack_info(info: Any) -> PackInfo:
    policies = tuple(
        PolicyInfo(
            name=p.name,
            description=p.description,
            level=_ENUM_LEVEL.get(p.enforcementLevel, "advisory"),
            severity=_SEVERITY.get(p.severity, ""),
            kind="stack" if p.policy_type == 2 else "resource",
            schema=json_format.MessageToDict(p.configSchema.properties) if p.HasField("configSchema") else {},
            required=tuple(p.configSchema.required) if p.HasField("configSchema") else (),
            remediation=p.remediation_steps,
            tags=tuple(p.tags),
        )
        for p in info.policies
    )
    initial = {}
    for name, cfg in info.initialConfig.items():
        entry = json_format.MessageToDict(cfg.properties)
        entry["enforcementLevel"] = _ENUM_LEVEL.get(cfg.enforcementLevel, "advisory")
        initial[name] = entry
    return PackInfo(info.name, info.version, info.description, policies, initial)


def config_path(project_dir: Path, stack: str) -> Path:
    return project_dir / CONFIG_DIR / f"{stack}.json"


def load_policy_config(path: Path) -> dict[str, Any]:
    """The stack's policy config file: must exist and be a JSON object (checked before the program runs)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(f"{path}: policy config not found (every stack needs one; copy policies/config/us.json and set its regions)") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the policy config: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: must be a JSON object of policy name -> enforcement level or settings")
    return data


_JSON_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


def _type_problems(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    """The subset of JSON Schema the pack uses: type, items, enum, minimum, maximum, additionalProperties."""
    kind = schema.get("type")
    if kind in ("integer", "number"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind == "number" or float(value).is_integer())
    elif kind in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[kind])
    else:
        ok = True
    if not ok:
        return [f"{where}: must be {'an' if kind in ('integer', 'object', 'array') else 'a'} {kind}, got {json.dumps(value)}"]
    out = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: must be one of {', '.join(map(json.dumps, schema['enum']))}, got {json.dumps(value)}")
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        out.append(f"{where}: must be >= {schema['minimum']}, got {value}")
    if "maximum" in schema and isinstance(value, (int, float)) and value > schema["maximum"]:
        out.append(f"{where}: must be <= {schema['maximum']}, got {value}")
    if kind == "array" and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += _type_problems(item, schema["items"], f"{where}[{i}]")
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        for k, item in value.items():
            out += _type_problems(item, schema["additionalProperties"], f"{where}.{k}")
    return out


def effective_config(pack: PackInfo, given: Mapping[str, Any], source: Path | str) -> dict[str, tuple[str, dict[str, Any]]]:
    """policy name -> (enforcement level, full properties), as the CLI would configure the pack:
    schema defaults < pack initial config < the config file (`all` sets every level). Every problem
    in the file is listed at once, naming the file."""
    names = {p.name for p in pack.policies}
    problems: list[str] = []
    all_level = None
    for key, value in given.items():
        if key == "all":
            all_level = value if isinstance(value, str) else (value or {}).get("enforcementLevel") if isinstance(value, dict) else None
            if all_level not in LEVELS:
                problems.append(f"all: enforcement level must be one of {', '.join(LEVELS)}, got {json.dumps(value)}")
        elif key not in names:
            problems.append(f"{key}: unknown policy (the pack has: {', '.join(sorted(names))})")
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for policy in pack.policies:
        initial = dict(pack.initial_config.get(policy.name, {}))
        level = initial.pop("enforcementLevel", None) or policy.level
        if all_level in LEVELS:
            level = all_level
        props = {**policy.defaults, **initial}
        entry = given.get(policy.name)
        if isinstance(entry, str):
            entry = {"enforcementLevel": entry}
        if entry is not None and not isinstance(entry, dict):
            problems.append(f"{policy.name}: must be an enforcement level or an object, got {json.dumps(entry)}")
            entry = {}
        for key, value in (entry or {}).items():
            if key == "enforcementLevel":
                if value not in LEVELS:
                    problems.append(f"{policy.name}.enforcementLevel: must be one of {', '.join(LEVELS)}, got {json.dumps(value)}")
                else:
                    level = value
            elif key not in policy.schema:
                allowed = ", ".join(sorted(policy.schema)) or "none"
                problems.append(f"{policy.name}.{key}: unknown setting (allowed: enforcementLevel, {allowed})")
            else:
                problems += _type_problems(value, policy.schema[key], f"{policy.name}.{key}")
                props[key] = value
        if level != "disabled":
            problems += [f"{policy.name}.{r}: required setting is missing" for r in policy.required if r not in props]
        out[policy.name] = (level, props)
    if problems:
        raise BadInput(f"{source}: invalid policy config ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  " + "\n  ".join(problems))
    return out


# --- what is sent ------------------------------------------------------------------------------


@dataclass
class Subject:
    """One resource as the analyzer sees it (built from a Registration or a plan-JSON-like dict)."""

    urn: str
    type: str
    name: str
    properties: struct_pb2.Struct
    parent: str = ""
    provider: str = ""  # provider URN
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    custom: bool = True

    @classmethod
    def from_registration(cls, reg: Any) -> Subject:
        return cls(reg.urn, reg.type, reg.name, _engine_view(reg.inputs), reg.parent or "", reg.provider_urn,
                   list(reg.dependencies), dict(reg.property_dependencies), reg.protect, reg.custom)

    @classmethod
    def from_dict(cls, r: Mapping[str, Any]) -> Subject:
        """A resource shaped like the plan JSON's (`inputs` as the wire format: secrets may be marked)."""
        props = struct_pb2.Struct()
        props.update(r.get("inputs") or {})
        return cls(r["urn"], r["type"], r.get("name") or r["urn"].rsplit("::", 1)[-1], props, r.get("parent") or "",
                   r.get("provider") or "", list(r.get("dependencies") or []), dict(r.get("propertyDependencies") or {}),
                   bool(r.get("protect")), r.get("custom", True))


_REF_SIGS = (b"5cf8f73096256a8f31e491e813e4eb8e", b"d0e6a833031e9bbcd3f4e8bde6ca49a4")  # resource reference, output value


def _engine_view(inputs: struct_pb2.Struct) -> struct_pb2.Struct:
    """The engine hands analyzers plain values: resource references become their id (or URN) and
    output values their value (unknown or secret kept). The mock monitor rarely records either."""
    if not any(sig in inputs.SerializeToString() for sig in _REF_SIGS):
        return inputs
    from meridian.engine.recorder import OUTPUT_SIG, RESOURCE_SIG, SECRET_SIG, SIG_KEY, UNKNOWN

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            sig = value.get(SIG_KEY)
            if sig == RESOURCE_SIG:
                return value.get("id") or value.get("urn")
            if sig == OUTPUT_SIG:
                inner = convert(value["value"]) if "value" in value else UNKNOWN
                return {SIG_KEY: SECRET_SIG, "value": inner} if value.get("secret") else inner
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    out = struct_pb2.Struct()
    out.update(convert(json_format.MessageToDict(inputs)))
    return out


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    urn: str  # "" for the stack as a whole
    message: str
    severity: str = ""

    def to_json(self) -> dict[str, str]:
        return {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}


def _violations(response: Any, urn: str) -> list[Violation]:
    out = []
    for d in response.diagnostics:
        message = d.message
        if d.description and message.startswith(d.description):
            message = message[len(d.description):].lstrip("\n") or d.description
        out.append(Violation(d.policyName, _ENUM_LEVEL.get(d.enforcementLevel, "advisory"), d.urn or urn, message, _SEVERITY.get(d.severity, "")))
    return out


# --- the analyzer process ----------------------------------------------------------------------


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
_BOOT = ("import gc, runpy; gc.freeze(); gc.set_threshold(100_000, 50, 1000); "
         "runpy.run_module('pulumi.policy', run_name='__main__', alter_sys=True)")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


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
            stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, env=env, cwd=str(self.pack_dir),
        )
        threading.Thread(target=self._read_port, name="policy-port", daemon=True).start()

    def _read_port(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        try:
            self._port = int(line.strip())
        except ValueError:
            self._port = None
        self._ready.set()
        # Drain anything else the pack prints so it never blocks on a full pipe.
        for _ in self._proc.stdout:
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
            raise PolicyPackError(f"the policy pack in {self.pack_dir} did not start"
                                  + (f" (exit code {code})" if code is not None else f" within {STARTUP_TIMEOUT_S:.0f} s")
                                  + (f":\n{self._stderr_tail()}" if self._stderr_tail() else ""))
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self._port}", options=_GRPC_OPTIONS)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        try:
            self.info = _pack_info(self.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30, wait_for_ready=True))
        except grpc.RpcError as exc:
            raise PolicyPackError(f"the policy pack in {self.pack_dir} did not answer: {exc.details()}\n{self._stderr_tail()}") from None
        self.startup_seconds = time.perf_counter() - self.started_at
        self.cpu_at_ready = self.cpu_seconds()
        return self.info

    def cpu_seconds(self) -> float | None:
        return _cpu_seconds(self._proc.pid) if self._proc is not None else None

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
            self.stub.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(stack=stack, project=project, dry_run=True), timeout=30)
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
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # requests
    def _provider_msg(self, subject: Subject, providers: Mapping[str, Subject]) -> Any:
        from pulumi.runtime.proto import analyzer_pb2

        prov = providers.get(subject.provider)
        if prov is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(type=prov.type, properties=prov.properties, urn=prov.urn, name=prov.name)

    def analyze_request(self, subject: Subject, providers: Mapping[str, Subject]) -> Any:
        from pulumi.runtime.proto import analyzer_pb2

        request = analyzer_pb2.AnalyzeRequest(
            type=subject.type, urn=subject.urn, name=subject.name, properties=subject.properties,
            options=analyzer_pb2.AnalyzerResourceOptions(protect=subject.protect, parent=subject.parent),
        )
        provider = self._provider_msg(subject, providers)
        if provider is not None:
            request.provider.CopyFrom(provider)
        return request

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

        call = self._channel.unary_unary("/pulumirpc.Analyzer/AnalyzeStack", request_serializer=None,
                                         response_deserializer=analyzer_pb2.AnalyzeResponse.FromString)
        return call.future(request, timeout=600)

    def stack_request(self, subjects: Iterable[Subject], providers: Mapping[str, Subject]) -> bytes:
        """The serialized AnalyzeStackRequest, built resource by resource (`repeated AnalyzerResource
        resources = 1`): no second in-memory copy of every resource's properties at 25k resources."""
        from pulumi.runtime.proto import analyzer_pb2

        parts = []
        for s in subjects:
            r = analyzer_pb2.AnalyzerResource(type=s.type, urn=s.urn, name=s.name, parent=s.parent, dependencies=s.dependencies,
                                              properties=s.properties)
            r.options.protect = s.protect
            r.options.parent = s.parent
            for prop, urns in s.property_dependencies.items():
                r.propertyDependencies[prop].urns.extend(urns)
            provider = self._provider_msg(s, providers)
            if provider is not None:
                r.provider.CopyFrom(provider)
            data = r.SerializeToString()
            parts.append(b"\x0a" + _varint(len(data)) + data)
        return b"".join(parts)


def evaluate(analyzer: Analyzer, subjects: list[Subject]) -> list[Violation]:
    """Analyze every subject, then the stack (no streaming): for tests and the catalog."""
    providers = {s.urn: s for s in subjects if s.type.startswith("pulumi:providers:")}
    out = []
    for s in subjects:
        if s.type != "pulumi:pulumi:Stack":
            out += analyzer.analyze(s, providers)
    return out + analyzer.analyze_stack(subjects, providers)


def shard_config(pack: PackInfo, config: Mapping[str, tuple[str, dict[str, Any]]], shard: int, shards: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The config one analyzer of `shards` runs: shard 0 runs every resource policy and its share of
    the stack policies; the others only their share of the stack policies. AnalyzeStack costs the
    SDK a full decode of every resource per stack policy, so splitting the stack policies over
    processes divides its wall time (the resource policies run hidden, during the program)."""
    stack_policies = [p.name for p in pack.policies if p.kind == "stack"]
    # shard 0 also finishes the Analyze backlog: give it the smaller share
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


# --- streaming while the program runs ----------------------------------------------------------


@dataclass
class PolicyTimings:
    startup_s: float = 0.0  # spawn -> answering GetAnalyzerInfo (runs while the program imports)
    analyzer_cpu_s: float | None = None  # the analyzer's own CPU for Analyze + AnalyzeStack (startup excluded)
    during_program_cpu_s: float | None = None  # of it, spent while the program was still registering
    hidden_cpu_s: float | None = None  # of it, spent before anyone waited for it (program + report rendering)
    after_program_s: float = 0.0  # wall: program end -> evaluation done
    waited_s: float = 0.0  # wall the caller actually blocked on policy results: what policy adds to the run
    stack_s: float = 0.0  # wall of the AnalyzeStack call

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class PolicyReport:
    pack: PackInfo
    config_file: str
    violations: list[Violation]
    analyzed: int
    timings: PolicyTimings

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    def to_json(self) -> dict[str, Any]:
        levels = {}
        for v in self.violations:
            levels[v.level] = levels.get(v.level, 0) + 1
        return {
            "evaluated": True,
            "pack": f"{self.pack.name}@{self.pack.version}",
            "config": self.config_file,
            "policies": len(self.pack.policies),
            "resources_analyzed": self.analyzed,
            "counts": levels,
            "violations": [v.to_json() for v in self.violations],
            "timings": self.timings.to_json(),
        }


class PolicyStream:
    """Feeds registrations to the analyzer as the program makes them.

    `on_register` runs in the SDK's monitor thread: it starts the Analyze call there and returns
    (a gRPC future, no waiting), so the analyzer process works on resource N while the SDK builds
    N+1. Handing registrations to another thread instead would not overlap: that thread only gets
    the GIL between the SDK's switch intervals, and loses it again at every gRPC call. Until the
    analyzer is up and configured (a background thread does that while the program imports),
    registrations wait in a backlog. `close()` marks the program done; the background thread then
    collects the answers and runs AnalyzeStack while the caller renders; `finish()` returns the report."""

    def __init__(self, analyzer: Analyzer, file_config: Mapping[str, Any], config_source: Path, stack: str,
                 helpers: Sequence[Analyzer] = (), helper_factory: Callable[[], Analyzer] | None = None,
                 helper_threshold: int = HELPER_THRESHOLD):
        self.analyzer = analyzer
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
            request = self.analyzer.stack_request(self._subjects, self._providers)
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
            self._violations += _violations(future.result(), urn)
        except grpc.RpcError as exc:
            raise PolicyPackError(f"the policy pack failed in {'Analyze on ' + urn if urn else 'AnalyzeStack'}: {exc.details()}") from None

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
        timings = PolicyTimings(startup_s=self.analyzer.startup_seconds, after_program_s=done - self._closed_at,
                                waited_s=done - wait_started, stack_s=self._stack_s)
        readies = [a.cpu_at_ready for a in (self.analyzer, *self.helpers)]
        ready = None if None in readies else sum(readies)
        if None not in (cpu_done, ready, self._cpu_at_close, cpu_wait_started):
            timings.analyzer_cpu_s = cpu_done - ready
            timings.during_program_cpu_s = max(0.0, self._cpu_at_close - ready)
            timings.hidden_cpu_s = max(0.0, cpu_wait_started - ready)
        assert self.analyzer.info is not None
        return PolicyReport(self.analyzer.info, str(self._source), self._violations, self._analyzed, timings)


def pack_dir_of(project_dir: Path) -> Path:
    return project_dir / PACK_DIR
