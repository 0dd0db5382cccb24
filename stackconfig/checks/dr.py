"""Disaster recovery objectives that replication and failover can actually meet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackconfig.models import S3_RTC_MINUTES


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if has("dr"):
        dr = s["dr"]
        if dr.replication_time_control and dr.rpo_minutes < S3_RTC_MINUTES:
            out.append(
                (
                    "dr.rpo_minutes",
                    f"{dr.rpo_minutes:g} min is below S3 Replication Time Control's {S3_RTC_MINUTES} min bound: objects cannot meet it",
                )
            )
        if not dr.replication_time_control and s.get("production"):
            out.append(
                (
                    "dr.replication_time_control",
                    "a production stack needs it: S3 replication without RTC has no time bound, so no RPO holds for objects",
                )
            )
        if has("failover") and s["failover"].budget.pinned_client_s > dr.rto_minutes * 60:
            out.append(
                (
                    "dr.rto_minutes",
                    f"{dr.rto_minutes:g} min is shorter than the failover bound plus the ALB's client keep-alive "
                    f"({s['failover'].budget.pinned_client_s} s): a client pinned to a failed region would outlast it",
                )
            )
    return out
