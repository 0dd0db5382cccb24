"""The tenancy matrix for one tenant, as JSON, from plan-shaped resources: what
`meridian policy --explain --tenant <id>` prints. Run from the pack's directory (the pack imports
nothing from the project, so the CLI hands it the plan on stdin):

    cd policies && python -m access.explain < request.json

where request.json is {"resources": [<plan resources>], "config": {<rule settings>}, "tenant": "acme"}.
Prints {"tenant", "tenants", "rows": [...], "coverage": [{"class", "ways"}], "not_counted": [...],
"findings": [...]}; a row whose reach rests on a managed policy the pack does not ship names it in
`assumed`. Exit 2 with a message for a tenant the plan does not have.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from access.rule import NOT_COUNTED, coverage, findings, tenant_matrix, tenants_of


@dataclass
class PlanResource:
    """A plan resource shaped as the analyzer's stack resources are (what the rules read)."""

    urn: str
    resource_type: str
    name: str
    props: dict
    property_dependencies: dict[str, list[PlanResource]] = field(default_factory=dict)
    provider: PlanResource | None = None
    parent: PlanResource | None = None


def from_plan(resources: list[dict]) -> list[PlanResource]:
    out = {
        r["urn"]: PlanResource(r["urn"], r["type"], r.get("name") or r["urn"].rsplit("::", 1)[-1], r.get("inputs") or {})
        for r in resources
    }
    for r in resources:
        res = out[r["urn"]]
        res.property_dependencies = {k: [out[d] for d in v if d in out] for k, v in (r.get("propertyDependencies") or {}).items()}
        provider = str(r.get("provider") or "")
        res.provider = out.get(provider) or out.get(provider.rsplit("::", 1)[0])  # "<urn>" or "<urn>::<id>"
        res.parent = out.get(str(r.get("parent") or ""))
    return list(out.values())


def explain(request: dict[str, Any]) -> dict[str, Any]:
    resources = from_plan(request["resources"])
    config, tenant = request.get("config") or {}, str(request["tenant"])
    world, reach, accesses, found = findings(resources, config, tenant)
    tenants = tenants_of(world)
    if tenant not in tenants:
        raise ValueError(f"tenant {tenant!r} is not in the plan; its tenants: {', '.join(tenants) or 'none'}")
    own = [
        {"urn": u, "message": str(m), "level": "advisory" if m.startswith("unverifiable") else "mandatory"}
        for u, m in found
        if f"enant {tenant}'s" in str(m)
    ]
    rows = tenant_matrix(world, reach, accesses, tenant)
    return {
        "tenant": tenant,
        "tenants": tenants,
        "rows": rows,
        "coverage": coverage(rows),
        "not_counted": list(NOT_COUNTED),
        "findings": own,
    }


def main() -> int:
    try:
        print(json.dumps(explain(json.load(sys.stdin)), indent=1))
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
