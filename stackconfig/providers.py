"""Keys outside the `meridian:` namespace: refused unless something reads them.

A provider's accepted keys are read from its installed SDK (the generated `config/vars.py`), so the
check follows the pinned provider version.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from stackconfig.errors import Problem, did_you_mean
from stackconfig.models import NAMESPACE, StackConfig

# Config namespaces the program reads: its own, the providers it configures, the engine's.
# A key in any other namespace (say a typo, `meridan:database`) would be ignored, so it is refused
# unless the stack declares that namespace in `meridian:config_namespaces`.
READ_NAMESPACES = (NAMESPACE, "aws", "kubernetes", "pulumi")


@functools.cache
def provider_config_keys(namespace: str) -> frozenset[str] | None:
    """The config keys a provider accepts (`region`, `defaultTags`, ...), read from its installed
    Python SDK's generated `config/vars.py`; None when that SDK has no such module (kubernetes)."""
    spec = importlib.util.find_spec(f"pulumi_{namespace}")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "config" / "vars.py"
    if not path.is_file():
        return None
    keys = set()
    for node in ast.walk(ast.parse(path.read_text())):  # every `__config__.get*('<key>')`
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "__config__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(str(node.args[0].value))
    return frozenset(keys) or None  # an SDK generated another way: better unchecked than every key refused


def _sdk_version(namespace: str) -> str:
    try:
        return f"pulumi-{namespace} {importlib.metadata.version(f'pulumi-{namespace}')}"
    except importlib.metadata.PackageNotFoundError:
        return f"pulumi-{namespace}"


def declared_namespaces(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The namespaces a stack declares as its own (`meridian:config_namespaces`), as far as readable."""
    declared = values.get("config_namespaces")
    return tuple(n for n in declared if isinstance(n, str)) if isinstance(declared, list | tuple) else ()


def foreign_key_problems(foreign: Mapping[str, str], own: Iterable[str] = ()) -> list[Problem]:
    """Keys outside `meridian:` (`ns:key` -> file) that nothing would read: an unknown namespace, or
    a provider key its SDK does not define. Each with the closest known key as a suggestion."""
    namespaces = (*READ_NAMESPACES, *own)
    known = [f"{NAMESPACE}:{name}" for name in StackConfig.model_fields]
    for ns in READ_NAMESPACES:
        known += [f"{ns}:{key}" for key in provider_config_keys(ns) or ()]
    problems = []
    for key, file in sorted(foreign.items()):
        ns, _, name = key.partition(":")
        if ns not in namespaces:
            hint = did_you_mean(key, known) or did_you_mean(ns, namespaces)
            problems.append(
                Problem(
                    file,
                    key,
                    f"unknown config namespace {ns!r}: nothing reads it (namespaces read: {', '.join(READ_NAMESPACES)};"
                    f" declare your own in {NAMESPACE}:config_namespaces){hint}",
                )
            )
            continue
        accepted = provider_config_keys(ns)
        if accepted is not None and name not in accepted:
            problems.append(
                Problem(
                    file,
                    key,
                    f"unknown key: the {ns} provider ({_sdk_version(ns)}) has no setting {name!r}" + did_you_mean(name, accepted),
                )
            )
    return problems
