"""A mock monitor that records every registration as the engine would see it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime.mocks import MockMonitor

# Sentinels of the Pulumi wire format (sdk/go/common/resource/sig).
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
SIG_KEY = "4dabf18193072939515e22adb298388d"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
REDACTED = "[secret]"
UNKNOWN_SHOWN = "[unknown]"  # as `pulumi preview` shows a value only known after apply


def is_resource(type_: str, custom: bool) -> bool:
    """What counts as a resource in counts and reports: custom resources, not providers."""
    return custom and not type_.startswith("pulumi:providers:")


def plain(value: Any) -> Any:
    """Wire-format value -> JSON-able value: secrets redacted, resource refs as URNs, unknowns marked."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return REDACTED
        if sig == RESOURCE_SIG:
            return value.get("urn")
        if sig == OUTPUT_SIG:
            return REDACTED if value.get("secret") else plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value == UNKNOWN:
        return UNKNOWN_SHOWN
    return value


def plain_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """`canonical(plain(MessageToDict(struct)))` in one walk over the message: the plan's inputs,
    keys sorted, secrets redacted, resource refs as URNs, unknowns marked. Keys and short strings
    are interned: 25k resources repeat the same few hundred of them (tags, regions, kinds)."""
    return _plain_fields(struct.fields)


_INTERN_MAX = 64  # longer strings (documents, ARNs with ids) rarely repeat


def _plain_fields(fields: Any) -> Any:
    if SIG_KEY in fields:
        sig = fields[SIG_KEY].string_value
        if sig == SECRET_SIG:
            return REDACTED
        if sig == RESOURCE_SIG:
            return _plain_value(fields["urn"], raw=True) if "urn" in fields else None
        if sig == OUTPUT_SIG:
            secret = _plain_value(fields["secret"], raw=True) if "secret" in fields else None
            if secret:
                return REDACTED
            return _plain_value(fields["value"]) if "value" in fields else None
    intern = sys.intern
    return {intern(k): _plain_value(fields[k]) for k in sorted(fields)}


def _plain_value(value: struct_pb2.Value, raw: bool = False) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text = value.string_value
        if text == UNKNOWN and not raw:
            return UNKNOWN_SHOWN
        return sys.intern(text) if len(text) <= _INTERN_MAX else text
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        if raw:
            return json_format.MessageToDict(value.struct_value)
        return _plain_fields(value.struct_value.fields)
    if kind == "list_value":
        if raw:
            return json_format.MessageToDict(value.list_value)
        return [_plain_value(v) for v in value.list_value.values]
    return None


def find_unknowns(value: Any, path: str = "") -> list[str]:
    """Property paths whose value was unknown at registration."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) is not None:
            return []
        return [p for k, v in value.items() for p in find_unknowns(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in find_unknowns(v, f"{path}[{i}]")]
    return [path] if value == UNKNOWN else []


@dataclass
class Registration:
    """One resource as registered: the analyzer and the plan JSON are built from these."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    provider: str  # "<provider urn>::<id>" or ""
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    # The inputs as a serialized Struct (Pulumi wire format, secrets still marked): the analyzer
    # gets these bytes as they are, and at 25k resources they are a fraction of the message's size.
    wire: bytes
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: tuple[str, ...] = ()  # inputs the next `up` leaves as they are on AWS
    id: str = ""

    @property
    def inputs(self) -> struct_pb2.Struct:
        """The inputs as a message, decoded on each call (the plan keeps its own plain copy)."""
        struct = struct_pb2.Struct()
        struct.ParseFromString(self.wire)
        return struct

    @inputs.setter
    def inputs(self, value: struct_pb2.Struct) -> None:
        self.wire = value.SerializeToString()

    @property
    def explicit_region(self) -> str | None:
        """A per-resource `region` input (pulumi-aws 7), read without decoding the rest."""
        fields = self.inputs.fields
        if "region" in fields and fields["region"].WhichOneof("kind") == "string_value":
            return fields["region"].string_value
        return None

    @cached_property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if self.provider else ""


class RecordingMonitor(MockMonitor):
    """MockMonitor that keeps each registration and hands it to `on_register` as it happens."""

    def __init__(self, mocks: Any, on_register: Callable[[Registration], None] | None = None):
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self._on_register = on_register
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        reg = Registration(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent,
            provider=request.provider,
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            wire=request.object.SerializeToString(),  # no reference into the request: it holds the stack trace too
            protect=bool(request.protect) if request.HasField("protect") else False,
            retain_on_delete=bool(request.retainOnDelete) if request.HasField("retainOnDelete") else False,
            ignore_changes=tuple(request.ignoreChanges),
            id=response.id,
        )
        with self._lock:
            self.registrations.append(reg)
        if self._on_register is not None:
            self._on_register(reg)
        return response
