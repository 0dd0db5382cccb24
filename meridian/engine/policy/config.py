"""The stack's policy config and the pack's metadata: read, merge over the schema defaults, validate."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from meridian.errors import BadInput, MeridianError

PACK_DIR = "policies"
CONFIG_DIR = "policies/config"
LEVELS = ("advisory", "mandatory", "remediate", "disabled")
_LEVEL_ENUM = {"advisory": 0, "mandatory": 1, "disabled": 2, "remediate": 3}
_ENUM_LEVEL = {v: k for k, v in _LEVEL_ENUM.items()}
_SEVERITY = {0: "", 1: "low", 2: "medium", 3: "high", 4: "critical"}


class PolicyPackError(MeridianError):
    """The policy pack itself is broken (does not start, or fails on a resource): exit 2."""


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


def declared_version(pack_dir: Path) -> str | None:
    """The version in the pack's PulumiPolicy.yaml: what the Pulumi CLI reports (the Python SDK's
    analyzer always answers 0.0.1 and leaves the real version to that file)."""
    import yaml

    try:
        with (pack_dir / "PulumiPolicy.yaml").open(encoding="utf-8") as stream:  # a named stream: errors name the file
            doc = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError):
        return None
    version = doc.get("version") if isinstance(doc, dict) else None
    return str(version) if version is not None else None


def _pack_info(info: Any, pack_dir: Path) -> PackInfo:
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
    return PackInfo(info.name, declared_version(pack_dir) or info.version, info.description, policies, initial)


def config_path(project_dir: Path, stack: str) -> Path:
    return project_dir / CONFIG_DIR / f"{stack}.json"


def load_policy_config(path: Path) -> dict[str, Any]:
    """The stack's policy config file: must exist and be a JSON object (checked before the program runs)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(
            f"{path}: policy config not found (every stack needs one; copy policies/config/us.json and set its regions)"
        ) from None
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
            all_level = (
                value if isinstance(value, str) else (value or {}).get("enforcementLevel") if isinstance(value, dict) else None
            )
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
                    problems.append(
                        f"{policy.name}.enforcementLevel: must be one of {', '.join(LEVELS)}, got {json.dumps(value)}"
                    )
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
        raise BadInput(
            f"{source}: invalid policy config ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
            + "\n  ".join(problems)
        )
    return out


def pack_dir_of(project_dir: Path) -> Path:
    return project_dir / PACK_DIR
