"""The plan catalog and the tenants: unique ids, known plans, a quota exactly where the plan wants one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stackconfig.errors import did_you_mean
from stackconfig.models import Quota

# A cell's tenant file is one Kubernetes Secret, whose data hold at most 1 MiB (MaxSecretSize).
SECRET_MAX_BYTES = 1024 * 1024
# The longest entry a tenant file can hold, less its plan name: a 32-character id, a silo tenant's
# data (63-character bucket, multi-Region key ARNs, a 64-character role name, the replica key) and
# three quotas of QUOTA_MAX's digits, as the service's compact JSON renders it. Measured, exactly:
# tests/test_service_tenants.py::test_the_longest_tenant_entry_is_the_bound_cells_size_is_checked_against.
TENANT_ENTRY_MAX_BYTES_BUT_PLAN = 707


def tenant_entry_max_bytes(plans: Mapping[str, Any]) -> int:
    """The longest tenant file entry with this plan catalog (a plan's name as JSON writes it)."""
    return TENANT_ENTRY_MAX_BYTES_BUT_PLAN + max((len(json.dumps(name)) - 2 for name in plans), default=0)


def max_tenants_per_file(plans: Mapping[str, Any]) -> int:
    """How many of the longest entries a cell's tenant file holds: `[e,e,...]` within a Secret."""
    return (SECRET_MAX_BYTES - 1) // (tenant_entry_max_bytes(plans) + 1)


def unknown_plans_of_raw_entries(raw_tenants: Any, plans: Mapping[str, Any]) -> list[tuple[str, str]]:
    """When the tenants section did not validate (another key of some entry is wrong), the plan
    check still runs on the entries as written, so one run names every problem of an entry."""
    out: list[tuple[str, str]] = []
    for i, entry in enumerate(raw_tenants if isinstance(raw_tenants, list) else ()):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("plan"), str) or entry["plan"] in plans:
            continue
        tenant_id = entry.get("id")
        at = f"tenants[{tenant_id!r}]" if isinstance(tenant_id, str) else f"tenants[{i}]"
        plan = entry["plan"]
        out.append((f"{at}.plan", f"unknown plan {plan!r} (allowed: {', '.join(plans)})" + did_you_mean(plan, plans)))
    return out


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    plans = s.get("plans")
    for name, plan in (plans or {}).items():
        if plan.per_tenant and plan.quota is not None:
            out.append((f"plans.{name}.quota", "a per_tenant plan takes its quota from each tenant; remove it here"))
        if not plan.per_tenant and plan.quota is None:
            out.append((f"plans.{name}.quota", "required unless per_tenant: true"))

    if "cells" in s and plans is not None and s["cells"].size > max_tenants_per_file(plans):
        most = max_tenants_per_file(plans)
        out.append(
            (
                "cells.size",
                f"{s['cells'].size:,} is over {most:,}: a cell's tenant file is one Kubernetes Secret (at most 1 MiB) and "
                f"an entry takes up to {tenant_entry_max_bytes(plans):,} bytes with this plan catalog; set cells.size to "
                f"at most {most:,} and put further tenants in more cells",
            )
        )
    tenants = s.get("tenants") or ()
    if "cells" in s and len(tenants) > s["cells"].size:
        where = "this cell" if s.get("platform") else "the platform's inline tenants (a stack of the zone like any cell)"
        out.append(
            (
                "tenants",
                f"{len(tenants)} tenants in {where}, over cells.size {s['cells'].size}: put new tenants in a cell stack "
                "with room, or a new one (docs/operations.md)",
            )
        )
    first_at: dict[str, int] = {}
    for i, tenant in enumerate(tenants):
        at = f"tenants[{tenant.id!r}]"  # named by id, as written: nobody counts list entries
        if tenant.id in first_at:
            out.append(
                (
                    f"{at}.id",
                    f"duplicate tenant id {tenant.id!r} (entries {first_at[tenant.id] + 1} and {i + 1} of the list); ids must be unique within a stack",
                )
            )
        first_at.setdefault(tenant.id, i)
        if plans is None:
            continue
        plan = plans.get(tenant.plan)
        if plan is None:
            out.append(
                (f"{at}.plan", f"unknown plan {tenant.plan!r} (allowed: {', '.join(plans)})" + did_you_mean(tenant.plan, plans))
            )
        elif plan.per_tenant and tenant.quota is None:
            out.append(
                (
                    f"{at}.quota",
                    f"plan {tenant.plan!r} is set per tenant: give this tenant a quota "
                    f"(quota: {{{', '.join(f'{key}: <n>' for key in Quota.model_fields)}}})",
                )
            )
        elif not plan.per_tenant and tenant.quota is not None:
            out.append((f"{at}.quota", f"plan {tenant.plan!r} has fixed quotas; remove the tenant's own"))
    return out
