"""Tenant cluster pairs: each lists cells the platform serves, none twice. A pair may be empty: that is
how one is retired (its cells move off while its clusters stay; a later change drops it), since the
platform deploys before its cells and would otherwise delete clusters its cells' tenants still run on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackconfig.models import CLUSTER_PAIRS_MAX, TRUST_POLICY_CHARS


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    cells = s.get("cells")
    if cells is None:
        return []
    out: list[tuple[str, str]] = []
    if len(cells.cluster_pairs) > CLUSTER_PAIRS_MAX:
        out.append(
            (
                "cells.cluster_pairs",
                f"lists {len(cells.cluster_pairs)} pairs, over the {CLUSTER_PAIRS_MAX} a zone may have: each region's tenant "
                f"role trusts every cluster of the zone by ARN, and IAM holds a trust policy to {TRUST_POLICY_CHARS:,} "
                "characters. Hold more tenants per pair (up to EKS's 5,000 Pod Identity associations per cluster), or "
                'serve the rest from a platform stack of their own (docs/operations.md, "Tenant cluster pairs")',
            )
        )
    first_pair: dict[str, int] = {}
    for i, pair in enumerate(cells.cluster_pairs):
        key, k = f"cells.cluster_pairs[{i}]", i + 1
        for cell in pair:
            if cell not in cells.names:
                out.append((key, f"pair {k} lists cell {cell!r}, which cells.names does not: list the cell there first"))
            if cell in first_pair:
                out.append(
                    (
                        key,
                        f"cell {cell!r} is on pair {first_pair[cell]} and pair {k}: a cell's tenants run on one pair "
                        "(moving a cell between pairs is an edit of this list: docs/operations.md)",
                    )
                )
            first_pair.setdefault(cell, k)
    return out
