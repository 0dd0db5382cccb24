"""Parsing: the merged `meridian:` keys into a StackConfig, or a ConfigError listing every problem.

pydantic checks each key on its own (its error locations give the key path); the cross-key rules
of `stackconfig.checks` then run over every section that did validate, so one run reports all.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from stackconfig.checks import cross_field_problems
from stackconfig.checks import tenants as tenant_checks
from stackconfig.errors import ConfigError, Problem, did_you_mean
from stackconfig.models import NAMESPACE, StackConfig
from stackconfig.providers import declared_namespaces, foreign_key_problems


@dataclass(frozen=True)
class RawConfig:
    """The merged `meridian:` keys of one stack and, per top-level key, the file that set it;
    `foreign` holds every key of another namespace (`aws:region`) and the file that set it;
    `problems` what reading the files found already (a cell's platform, the zone's other stacks)."""

    values: dict[str, Any]
    sources: dict[str, str]
    default_source: str = "config"
    foreign: dict[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def source_of(self, top_key: str) -> str:
        return self.sources.get(top_key, self.default_source)


def _key_path(loc: tuple[Any, ...], values: Any = None) -> str:
    """`('tenants', 4, 'id')` -> `meridian:tenants['fjord'].id`: list entries that carry an `id`
    are named by it, as written, so the reader finds them without counting."""
    path = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    node = values.get(loc[0]) if loc and isinstance(values, Mapping) else None
    for part in loc[1:]:
        if isinstance(part, int):
            entry = node[part] if isinstance(node, list) and part < len(node) else None
            ident = entry.get("id") if isinstance(entry, Mapping) else None
            path += f"[{ident!r}]" if isinstance(ident, str) and ident else f"[{part}]"
            node = entry
        else:
            path += f".{part}"
            node = node.get(part) if isinstance(node, Mapping) else None
    return path


def _fields_at(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys allowed at `loc` (a pydantic error location), walking the model annotations."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None:  # a dict of models (plans): `part` is the entry's name
            model = next((a for a in typing.get_args(model) if isinstance(a, type) and issubclass(a, BaseModel)), None)
            continue
        if part not in fields:
            return ()
        model = _model_in(fields[part].annotation)
    return tuple(getattr(model, "model_fields", {}) or ())


def _model_in(annotation: Any) -> Any:
    """The pydantic model an annotation holds (`Quota | None`, `tuple[TenantSpec, ...]`), or the
    `dict[str, Model]` annotation itself for keyed collections."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is dict:
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# Keys that moved: an old stack file is told where the setting lives now.
MOVED_KEYS = {
    ("database", "backup_retention_days"): "dr.backup_retention_days (AWS Backup's continuous backup owns the "
    "database's retention: one value for both)",
    ("dr", "vault_lock_changeable_days"): "dr.vault_lock_mode: compliance with dr.vault_lock_grace_days",
}


def _describe(error: Mapping[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        moved = MOVED_KEYS.get(tuple(str(part) for part in loc))
        if moved:
            return f"this key moved: set {moved} instead"
        return "unknown key (remove it or check its spelling)" + did_you_mean(str(loc[-1]), _fields_at(loc[:-1]))
    if kind == "missing":
        return "required key is missing"
    if kind in ("value_error", "assertion_error"):  # pydantic's own prefix says nothing to a reader
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "literal_error":
        return f"{msg} (got {error['input']!r})"
    if "input" in error and not isinstance(error["input"], (dict, list)):
        return f"{msg} (got {error['input']!r})"
    return msg


def parse_config(raw: RawConfig) -> StackConfig:
    """Validate the merged `meridian:` keys of one stack; raise ConfigError with every problem.

    Cross-key rules still run when some other key is malformed: they check every section that
    did validate, so one run reports everything wrong.
    """
    try:
        cfg = StackConfig.model_validate(raw.values)
        sections: dict[str, Any] = dict(cfg)
        problems: list[Problem] = []
    except ValidationError as exc:
        cfg = None
        errors = exc.errors()
        problems = [
            Problem(raw.source_of(str(e["loc"][0]) if e["loc"] else ""), _key_path(e["loc"], raw.values), _describe(e))
            for e in errors
        ]
        sections = _valid_sections(raw.values, {str(e["loc"][0]) for e in errors if e["loc"]})
    found = cross_field_problems(sections)
    if "tenants" not in sections and "plans" in sections:  # the tenants failed: their plans still checked
        found += tenant_checks.unknown_plans_of_raw_entries(raw.values.get("tenants"), sections["plans"])
    problems += [Problem(raw.source_of(key.split(".")[0].split("[")[0]), f"{NAMESPACE}:{key}", msg) for key, msg in found]
    if problems:
        raise ConfigError(problems)
    assert cfg is not None
    return cfg


def _valid_sections(values: Mapping[str, Any], failed: set[str]) -> dict[str, Any]:
    """The top-level sections that validate on their own (defaults included)."""
    out: dict[str, Any] = {}
    for name, spec in StackConfig.model_fields.items():
        if name in failed:
            continue
        if name in values:
            out[name] = TypeAdapter(spec.annotation).validate_python(values[name])
        elif not spec.is_required():
            out[name] = spec.get_default(call_default_factory=True)
    return out


def validate(raw: RawConfig) -> StackConfig:
    """`parse_config` plus the keys of other namespaces: every problem of both in one ConfigError."""
    foreign = list(raw.problems) + foreign_key_problems(raw.foreign, declared_namespaces(raw.values))
    try:
        cfg = parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(exc.problems + foreign) from None
    if foreign:
        raise ConfigError(foreign)
    cfg._sources, cfg._default_source = dict(raw.sources), raw.default_source
    return cfg
