"""Synthetic tenants for scale runs, from one generator: `--stack S --tenants N` replaces a stack's
tenants with N of the same mix; `--zone Z --tenants N` fills a zone to N tenants with new cells held
in memory (stackconfig.memory), never writing a file."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meridian.errors import BadInput
from meridian.stackconfig import load_validated
from stackconfig import Overrides, TenantSpec, as_written
from stackconfig.zone import PAIR_POD_IDENTITY_ASSOCIATIONS, PLATFORM_POD_IDENTITY_ASSOCIATIONS

MAX_TENANTS = 5000
MAX_ZONE_TENANTS = 100_000  # a zone's cells preview in parallel, each at most cells.size tenants
ZONE_ID_WIDTH = len(str(MAX_ZONE_TENANTS - 1))  # one width whatever N: tenant i keeps its id as N grows


def synthetic_tenants(templates: Sequence[TenantSpec], start: int, count: int, width: int) -> list[TenantSpec]:
    """Tenants `start` .. `start + count - 1`, each a copy of a template (plan, tier, budget, quota
    kept, cycling through `templates`) named `<template id>-<index>`."""
    return [
        templates[i % len(templates)].model_copy(
            update={"id": f"{templates[i % len(templates)].id[:24].rstrip('-')}-{i:0{width}d}"}
        )
        for i in range(start, start + count)
    ]


def _raised_cost(cost: Any, written_budgets: float, budgets: float) -> Any:
    """The cost section with the stack cap raised, if needed, to `budgets` plus the written headroom."""
    headroom = cost.stack_cap_usd - written_budgets
    return cost.model_copy(update={"stack_cap_usd": max(cost.stack_cap_usd, math.ceil(budgets + headroom))})


def tenant_overrides(project_dir: Path, stack: str, count: int) -> Overrides:
    """N tenants cycling through the stack's own tenants (plan, tier, budget, quota kept), with
    the stack cap raised, if needed, to the budgets' sum plus the original headroom."""
    if not 0 <= count <= MAX_TENANTS:
        raise BadInput(f"--tenants must be between 0 and {MAX_TENANTS}, got {count}")
    cfg = load_validated(project_dir, stack)  # the real config must be valid before we scale it
    if count and not cfg.tenants:
        raise BadInput(f"stack {stack!r} has no tenants to take a plan mix from")
    tenants = synthetic_tenants(cfg.tenants, 0, count, len(str(max(count - 1, 0))))
    cost = _raised_cost(cfg.cost, sum(t.monthly_budget_usd for t in cfg.tenants), sum(t.monthly_budget_usd for t in tenants))
    cells = cfg.cells.model_copy(update={"size": max(cfg.cells.size, count)})  # a scale run of one stack, whatever its cells
    return Overrides(
        {"tenants": [as_written(t) for t in tenants], "cost": as_written(cost), "cells": as_written(cells)},
        source=f"--tenants {count}",
    )


