"""Residency and the region pair: both regions in the zone, distinct, with VPC ranges that fit and do not overlap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackconfig.models import ZONE_REGIONS


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if has("zone") and has("regions"):
        allowed = ZONE_REGIONS[s["zone"]]
        for role, spec in s["regions"].both:
            if spec.region not in allowed:
                out.append(
                    (
                        f"regions.{role}.region",
                        f"{spec.region!r} is outside residency zone {s['zone']!r} (allowed: {', '.join(allowed)})",
                    )
                )
    if has("regions"):
        pair = s["regions"]
        for role, spec in pair.both:
            if not 16 <= spec.cidr.prefixlen <= 20:
                out.append((f"regions.{role}.cidr", f"{spec.cidr} must be a /16 to /20 so three subnet tiers fit over the AZs"))
        if pair.primary.region == pair.dr.region:
            out.append(
                (
                    "regions.dr.region",
                    f"dr region must differ from primary ({pair.primary.region}): a pair in one region survives no regional outage",
                )
            )
        if pair.primary.cidr.overlaps(pair.dr.cidr):
            out.append(
                (
                    "regions.dr.cidr",
                    f"{pair.dr.cidr} overlaps primary {pair.primary.cidr}; the VPCs are peered for replication, pick disjoint ranges",
                )
            )
    return out
