"""The stacks of a zone: a platform stack and the cell stacks that name it, read from their files.

What no single stack file can show is checked here, across every stack file of the zone in the
project directory (the tooling and the program see the same files at the same commit): a tenant
in two stacks, and tenant budgets over the zone's cap. Each problem names the file and key of the
stack being loaded, so every stack involved reports it when it is loaded.

A stack file that cannot be read is skipped here: loading that stack reports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackconfig import memory
from stackconfig.errors import Problem
from stackconfig.models import NAMESPACE

PLATFORM_KEY = f"{NAMESPACE}:platform"
TENANTS_KEY = f"{NAMESPACE}:tenants"


def stack_file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


@dataclass(frozen=True)
class StackTenants:
    """One stack of a zone as its file lists its tenants: ids in order, and their budgets."""

    stack: str
    tenant_ids: tuple[str, ...]
    budgets_usd: float

    @property
    def file(self) -> str:
        return stack_file(self.stack)


def _config_of(path: Path) -> dict[str, Any] | None:
    doc = memory.document(path)
    try:
        doc = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if doc is None else doc
    except (OSError, yaml.YAMLError):
        return None
    section = doc.get("config") if isinstance(doc, dict) else None
    return section if isinstance(section, dict) else None


def stack_config(project_dir: Path, stack: str) -> dict[str, Any] | None:
    """The `config` mapping of `Pulumi.<stack>.yaml`, or None when it cannot be read."""
    return _config_of(project_dir / stack_file(stack))


def stack_tenants(stack: str, entries: Any) -> StackTenants:
    """The ids and budgets of raw tenant entries (malformed entries are the stack's own parse's problem)."""
    entries = entries if isinstance(entries, list) else []
    ids = tuple(e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str))
    budgets = sum(
        float(e["monthly_budget_usd"])
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("monthly_budget_usd"), (int, float))
        and not isinstance(e.get("monthly_budget_usd"), bool)
    )
    return StackTenants(stack, ids, budgets)


def cells_of(project_dir: Path, platform: str) -> list[StackTenants]:
    """Every cell stack file of the project that names `platform` as its platform, sorted by name."""
    found = []
    for path in memory.stack_files(project_dir):
        stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        config = _config_of(path)
        if config is None or config.get(PLATFORM_KEY) != platform:
            continue
        found.append(stack_tenants(stack, config.get(TENANTS_KEY)))
    return found


def zone_problems(
    project_dir: Path, stack: str, platform: str, this: StackTenants, platform_tenants: Any, stack_cap_usd: Any
) -> list[Problem]:
    """What is wrong across the zone of `platform`, as seen from `stack` (the platform or one of its
    cells): `this` is the stack's own tenants (as loaded, overrides included), `platform_tenants`
    the platform's inline entries as written."""
    stacks: list[StackTenants] = [this if stack == platform else stack_tenants(platform, platform_tenants)]
    stacks += [this if cell.stack == stack else cell for cell in cells_of(project_dir, platform)]
    if this not in stacks:  # a cell not naming this platform in its file (an override): still counted
        stacks.append(this)
    out: list[Problem] = []
    where: dict[str, list[str]] = {}
    for s in stacks:
        for tid in dict.fromkeys(s.tenant_ids):  # a duplicate within one stack is that stack's own check
            where.setdefault(tid, []).append(s.stack)
    for tid in dict.fromkeys(this.tenant_ids):
        others = [s for s in where.get(tid, []) if s != stack]
        if others:
            listed = ", ".join(f"{o} ({stack_file(o)})" for o in others)
            out.append(
                Problem(
                    this.file,
                    f"{TENANTS_KEY}[{tid!r}].id",
                    f"tenant {tid!r} is also in stack {listed}: a tenant lives in exactly one stack of the zone "
                    "(moving one is an edit of both files: docs/operations.md)",
                )
            )
    total = sum(s.budgets_usd for s in stacks)
    if isinstance(stack_cap_usd, (int, float)) and len(stacks) > 1 and total > stack_cap_usd:
        parts = ", ".join(f"{s.stack} ${s.budgets_usd:,.2f}" for s in stacks)
        out.append(
            Problem(
                this.file,
                TENANTS_KEY,
                f"the zone's tenant budgets sum to ${total:,.2f} ({parts}), over the platform's cost.stack_cap_usd "
                f"${float(stack_cap_usd):,.2f} (one budget watches the platform and its cells together)",
            )
        )
    return out


def unlisted(stack: str, platform: str, names: Sequence[Any]) -> list[Problem]:
    if stack in names:
        return []
    return [
        Problem(
            stack_file(platform),
            f"{NAMESPACE}:cells.names",
            f"does not list cell {stack!r}, whose {stack_file(stack)} names {platform!r} as its platform: add it "
            "(the platform mounts only its listed cells' tenant files and exports cell_handles only when it lists cells)",
        )
    ]
