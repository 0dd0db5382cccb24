"""Rules that span keys, one module per config section.

Each check reads whichever sections validated (a mapping of section name -> model) and returns
(key path, message) pairs; a section that failed to validate is absent, so its checks skip it while
every other section is still checked and one run reports every problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackconfig.checks import account, alerts, cells, cluster, cost, dr, failover, regions, teardown, tenants

# The order problems are reported in.
SECTION_CHECKS = (
    regions.problems,
    cluster.problems,
    failover.problems,
    dr.problems,
    tenants.problems,
    cells.problems,
    account.problems,
    alerts.problems,
    cost.problems,
    teardown.problems,
)


def cross_field_problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every cross-key problem of the validated sections `s`, as (key path, message) pairs."""
    return [found for check in SECTION_CHECKS for found in check(s)]
