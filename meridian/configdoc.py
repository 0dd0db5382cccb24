"""The key reference of docs/config.md, generated from the stack config's models: every key with its
type, default, allowed values and description, so the page cannot leave a key out or drift from
what the parser accepts. `meridian docs --write` writes it; tests/test_docs.py and
tests/test_config_docs.py fail when it is stale.

Key paths: `a.b` for a key inside a mapping, `a[].b` inside each entry of a list, `a.<name>.b`
inside each entry of a mapping keyed by name (the plan catalog).
"""

from __future__ import annotations

import ipaddress
import json
import re
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stackconfig import StackConfig


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _child_prefix(path: str, annotation: Any) -> str:
    """Where a nested model's keys sit: in each list entry (`a[]`), each named entry (`a.<name>`) or `a`."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return f"{path}[]"
    if origin is dict:
        return f"{path}.<name>"
    return path


# pydantic's constraint objects (annotated_types) by the one attribute each carries
_CONSTRAINTS = (
    ("ge", ">= {}"),
    ("gt", "> {}"),
    ("le", "<= {}"),
    ("lt", "< {}"),
    ("min_length", "length >= {}"),
    ("max_length", "length <= {}"),
    ("pattern", "matches `{}`"),
)


def _constraints(metadata: list[Any]) -> list[str]:
    return [text.format(getattr(m, attr)) for m in metadata for attr, text in _CONSTRAINTS if getattr(m, attr, None) is not None]


def _unannotated(annotation: Any) -> tuple[Any, list[Any]]:
    """`Annotated[int, Field(ge=1)]` -> (int, [Ge(1)])."""
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        metadata = [m for e in extras for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return base, metadata
    return annotation, []


def _type(annotation: Any) -> tuple[str, list[str]]:
    """A type an infra engineer reads (`list of integer`), and the allowed values it implies."""
    annotation, metadata = _unannotated(annotation)
    allowed = _constraints(metadata)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        kinds = {type(a) for a in args}
        return ("integer" if kinds == {int} else "string"), [", ".join(f"`{json.dumps(a)}`" for a in args)]
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        name, inner_allowed = _type(inner[0])
        return f"{name} or null", inner_allowed + allowed
    if origin is tuple:
        name, inner_allowed = _type(args[0])
        # a list of lists: its items' own `each ...` already says it (not "each each")
        return f"list of {name}", [a if a.startswith("each ") else f"each {a}" for a in inner_allowed] + allowed
    if origin is dict:
        return f"mapping of name to {_type(args[1])[0]}", allowed
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping", allowed
    names = {str: "string", int: "integer", float: "number", bool: "boolean", ipaddress.IPv4Network: "IPv4 CIDR"}
    return names[annotation], allowed


def _value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_value(v) for v in value]
    if isinstance(value, ipaddress.IPv4Network):
        return str(value)
    return value


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "default_text" in extra:
        return str(extra["default_text"])
    if field.is_required():
        return "required"
    if isinstance(field.default, BaseModel):
        return "see below"
    return f"`{json.dumps(_value(field.default))}`"


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def rows(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """(key path, field) for every key of `model` and the models inside it, depth first in declaration order."""
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        yield path, field
        nested = _model_in(field.annotation)
        if nested is not None:
            yield from rows(nested, _child_prefix(path, field.annotation))


def _row(path: str, field: FieldInfo) -> str:
    if not field.description:
        raise ValueError(f"{path}: the field has no description; docs/config.md documents every key from it")
    kind, allowed = _type(field.annotation)
    allowed += _constraints(field.metadata)
    return f"| `{path}` | {kind} | {_default(field)} | {_cell('; '.join(allowed))} | {_cell(field.description)} |"


_HEADER = ["| key | type | default | allowed | what |", "|---|---|---|---|---|"]


def config_reference(model: type[BaseModel] = StackConfig) -> str:
    """The generated part of docs/config.md: the top-level keys, then one table per section."""
    fields = model.model_fields
    sections = {name: f for name, f in fields.items() if _model_in(f.annotation) is not None}
    out = ["### Top-level keys", "", *_HEADER]
    out += [_row(name, f) for name, f in fields.items() if name not in sections]
    for name, field in sections.items():
        kind, _ = _type(field.annotation)
        presence = "required" if field.is_required() else "optional"
        out += ["", f"### `{name}`", "", f"{_cell(field.description or '')} ({kind}, {presence})", "", *_HEADER]
        out += [_row(path, f) for path, f in rows(_model_in(field.annotation), _child_prefix(name, field.annotation))]
    return "\n".join(out)
