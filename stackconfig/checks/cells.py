"""Tenant cluster pairs: each lists cells the platform serves, none twice. A pair may be empty: that is
how one is retired (its cells move off while its clusters stay; a later change drops it), since the
platform deploys before its cells and would otherwise delete clusters its cells' tenants still run on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    cells = s.get("cells")
    if cells is None:
        return []
    out: list[tuple[str, str]] = []
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
