"""`meridian preview --zone us --format markdown [--diff BASE_DIR]`: a zone's preview as one PR
comment: a line per stack (role, resources, verdict, cost), then, against a base zone's `--json DIR`
(its `zone.json` and one plan per stack), each stack's diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meridian.errors import BadInput

COMMENT_MARKER = "<!-- meridian:zone-preview:{zone} -->"


def load_zone_base(directory: Path, zone: str) -> dict[str, dict[str, Any]]:
    """A base zone's plans by stack, from what `--zone --json DIR` wrote; exit 2 naming what is wrong."""
    import json

    from meridian.engine.plandiff import load_plan

    index_path = directory / "zone.json"
    try:
        index = json.loads(index_path.read_text())
    except FileNotFoundError:
        raise BadInput(
            f"--diff {directory}: no zone.json there (write a base with `meridian preview --zone {zone} --json DIR`)"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInput(f"--diff {directory}: zone.json cannot be read ({exc})") from None
    if not isinstance(index, dict) or index.get("zone") != zone or not isinstance(index.get("stacks"), list):
        raise BadInput(f"--diff {directory}: zone.json is not a preview of zone {zone!r}")
    return {s["stack"]: load_plan(directory / s["plan"], "base") for s in index["stacks"]}


def empty_plan(stack: str) -> dict[str, Any]:
    """The base of a stack the base zone did not have: nothing, so everything is a create."""
    return {
        "stack": stack,
        "resources": [],
        "policy": {"evaluated": True, "violations": []},
        "cost": {"evaluated": True, "monthly_total_usd": 0.0, "by_type": {}, "by_region": {}, "tenants": [], "problems": []},
    }


def zone_markdown(zone: str, previews: list[Any], problems: list[str], base: dict[str, dict[str, Any]] | None) -> str:
    """`previews`: the zone's StackPreviews, platform first."""
    from meridian.engine.plandiff import diff_plans, to_markdown

    out = [
        COMMENT_MARKER.format(zone=zone),
        f"## meridian preview: zone `{zone}` ({len(previews)} stacks)",
        "",
        "| stack | role | resources | policy | cost $/month |",
        "|---|---|---:|---|---:|",
    ]
    for p in previews:
        mandatory, advisory = p.violations("mandatory"), p.violations("advisory")
        verdict = f"{'**FAILED**' if mandatory else 'passed'} ({mandatory} mandatory / {advisory} advisory)"
        role = "platform" if p.stack == zone else "cell"
        out.append(f"| `{p.stack}` | {role} | {p.resources:,} | {verdict} | {p.cost_usd:,.2f} |")
    out += ["", *[f"- zone check: {problem}" for problem in problems]]
    out += [f"- cost gate ({p.stack}): {problem}" for p in previews for problem in p.cost_problems]
    if base is not None:
        from meridian.engine.plandiff import load_plan

        gone = sorted(set(base) - {p.stack for p in previews})
        out += [f"- `{s}`: in the base zone, not in this one (its stack is removed: not previewed)" for s in gone]
        for p in previews:
            head = load_plan(p.plan_file, "head")  # written by the stack's worker: one plan in memory at a time
            diff = diff_plans(base.get(p.stack) or empty_plan(p.stack), head)
            if diff.has_changes:
                out += ["", to_markdown(diff, title=f"stack `{p.stack}`").split("\n", 1)[1]]
            else:
                out += ["", f"### stack `{p.stack}`: no change against the base"]
    return "\n".join(out).rstrip() + "\n"
