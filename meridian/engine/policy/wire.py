"""What is sent to the analyzer and what comes back: subjects in the engine's view, violations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2

from meridian.engine.policy.config import _ENUM_LEVEL, _SEVERITY


@dataclass
class Subject:
    """One resource as the analyzer sees it (built from a Registration or a plan-JSON-like dict)."""

    urn: str
    type: str
    name: str
    wire: bytes  # the properties as a serialized Struct, sent to the analyzer as they are
    parent: str = ""
    provider: str = ""  # provider URN
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    custom: bool = True

    @property
    def properties(self) -> struct_pb2.Struct:
        struct = struct_pb2.Struct()
        struct.ParseFromString(self.wire)
        return struct

    @classmethod
    def from_registration(cls, reg: Any) -> Subject:
        return cls(
            reg.urn,
            reg.type,
            reg.name,
            _engine_view(reg.wire),
            reg.parent or "",
            reg.provider_urn,
            list(reg.dependencies),
            dict(reg.property_dependencies),
            reg.protect,
            reg.custom,
        )

    @classmethod
    def from_dict(cls, r: Mapping[str, Any]) -> Subject:
        """A resource shaped like the plan JSON's (`inputs` as the wire format: secrets may be marked)."""
        props = struct_pb2.Struct()
        props.update(r.get("inputs") or {})
        return cls(
            r["urn"],
            r["type"],
            r.get("name") or r["urn"].rsplit("::", 1)[-1],
            props.SerializeToString(),
            r.get("parent") or "",
            r.get("provider") or "",
            list(r.get("dependencies") or []),
            dict(r.get("propertyDependencies") or {}),
            bool(r.get("protect")),
            r.get("custom", True),
        )


_REF_SIGS = (b"5cf8f73096256a8f31e491e813e4eb8e", b"d0e6a833031e9bbcd3f4e8bde6ca49a4")  # resource reference, output value


def _engine_view(wire: bytes) -> bytes:
    """The engine hands analyzers plain values: resource references become their id (or URN) and
    output values their value (unknown or secret kept). The mock monitor rarely records either."""
    if not any(sig in wire for sig in _REF_SIGS):
        return wire
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

    inputs = struct_pb2.Struct()
    inputs.ParseFromString(wire)
    out = struct_pb2.Struct()
    out.update(convert(json_format.MessageToDict(inputs)))
    return out.SerializeToString()


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
            message = message[len(d.description) :].lstrip("\n") or d.description
        out.append(
            Violation(
                d.policyName,
                _ENUM_LEVEL.get(d.enforcementLevel, "advisory"),
                d.urn or urn,
                message,
                _SEVERITY.get(d.severity, ""),
            )
        )
    return out


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