def pairs_of_cells(count: int, size: int, pair_zero_room: int, pair_room: int, first_new_pair: int) -> list[int]:
    """The tenant cluster pair of each of `count` new cells of `size` tenants, in order: pair 0 while
    `pair_zero_room` (its clusters' associations not yet taken) holds another full cell, then new pairs
    from `first_new_pair`, `pair_room` each. Every cell is placed as if full, so a cell's pair depends on
    its index alone: a larger count only appends (the last cell, partial, keeps its pair as it fills)."""
    per_pair = pair_room // size
    if count and per_pair < 1:
        raise BadInput(
            f"a cell of {size:,} tenants does not fit a tenant cluster pair's {pair_room:,} Pod Identity associations "
            "(quotas.pod_identity_associations_per_cluster less the platform's own there): use a smaller --cell-size"
        )
    on_zero = max(pair_zero_room, 0) // size
    return [0 if i < on_zero else first_new_pair + (i - on_zero) // per_pair for i in range(count)]


@dataclass(frozen=True)
class ZoneScale:
    """A zone filled to `total` tenants: the real stacks keep theirs, the rest go into new cells."""

    zone: str
    total: int
    cell_size: int
    cells: dict[str, int]  # each generated cell -> its tenant count, in order
    documents: dict[Path, dict[str, Any]]  # the stack files held in memory: the platform's and each new cell's
    pairs: dict[str, int]  # each generated cell -> the tenant cluster pair it is on (0: the platform's own clusters)


def zone_tenants(project_dir: Path, zone: str, cfgs: Mapping[str, Any], total: int, cell_size: int | None = None) -> ZoneScale:
    """`--zone Z --tenants N`: N is every tenant of the zone, its real ones counted (the platform's
    inline tenants and its cells'). The real stacks keep their tenants; the N - real others are
    generated from the zone's real tenants (their plan mix, cycled) and appended in new cells after
    the zone's real ones (`<zone>-cell-NNN`), `cells.size` each, the last one partial: tenant i is
    always in the same cell under the same id, so a larger N only appends cells (stable placement).
    Each new cell goes on a tenant cluster pair (`pairs_of_cells`): the platform's own clusters while
    they hold another full cell beside the inline tenants and the real cells there, then new pairs
    after the platform's own `cells.cluster_pairs`: tenant i's pair too is the same for any N >= i.
    The platform's file is held with `cells.names` listing the new cells (its workload mounts their
    tenant files), `cells.cluster_pairs` the new pairs, `cells.size` (with `cell_size`) and its stack
    cap raised to the zone's budgets plus the written headroom. `cfgs`: the zone's stacks as validated
    from their files, platform first."""
    if not 0 <= total <= MAX_ZONE_TENANTS:
        raise BadInput(f"--tenants must be between 0 and {MAX_ZONE_TENANTS} for a zone, got {total}")
    if cell_size is not None and cell_size < 1:
        raise BadInput(f"--cell-size must be at least 1, got {cell_size}")
    platform = cfgs[zone]
    templates = [t for cfg in cfgs.values() for t in cfg.tenants]
    real = len(templates)
    counts = ", ".join(f"{stack} {len(cfg.tenants)}" for stack, cfg in cfgs.items())
    if total < real:
        raise BadInput(
            f"--tenants {total}: zone {zone} already has {real} tenants ({counts}); N counts every tenant of the "
            "zone, the real ones included"
        )
    if total > real and not templates:
        raise BadInput(f"zone {zone!r} has no tenants to take a plan mix from")
    size = cell_size or platform.cells.size
    generated = total - real
    names = _next_cells(project_dir, zone, list(platform.cells.names), math.ceil(generated / size))
    quota = platform.quotas.pod_identity_associations_per_cluster
    on_zero = sum(len(cfg.tenants) for stack, cfg in cfgs.items() if stack == zone or platform.cells.pair_of(stack) == 0)
    pair_of = dict(
        zip(
            names,
            pairs_of_cells(
                len(names),
                size,
                pair_zero_room=quota - PLATFORM_POD_IDENTITY_ASSOCIATIONS - on_zero,
                pair_room=quota - PAIR_POD_IDENTITY_ASSOCIATIONS,
                first_new_pair=len(platform.cells.cluster_pairs) + 1,
            ),
            strict=True,
        )
    )
    from stackconfig.zone import stack_config, stack_file

    documents: dict[Path, dict[str, Any]] = {}
    cells: dict[str, int] = {}
    budgets = 0.0
    region = (stack_config(project_dir, zone) or {}).get("aws:region")
    for k, name in enumerate(names):
        tenants = synthetic_tenants(templates, k * size, min(size, generated - k * size), ZONE_ID_WIDTH)
        budgets += sum(t.monthly_budget_usd for t in tenants)
        cells[name] = len(tenants)
        documents[project_dir / stack_file(name)] = {
            "config": {
                "aws:region": region,
                "meridian:platform": zone,
                "meridian:tenants": [as_written(t) for t in tenants],
            }
        }
    written = sum(t.monthly_budget_usd for t in templates)
    cost = _raised_cost(platform.cost, written, written + budgets)
    platform_doc = _platform_document(project_dir, zone)
    section = platform_doc["config"]
    pairs = [list(cells) for cells in platform.cells.cluster_pairs]
    for name, k in pair_of.items():
        if k:
            pairs += [[] for _ in range(k - len(pairs))]
            pairs[k - 1].append(name)
    section["meridian:cells"] = {
        "size": size,
        "names": [*platform.cells.names, *names],
        **({"cluster_pairs": pairs} if pairs else {}),
    }
    section["meridian:cost"] = as_written(cost)
    documents[project_dir / stack_file(zone)] = platform_doc
    return ZoneScale(zone, total, size, cells, documents, pair_of)


def _platform_document(project_dir: Path, zone: str) -> dict[str, Any]:
    import yaml

    from stackconfig.zone import stack_file

    doc = yaml.safe_load((project_dir / stack_file(zone)).read_text(encoding="utf-8"))
    # one spelling of each key: the parser reads `meridian:cells` and `cells` alike in a stack file
    section = {(k if ":" in str(k) else f"meridian:{k}"): v for k, v in doc["config"].items()}
    return {**doc, "config": section}


def _next_cells(project_dir: Path, zone: str, real: list[str], count: int) -> list[str]:
    """`count` cell names after the zone's real ones (`us-cell-002`, ... after `us-cell-001`), none
    of them a stack file already in the project."""
    from meridian.project import stacks_of

    numbered = re.compile(rf"^{re.escape(zone)}-cell-(\d+)$")
    start = max((int(m.group(1)) for m in map(numbered.match, real) if m), default=0) + 1
    names = [f"{zone}-cell-{n:03d}" for n in range(start, start + count)]
    taken = sorted(set(names) & set(stacks_of(project_dir)))
    if taken:
        raise BadInput(
            f"--tenants: the zone's next cells would be {', '.join(taken)}, but a stack file of that name exists that "
            f"{zone}'s meridian:cells.names does not list: list it or rename it"
        )
    return names
