"""Alert subscriptions: inside the residency zone, and at least one for a production stack."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackconfig.models import ZONE_REGIONS


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if has("alerts") and has("zone"):
        allowed = ZONE_REGIONS[s["zone"]]
        for i, sub in enumerate(s["alerts"].subscriptions):
            if sub.region is not None and sub.region not in allowed:
                out.append(
                    (
                        f"alerts.subscriptions[{i}].endpoint",
                        f"{sub.protocol} endpoint in {sub.region} is outside residency zone {s['zone']!r} "
                        f"(allowed: {', '.join(allowed)})",
                    )
                )
        if s.get("production") and not s["alerts"].subscriptions:
            out.append(
                (
                    "alerts.subscriptions",
                    "a production stack needs at least one: its failover alarms and budget alerts go nowhere",
                )
            )
    return out
