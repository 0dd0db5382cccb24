"""Synthetic tenants for scale runs: `--tenants N` replaces a stack's tenants with N of the same mix."""

from __future__ import annotations

import math
from pathlib import Path

from components.config import Overrides, read_stack_files
from meridian.errors import BadInput
from meridian.stackconfig import load_validated

MAX_TENANTS = 5000


def tenant_overrides(project_dir: Path, stack: str, count: int) -> Overrides:
    """N tenants cycling through the stack's own tenants (plan, tier, budget, quota kept), with
    the stack cap raised, if needed, to the budgets' sum plus the original headroom."""
    if not 0 <= count <= MAX_TENANTS:
        raise BadInput(f"--tenants must be between 0 and {MAX_TENANTS}, got {count}")
    cfg = load_validated(project_dir, stack)  # the real config must be valid before we scale it
    raw, _ = read_stack_files(project_dir, stack)
    templates = raw.values["tenants"]
    if count and not templates:
        raise BadInput(f"stack {stack!r} has no tenants to take a plan mix from")
    width = len(str(max(count - 1, 0)))
    tenants = []
    for i in range(count):
        template = dict(templates[i % len(templates)])
        template["id"] = f"{template['id'][:24].rstrip('-')}-{i:0{width}d}"
        tenants.append(template)
    headroom = cfg.cost.stack_cap_usd - sum(t.monthly_budget_usd for t in cfg.tenants)
    budgets = sum(float(t["monthly_budget_usd"]) for t in tenants)
    cost = {**raw.values["cost"], "stack_cap_usd": max(cfg.cost.stack_cap_usd, math.ceil(budgets + headroom))}
    return Overrides({"tenants": tenants, "cost": cost}, source=f"--tenants {count}")
