"""Where a stack's config comes from: the YAML files (the tooling) or the engine (the program).

Both hand the same mapping to `validate`, so both see the same truth and the same errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from stackconfig.errors import ConfigError, Problem, StackFileError
from stackconfig.models import NAMESPACE, ZONE_REGIONS, StackConfig
from stackconfig.parsing import RawConfig, validate


@dataclass(frozen=True)
class Overrides:
    """Top-level `meridian:` keys replaced after the files are read, and what to blame for them."""

    values: dict[str, Any]
    source: str


def as_written(section: BaseModel) -> dict[str, Any]:
    """A validated section as a stack file holds it (the keys it set, defaults left out): what an
    override built from a loaded config hands back to the parser."""
    return section.model_dump(mode="json", exclude_unset=True)


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StackFileError(f"{path.name}: file not found in {path.parent}")
    try:
        with path.open(encoding="utf-8") as stream:  # a named stream: errors name the file, not "<unicode string>"
            doc = yaml.safe_load(stream) or {}
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise StackFileError(f"{path.name}: top level must be a mapping")
    return doc


def _split_key(key: str, default_ns: str) -> tuple[str, str]:
    ns, sep, rest = key.partition(":")
    return (ns, rest) if sep else (default_ns, key)


def read_stack_files(project_dir: Path, stack: str, overrides: Overrides | None = None) -> tuple[RawConfig, dict[str, str]]:
    """Merge `Pulumi.yaml` defaults with `Pulumi.<stack>.yaml` as the engine does.

    Returns the `meridian:` keys (with the file each came from) and the other namespaces'
    keys (e.g. `aws:region`) as the engine would pass them, as strings. `overrides` replace
    whole top-level keys after the files (e.g. synthetic tenants for scale runs).
    """
    stack_file = f"Pulumi.{stack}.yaml"
    docs, unreadable = {}, []
    for file in ("Pulumi.yaml", stack_file):  # both read before either is refused: one run names both
        try:
            docs[file] = _load_yaml(project_dir / file)
        except StackFileError as exc:
            unreadable.append(str(exc))
    if unreadable:
        raise StackFileError("\n".join(unreadable))
    project_doc, stack_doc = docs["Pulumi.yaml"], docs[stack_file]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    others: dict[str, str] = {}
    foreign: dict[str, str] = {}
    for file, doc, is_project in (("Pulumi.yaml", project_doc, True), (stack_file, stack_doc, False)):
        section = doc.get("config") or {}
        if not isinstance(section, dict):
            raise StackFileError(f"{file}: `config` must be a mapping")
        for key, value in section.items():
            if is_project and isinstance(value, dict) and ({"default", "value"} & value.keys()):
                value = value.get("value", value.get("default"))
            ns, name = _split_key(str(key), NAMESPACE)
            if ns == NAMESPACE:
                values[name] = value
                sources[name] = file
            else:
                others[f"{ns}:{name}"] = value if isinstance(value, str) else json.dumps(value)
                foreign[f"{ns}:{name}"] = file
    if overrides:
        values.update(overrides.values)
        sources.update({k: overrides.source for k in overrides.values})
    return RawConfig(values, sources, default_source=stack_file, foreign=foreign), others


def load_stack(project_dir: Path, stack: str, overrides: Overrides | None = None) -> StackConfig:
    """The tooling's entry: read and validate one stack's config from its files."""
    raw, others = read_stack_files(project_dir, stack, overrides)
    aws_region, zone = others.get("aws:region"), raw.values.get("zone")
    region = []  # checked even when other keys are broken, so one run lists every problem
    if aws_region is not None and zone in ZONE_REGIONS and aws_region not in ZONE_REGIONS[zone]:
        region = [
            Problem(
                raw.foreign.get("aws:region", f"Pulumi.{stack}.yaml"),
                "aws:region",
                f"{aws_region!r} is outside residency zone {zone!r} (allowed: {', '.join(ZONE_REGIONS[zone])})",
            )
        ]
    try:
        cfg = validate(raw)
    except ConfigError as exc:
        raise ConfigError(exc.problems + region) from None
    if region:
        raise ConfigError(region)
    return cfg


def engine_config(project_dir: Path, stack: str, overrides: Overrides | None = None) -> dict[str, str]:
    """All config keys as the engine hands them to a program: `ns:key` -> string (JSON for non-strings)."""
    raw, others = read_stack_files(project_dir, stack, overrides)
    merged = {f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.values.items()}
    return {**others, **merged}


# Top-level keys typed as text: the engine passes every value as a string, so JSON-decoding them
# would turn "012345678901" into a number.
_TEXT_KEYS = frozenset(name for name, f in StackConfig.model_fields.items() if f.annotation in (str, str | None))


def from_engine(stack: str) -> StackConfig:
    """The program's entry: read every `meridian:` key the engine passed and validate it."""
    import pulumi.runtime.config as rc  # the engine's own store; pulumi.Config cannot list keys

    passed = {**rc.get_config_env(), **rc.CONFIG.get()}
    values: dict[str, Any] = {}
    stack_file = f"Pulumi.{stack}.yaml"
    foreign: dict[str, str] = {}
    for key, text in passed.items():
        ns, name = _split_key(key, "")
        if ns != NAMESPACE:
            foreign[key] = stack_file  # the engine does not say which file; the stack's is the likely one
            continue
        if name in _TEXT_KEYS and isinstance(text, str):
            values[name] = text  # digits that must stay text (an account id may start with 0)
            continue
        try:
            values[name] = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError:
            values[name] = text  # plain strings arrive unquoted
    return validate(RawConfig(values, {}, default_source=stack_file, foreign=foreign))
