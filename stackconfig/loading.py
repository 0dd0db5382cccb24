"""Where a stack's config comes from: the YAML files (the tooling) or the engine (the program).

Both hand the same mapping to `validate`, so both see the same truth and the same errors.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from stackconfig import memory
from stackconfig.errors import ConfigError, Problem, StackFileError
from stackconfig.models import NAMESPACE, ZONE_REGIONS, StackConfig
from stackconfig.parsing import RawConfig, validate
from stackconfig.zone import FAST_LOADER, StackTenants, cells_of, stack_file, stack_tenants, unlisted, zone_problems

CELL_KEYS = ("platform", "tenants")  # all a cell stack's file may set of `meridian:`


@dataclass(frozen=True)
class Overrides:
    """Top-level `meridian:` keys replaced after the files are read, and what to blame for them."""

    values: dict[str, Any]
    source: str


def as_written(section: BaseModel) -> dict[str, Any]:
    """A validated section as a stack file holds it (the keys it set, defaults left out): what an
    override built from a loaded config hands back to the parser."""
    return section.model_dump(mode="json", exclude_unset=True)


_PARSED: dict[tuple[str, str], dict[str, Any]] = {}  # (file name, sha256 of its bytes) -> its document


def _load_yaml(path: Path) -> dict[str, Any]:
    """A stack file's document (a copy: callers own it): a held one (stackconfig.memory), or the file
    parsed once per content in a process: loading a cell reads its file several times, and a
    1,000-tenant file takes a quarter second."""
    if (held := memory.document(path)) is not None:
        return copy.deepcopy(held)
    if not path.is_file():
        raise StackFileError(f"{path.name}: file not found in {path.parent}")
    data = path.read_bytes()
    key = (path.name, hashlib.sha256(data).hexdigest())
    if key not in _PARSED:
        try:
            doc = yaml.load(data.decode("utf-8"), Loader=FAST_LOADER) or {}
        except yaml.YAMLError:  # read again for the error as the pure-Python loader words it, naming the file
            with path.open(encoding="utf-8") as stream:  # a named stream: errors name the file, not "<unicode string>"
                try:
                    yaml.safe_load(stream)
                except yaml.YAMLError as exc:
                    raise StackFileError(f"{path.name}: not valid YAML: {exc}") from None
            raise
        if not isinstance(doc, dict):
            raise StackFileError(f"{path.name}: top level must be a mapping")
        _PARSED[key] = doc
    return copy.deepcopy(_PARSED[key])


def _split_key(key: str, default_ns: str) -> tuple[str, str]:
    ns, sep, rest = key.partition(":")
    return (ns, rest) if sep else (default_ns, key)


def _read_own(project_dir: Path, stack: str) -> tuple[dict[str, Any], dict[str, str], dict[str, str], dict[str, str]]:
    """`Pulumi.yaml` defaults merged with `Pulumi.<stack>.yaml`, as the engine merges them for that
    stack: the `meridian:` values and the file of each, the other namespaces' keys as strings and
    the file of each."""
    stack_file = f"Pulumi.{stack}.yaml"
    docs, unreadable = {}, []
    for file in ("Pulumi.yaml", stack_file):  # both read before either is refused: one run names both
        try:
            docs[file] = _load_yaml(project_dir / file)
        except StackFileError as exc:
            unreadable.append(str(exc))
    if unreadable:
        raise StackFileError("\n".join(unreadable))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    others: dict[str, str] = {}
    foreign: dict[str, str] = {}
    for file, is_project in (("Pulumi.yaml", True), (stack_file, False)):
        section = docs[file].get("config") or {}
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
    return values, sources, others, foreign


def read_stack_files(project_dir: Path, stack: str, overrides: Overrides | None = None) -> tuple[RawConfig, dict[str, str]]:
    """Merge `Pulumi.yaml` defaults with `Pulumi.<stack>.yaml` as the engine does.

    Returns the `meridian:` keys (with the file each came from) and the other namespaces'
    keys (e.g. `aws:region`) as the engine would pass them, as strings. `overrides` replace
    whole top-level keys after the files (e.g. synthetic tenants for scale runs). A cell stack's
    keys are its platform's with the cell's tenants (`stackconfig.cells`); every stack is checked
    against the other stack files of its zone.
    """
    values, sources, others, foreign = _read_own(project_dir, stack)
    if overrides:
        values.update(overrides.values)
        sources.update({k: overrides.source for k in overrides.values})
    if "platform" in values:
        return cell_view(project_dir, stack, values, sources, foreign), others
    problems = platform_zone_problems(project_dir, stack, values)
    return RawConfig(values, sources, default_source=f"Pulumi.{stack}.yaml", foreign=foreign, problems=tuple(problems)), others


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
    """All config keys as the engine hands them to a program: `ns:key` -> string (JSON for non-strings).
    Only the stack's own files, as the engine reads them (a cell's program reads its platform's file itself)."""
    values, _, others, _ = _read_own(project_dir, stack)
    if overrides:
        values.update(overrides.values)
    merged = {f"{NAMESPACE}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    return {**others, **merged}


# Top-level keys typed as text: the engine passes every value as a string, so JSON-decoding them
# would turn "012345678901" into a number.
_TEXT_KEYS = frozenset(name for name, f in StackConfig.model_fields.items() if f.annotation in (str, str | None))


def from_engine(stack: str, project_dir: Path | None = None) -> StackConfig:
    """The program's entry: read every `meridian:` key the engine passed and validate it. With
    `project_dir` (where the program runs), a cell reads its platform's file there and every stack
    is checked against the other stack files of its zone, as the tooling does."""
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
    if project_dir is None:
        if "platform" in values:
            raise ConfigError(
                [
                    Problem(
                        stack_file,
                        f"{NAMESPACE}:platform",
                        "a cell stack needs its project directory to read its platform's config",
                    )
                ]
            )
        return validate(RawConfig(values, {}, default_source=stack_file, foreign=foreign))
    project_keys = {_split_key(str(k), NAMESPACE)[1] for k in (_load_yaml(project_dir / "Pulumi.yaml").get("config") or {})}
    # which keys the stack file set: the engine does not say, so every key Pulumi.yaml does not declare
    sources = {k: ("Pulumi.yaml" if k in project_keys and k not in CELL_KEYS else stack_file) for k in values}
    if "platform" in values:
        return validate(cell_view(project_dir, stack, values, sources, foreign))
    problems = platform_zone_problems(project_dir, stack, values)
    return validate(RawConfig(values, sources, default_source=stack_file, foreign=foreign, problems=tuple(problems)))


def platform_zone_problems(project_dir: Path, stack: str, values: dict[str, Any]) -> list[Problem]:
    """A platform stack against the cell files of its zone: tenants in two stacks, the zone's budgets
    over the cap, and cells naming this platform that it does not list."""
    cells = values.get("cells")
    names = cells.get("names") if isinstance(cells, dict) and isinstance(cells.get("names"), list) else []
    this = stack_tenants(stack, values.get("tenants"))
    problems = [p for cell in cells_of(project_dir, stack) for p in unlisted(cell.stack, stack, names)]
    return problems + zone_problems(project_dir, stack, stack, this, values)


def cell_view(
    project_dir: Path, stack: str, values: dict[str, Any], sources: dict[str, str], foreign: dict[str, str]
) -> RawConfig:
    """A cell stack as one config: its platform's keys (read from `Pulumi.<platform>.yaml` in the
    project directory) with the cell's own tenants, and every problem of the pair and the zone.
    The real CLI gives a program only its own stack's config: reading the platform's file at the
    same commit is what makes a cell render from its platform's settings (docs/operations.md)."""
    file, problems = stack_file(stack), []
    for key, source in sorted(sources.items()):
        if source == file and key not in CELL_KEYS:
            problems.append(
                Problem(
                    file,
                    f"{NAMESPACE}:{key}",
                    "a cell stack's file holds only meridian:platform and meridian:tenants: every other setting is "
                    "its platform's (set it in the platform's file)",
                )
            )
    platform = values["platform"]
    if not isinstance(platform, str) or not memory.exists(project_dir / stack_file(platform)) or platform == stack:
        stacks = [p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in memory.stack_files(project_dir)]
        why = "is this stack itself" if platform == stack else f"names no stack ({', '.join(stacks)} are here)"
        raise ConfigError([*problems, Problem(file, f"{NAMESPACE}:platform", f"{platform!r} {why}: name the platform stack")])
    try:
        own, own_sources, own_others, _ = _read_own(project_dir, platform)
    except StackFileError as exc:
        raise ConfigError(
            [*problems, Problem(file, f"{NAMESPACE}:platform", f"its platform's files cannot be read: {exc}")]
        ) from None
    if "platform" in own:
        raise ConfigError(
            [
                *problems,
                Problem(
                    file,
                    f"{NAMESPACE}:platform",
                    f"{platform!r} is itself a cell (its file names platform {own['platform']!r}): a cell's platform "
                    "must be a platform stack",
                ),
            ]
        )
    merged = {k: v for k, v in own.items() if k != "tenants"}
    merged_sources = {k: v for k, v in own_sources.items() if k != "tenants"}
    if "tenants" in values:
        merged["tenants"], merged_sources["tenants"] = values["tenants"], sources.get("tenants", file)
    merged["platform"], merged_sources["platform"] = platform, file
    # the cell's own aws:region: the engine passes it to the cell's program; it must be its platform's
    ours, theirs = _aws_region(project_dir, stack), own_others.get("aws:region")
    if ours != theirs:
        problems.append(
            Problem(
                foreign.get("aws:region", file),
                "aws:region",
                f"{ours!r} is not its platform's aws:region {theirs!r} ({stack_file(platform)}): a cell runs in its "
                "platform's regions",
            )
        )
    cells = own.get("cells")
    names = cells.get("names") if isinstance(cells, dict) and isinstance(cells.get("names"), list) else []
    problems += unlisted(stack, platform, names)
    this: StackTenants = stack_tenants(stack, values.get("tenants"))
    problems += zone_problems(project_dir, stack, platform, this, own)
    return RawConfig(merged, merged_sources, default_source=file, foreign=foreign, problems=tuple(problems))


def _aws_region(project_dir: Path, stack: str) -> str | None:
    return _read_own(project_dir, stack)[2].get("aws:region")
