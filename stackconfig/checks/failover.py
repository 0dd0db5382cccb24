"""Route 53 failover: a zone to put the records in, and a failover bound within the RTO target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackconfig.planning import derived_failure_threshold, failover_budget


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if has("failover"):
        fo = s["failover"]
        if bool(fo.hosted_zone_id) == fo.create_zone:
            out.append(
                (
                    "failover.hosted_zone_id",
                    "required: the ID of the existing Route 53 zone for api_zone, delegated from its parent (certificates "
                    "validate only in a delegated zone); or, without it, create_zone: true for the two-phase bring-up"
                    if not fo.create_zone
                    else "set hosted_zone_id or create_zone: true, not both",
                )
            )
        if fo.failover_bound_s > fo.rto_target_s:
            fits = derived_failure_threshold(fo.rto_target_s, fo.health_check_interval_s, fo.dns_ttl_s)
            fix = (
                f"set failure_threshold <= {fits}"
                if failover_budget(fo.health_check_interval_s, fits, fo.dns_ttl_s).total_s <= fo.rto_target_s
                else f"lower dns_ttl_s or raise rto_target_s to at least {failover_budget(10, 1, fo.dns_ttl_s).total_s} s"
                " (interval 10, threshold 1)"
            )
            out.append(("failover", f"{fo.budget.explain()} exceeds rto_target_s {fo.rto_target_s} s; {fix}"))
    return out
