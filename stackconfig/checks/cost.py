"""Cost: tenant budgets within the stack cap, alert thresholds rising."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if has("cost"):
        cost = s["cost"]
        budgets = sum(t.monthly_budget_usd for t in s.get("tenants") or ())
        if has("tenants") and budgets > cost.stack_cap_usd:
            out.append(
                (
                    "tenants",
                    f"tenant budgets sum to ${budgets:,.2f}, over the stack cap cost.stack_cap_usd ${cost.stack_cap_usd:,.2f}",
                )
            )
        if list(cost.alert_thresholds_pct) != sorted(set(cost.alert_thresholds_pct)):
            out.append(
                ("cost.alert_thresholds_pct", f"{list(cost.alert_thresholds_pct)} must be strictly increasing percentages")
            )
    return out
