"""Synthetic tenants for scale runs: `--tenants N` replaces a stack's tenants with N of the same mix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from meridian.errors import BadInput
from meridian.stackconfig import load_validated
from stackconfig import Overrides, TenantSpec, as_written

MAX_TENANTS = 5000


def synthetic_tenants(templates: Sequence[TenantSpec], count: int) -> list[TenantSpec]:
    """N tenants of the mix: each a copy of a template (plan, tier, budget, quota kept) under a
    numbered id (`acme-0042`), cycling through the templates (`--tenants N`, benchmarks' zones)."""
    width = len(str(max(count - 1, 0)))
    out = []
    for i in range(count):
        template = templates[i % len(templates)]
        out.append(template.model_copy(update={"id": f"{template.id[:24].rstrip('-')}-{i:0{width}d}"}))
    return out


def tenant_overrides(project_dir: Path, stack: str, count: int) -> Overrides:
    """N tenants cycling through the stack's own tenants (plan, tier, budget, quota kept), with
    the stack cap raised, if needed, to the budgets' sum plus the original headroom."""
    if not 0 <= count <= MAX_TENANTS:
        raise BadInput(f"--tenants must be between 0 and {MAX_TENANTS}, got {count}")
    cfg = load_validated(project_dir, stack)  # the real config must be valid before we scale it
    templates = cfg.tenants
    if count and not templates:
        raise BadInput(f"stack {stack!r} has no tenants to take a plan mix from")
    tenants = synthetic_tenants(templates, count)
    headroom = cfg.cost.stack_cap_usd - sum(t.monthly_budget_usd for t in cfg.tenants)
    budgets = sum(t.monthly_budget_usd for t in tenants)
    cost = cfg.cost.model_copy(update={"stack_cap_usd": max(cfg.cost.stack_cap_usd, math.ceil(budgets + headroom))})
    cells = cfg.cells.model_copy(update={"size": max(cfg.cells.size, count)})  # a scale run of one stack, whatever its cells
    return Overrides(
        {"tenants": [as_written(t) for t in tenants], "cost": as_written(cost), "cells": as_written(cells)},
        source=f"--tenants {count}",
    )
