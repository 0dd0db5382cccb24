"""What changed between two plans (base branch vs the change under review), for a PR comment.

Resources are matched by URN (a rename is a delete + create, as Pulumi does it without aliases);
a changed resource lists the input paths that differ. Policy violations are matched by
(rule, level, resource): new ones and fixed ones. Cost: the monthly total and each region, tenant
and type whose estimate moved.

Secrets: plans carry them as `[secret]` and this module never shows a value unless both sides are
plain short scalars; a secret that changed is invisible in both plans, so it cannot leak here.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meridian.engine.plan import short_type
from meridian.errors import BadInput

SECRET = "[secret]"
STACK_SCOPE = "(stack)"  # a stack policy's violation has no resource URN
COMMENT_MARKER = "<!-- meridian:plan-diff:{stack} -->"  # how CI finds this stack's comment to update it
_VALUE_LIMIT = 40  # a changed value longer than this is named, not shown (a digest changing says nothing)
_INPUT_LIMIT = 120  # an added or removed resource's input: an https endpoint fits
_INPUTS_SHOWN = 8  # inputs listed per row; the JSON has them all
_RESTATES_TYPE = frozenset({"apiVersion", "kind"})  # a Kubernetes object's type, already in the row
_ROWS = 40  # rows per Markdown section; the JSON has them all
_MAX_CHARS = 60_000  # GitHub refuses a comment over 65,536 characters
_EPSILON = 0.005  # cost moves below half a cent are noise from rounding
# Values under these paths are never shown, even in clear in a plan (a secret the program forgot to mark):
# credential-like names and the payload of Kubernetes Secrets and ConfigMaps.
_SENSITIVE = re.compile(r"password|passphrase|secret|token|credential|private|api_?key|^(string)?[dD]ata\.", re.I)


# --- loading ------------------------------------------------------------------------------------


def load_plan(path: Path, role: str) -> dict[str, Any]:
    """Read a plan JSON written by `meridian preview --json`; exit 2 with what is wrong otherwise."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise BadInput(
            f"{role} plan {path}: file not found (write one with `meridian preview --stack STACK --json {path}`)"
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise BadInput(f"{role} plan {path}: cannot read it ({exc.__class__.__name__})") from None
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{role} plan {path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    check_plan(plan, f"{role} plan {path}")
    return plan


def check_plan(plan: Any, where: str) -> None:
    if not isinstance(plan, dict):
        raise BadInput(f"{where}: expected a JSON object with 'stack' and 'resources', got {type(plan).__name__}")
    if not isinstance(plan.get("stack"), str) or not isinstance(plan.get("resources"), list):
        raise BadInput(
            f"{where}: not a meridian plan (needs 'stack' (string) and 'resources' (list), as `meridian preview --json` writes)"
        )
    seen: set[str] = set()
    for i, r in enumerate(plan["resources"]):
        if not isinstance(r, dict) or not isinstance(r.get("urn"), str) or not isinstance(r.get("type"), str):
            raise BadInput(f"{where}: resources[{i}] needs 'urn' and 'type' strings")
        if r["urn"] in seen:
            raise BadInput(f"{where}: resources[{i}]: duplicate URN {r['urn']}")
        seen.add(r["urn"])
    for key in ("policy", "cost"):
        if key in plan and not isinstance(plan[key], dict):
            raise BadInput(f"{where}: '{key}' must be an object")


# --- the diff -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueChange:
    path: str
    before: Any = None  # shown only when both sides are short plain scalars
    after: Any = None
    shown: bool = False
    secret: bool = False  # a secret input whose value changed (its keyed digest did): never shown


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str
    name: str
    region: str | None
    changes: tuple[ValueChange, ...] = ()
    protect: bool = False
    # an added or removed resource's plain top-level inputs (what `pulumi preview --diff` prints with
    # + or -): a new alert subscriber's endpoint is read in the comment, not guessed from a hash
    inputs: tuple[tuple[str, Any], ...] = ()

    @property
    def keys(self) -> list[str]:
        return [c.path for c in self.changes]


@dataclass(frozen=True)
class ViolationRef:
    policy: str
    level: str
    urn: str
    message: str
    type: str = ""  # of the resource, from the plan the violation was found in
    region: str | None = None

    @property
    def name(self) -> str:
        return urn_name(self.urn) if self.urn else STACK_SCOPE


@dataclass(frozen=True)
class CostLine:
    key: str
    before: float | None  # None: absent on that side
    after: float | None

    @property
    def delta(self) -> float:
        return (self.after or 0.0) - (self.before or 0.0)


@dataclass
class CostDiff:
    evaluated: bool
    total: CostLine | None = None
    regions: list[CostLine] = field(default_factory=list)
    tenants: list[CostLine] = field(default_factory=list)
    types: list[CostLine] = field(default_factory=list)
    head_problems: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class PlanDiff:
    stack: str
    added: list[ResourceChange]
    removed: list[ResourceChange]
    changed: list[ResourceChange]
    unchanged: int
    policy_compared: bool
    new_violations: list[ViolationRef]
    fixed_violations: list[ViolationRef]
    open_violations: int  # in both plans
    head_mandatory: int
    policy_note: str
    cost: CostDiff
    secrets_note: str = ""  # why secret values were not compared, if they were not
    # providers are counted apart, as `meridian preview` counts them ("N resources + P providers")
    unchanged_providers: int = 0
    head_resources: int = 0
    head_providers: int = 0

    @property
    def protected_deletes(self) -> list[ResourceChange]:
        """Deletes `pulumi up` refuses: the update fails on each until it is unprotected."""
        return [r for r in self.removed if r.protect]

    @property
    def blocked(self) -> bool:
        """The update cannot go through as planned: a mandatory violation or a protected delete."""
        return bool(self.head_mandatory or self.protected_deletes)

    @property
    def has_changes(self) -> bool:
        return bool(
            self.added
            or self.removed
            or self.changed
            or self.new_violations
            or self.fixed_violations
            or (self.cost.total is not None and abs(self.cost.total.delta) >= _EPSILON)
        )

    def to_json(self) -> dict[str, Any]:
        def resource(rc: ResourceChange) -> dict[str, Any]:
            out: dict[str, Any] = {"urn": rc.urn, "type": rc.type, "region": rc.region}
            if rc.changes:
                out["changed_keys"] = rc.keys
            if rc.inputs:
                out["inputs"] = dict(rc.inputs)
            return out

        cost = self.cost
        return {
            "stack": self.stack,
            "blocked": self.blocked,
            "resources": {
                "added": [resource(r) for r in self.added],
                "removed": [{**resource(r), "protect": r.protect} for r in self.removed],
                "changed": [resource(r) for r in self.changed],
                "unchanged": self.unchanged,
                "unchanged_providers": self.unchanged_providers,
                "protected_deletes": [r.urn for r in self.protected_deletes],
            },
            "secrets": {"compared": not self.secrets_note, "note": self.secrets_note},
            "policy": {
                "compared": self.policy_compared,
                "note": self.policy_note,
                "new": [asdict(v) for v in self.new_violations],
                "fixed": [asdict(v) for v in self.fixed_violations],
                "still_open": self.open_violations,
                "head_mandatory": self.head_mandatory,
            },
            "cost": {
                "compared": cost.evaluated,
                "note": cost.note,
                "monthly_total_usd": _cost_json(cost.total) if cost.total else None,
                "by_region": [_cost_json(c) for c in cost.regions],
                "by_tenant": [_cost_json(c) for c in cost.tenants],
                "by_type": [_cost_json(c) for c in cost.types],
                "head_problems": cost.head_problems,
            },
        }


def _cost_json(line: CostLine) -> dict[str, Any]:
    return {"key": line.key, "base": line.before, "head": line.after, "delta": round(line.delta, 2)}


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _is_resource(r: dict[str, Any]) -> bool:
    """Custom resources and providers; components only group them (their children show the change)."""
    return bool(r.get("custom", True)) and r["type"] != "pulumi:pulumi:Stack"


def diff_plans(base: dict[str, Any], head: dict[str, Any]) -> PlanDiff:
    """Compare two checked plans of the same stack (see `load_plan`)."""
    if base["stack"] != head["stack"]:
        raise BadInput(
            f"the plans are of different stacks: base is '{base['stack']}', head is '{head['stack']}' (diff a stack against itself)"
        )
    before = {r["urn"]: r for r in base["resources"] if _is_resource(r)}
    after = {r["urn"]: r for r in head["resources"] if _is_resource(r)}

    added = [_ref(after[u], inputs=plain_inputs(after[u])) for u in sorted(after.keys() - before.keys())]
    removed = [_ref(before[u], inputs=plain_inputs(before[u])) for u in sorted(before.keys() - after.keys())]
    old_secrets, new_secrets, secrets_note = _secret_digests(base, head)
    changed = []
    for urn in sorted(before.keys() & after.keys()):
        changes = resource_changes(before[urn], after[urn])
        changes += secret_changes(old_secrets.get(urn, {}), new_secrets.get(urn, {}), {c.path for c in changes})
        if changes:
            changed.append(_ref(after[urn], tuple(changes)))
    kept = (before.keys() & after.keys()) - {r.urn for r in changed}
    kept_providers = sum(1 for u in kept if _is_provider(after[u]))
    head_providers = sum(1 for r in after.values() if _is_provider(r))
    return PlanDiff(
        head["stack"],
        added,
        removed,
        changed,
        len(kept) - kept_providers,
        *_policy_diff(base, head),
        _cost_diff(base, head),
        secrets_note,
        kept_providers,
        len(after) - head_providers,
        head_providers,
    )


def _is_provider(r: dict[str, Any]) -> bool:
    return r["type"].startswith("pulumi:providers:")


def _secret_digests(base: dict[str, Any], head: dict[str, Any]) -> tuple[dict, dict, str]:
    """Both plans' secret digests, or empty maps and the reason they cannot be compared."""
    old, new = base.get("secrets"), head.get("secrets")
    if not isinstance(old, dict) or not isinstance(new, dict):
        missing = [side for side, s in (("base", old), ("head", new)) if not isinstance(s, dict)]
        which = "the base and head plans record" if len(missing) == 2 else f"the {missing[0]} plan records"
        return {}, {}, f"secret values not compared: {which} no secret digests (made by an older meridian)"
    if old.get("key_id") != new.get("key_id"):
        return (
            {},
            {},
            (
                "secret values not compared: the plans were made under different digest keys "
                "(preview both with the same MERIDIAN_PLAN_DIGEST_KEY, as CI does)"
            ),
        )
    return old.get("digests") or {}, new.get("digests") or {}, ""


def secret_changes(before: dict[str, str], after: dict[str, str], seen: set[str]) -> list[ValueChange]:
    """Secret inputs whose value changed (by keyed digest), where the inputs alone show `[secret]` on both sides."""
    return [
        ValueChange(path, secret=True)
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path) and path not in seen
    ]


def _ref(r: dict[str, Any], changes: tuple[ValueChange, ...] = (), inputs: tuple = ()) -> ResourceChange:
    return ResourceChange(
        r["urn"], r["type"], r.get("name") or urn_name(r["urn"]), r.get("region"), changes, bool(r.get("protect")), inputs
    )


def plain_inputs(r: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The top-level inputs shown in clear: set, short, one line, neither secret nor credential-like."""
    inputs = r.get("inputs") or {}
    return tuple(
        (key, value)
        for key, value in sorted(inputs.items())
        if value is not None and _showable(value, _INPUT_LIMIT) and not _SENSITIVE.search(key) and key not in _RESTATES_TYPE
    )


def resource_changes(before: dict[str, Any], after: dict[str, Any]) -> list[ValueChange]:
    """Input paths that differ, plus the resource options a reviewer must see (protect, provider, parent)."""
    out = value_changes(before.get("inputs") or {}, after.get("inputs") or {}, "")
    for option in ("protect", "provider", "parent"):
        if before.get(option) != after.get(option):
            out.append(_value_change(f"({option})", before.get(option), after.get(option)))
    return out


def value_changes(before: Any, after: Any, path: str) -> list[ValueChange]:
    if before == after:
        return []
    before, after = _document(before), _document(after)
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(before.keys() | after.keys()):
            out += value_changes(before.get(key), after.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [c for i, (b, a) in enumerate(zip(before, after, strict=True)) for c in value_changes(b, a, f"{path}[{i}]")]
    return [_value_change(path, before, after)]


def _document(value: Any) -> Any:
    """A JSON object held in a string (an IAM or bucket policy) as the object, so its changed keys show."""
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _value_change(path: str, before: Any, after: Any) -> ValueChange:
    if _showable(before) and _showable(after) and not _SENSITIVE.search(path):
        return ValueChange(path, before, after, shown=True)
    return ValueChange(path)


def _showable(value: Any, limit: int = _VALUE_LIMIT) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    return isinstance(value, str) and value != SECRET and len(value) <= limit and "\n" not in value


def _violations(plan: dict[str, Any]) -> tuple[bool, dict[tuple[str, str, str], ViolationRef]]:
    policy = plan.get("policy") or {}
    evaluated = bool(policy.get("evaluated", "violations" in policy))
    by_urn = {r["urn"]: r for r in plan["resources"]}
    refs = {}
    for v in policy.get("violations") or []:
        if isinstance(v, dict):
            urn = str(v.get("urn") or "")
            where = by_urn.get(urn, {})
            ref = ViolationRef(
                str(v.get("policy", "?")),
                str(v.get("level", "advisory")),
                urn,
                str(v.get("message", "")),
                where.get("type", ""),
                where.get("region"),
            )
            refs[(ref.policy, ref.level, ref.urn)] = ref
    return evaluated, refs


def _policy_diff(base: dict[str, Any], head: dict[str, Any]) -> tuple:
    base_eval, old = _violations(base)
    head_eval, new = _violations(head)
    head_mandatory = sum(1 for v in new.values() if v.level == "mandatory")
    if not (base_eval and head_eval):
        missing = " and ".join(side for side, ok in (("base", base_eval), ("head", head_eval)) if not ok)
        note = f"policy pack not evaluated in the {missing} plan: violations not compared"
        listed = [new[k] for k in sorted(new)] if head_eval else []
        return False, listed, [], 0, head_mandatory, note
    added = [new[k] for k in sorted(new.keys() - old.keys())]
    fixed = [old[k] for k in sorted(old.keys() - new.keys())]
    return True, added, fixed, len(new.keys() & old.keys()), head_mandatory, ""


def _lines(before: dict[str, Any], after: dict[str, Any]) -> list[CostLine]:
    """Keys whose value moved, largest move first."""
    lines = [CostLine(k, before.get(k), after.get(k)) for k in before.keys() | after.keys()]
    moved = [c for c in lines if abs(c.delta) >= _EPSILON or (c.before is None) != (c.after is None)]
    return sorted(moved, key=lambda c: (-abs(c.delta), c.key))


def _numbers(table: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in table.items() if isinstance(v, (int, float))} if isinstance(table, dict) else {}


def _tenant_totals(cost: dict[str, Any]) -> dict[str, float]:
    return {
        str(t["tenant"]): float(t["total_usd"])
        for t in cost.get("tenants") or []
        if isinstance(t, dict) and "tenant" in t and isinstance(t.get("total_usd"), (int, float))
    }


def _cost_diff(base: dict[str, Any], head: dict[str, Any]) -> CostDiff:
    old, new = base.get("cost") or {}, head.get("cost") or {}
    problems = [str(p) for p in new.get("problems") or []]
    totals = old.get("monthly_total_usd"), new.get("monthly_total_usd")
    if not all(isinstance(t, (int, float)) for t in totals):
        missing = " and ".join(side for side, t in zip(("base", "head"), totals, strict=True) if not isinstance(t, (int, float)))
        return CostDiff(False, head_problems=problems, note=f"no cost estimate in the {missing} plan")
    return CostDiff(
        True,
        total=CostLine("monthly total", float(totals[0]), float(totals[1])),
        regions=_lines(_numbers(old.get("by_region")), _numbers(new.get("by_region"))),
        tenants=_lines(_tenant_totals(old), _tenant_totals(new)),
        types=_lines(_numbers(old.get("by_type")), _numbers(new.get("by_type"))),
        head_problems=problems,
    )


# --- Markdown for the PR comment ----------------------------------------------------------------


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text).replace('`', chr(39))}`"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _delta(line: CostLine, unit: str = "") -> str:
    d = line.delta
    if abs(d) < _EPSILON:
        return f"±$0.00{unit}"
    pct = f" ({d / line.before:+.1%})" if line.before else ""
    return f"{'+' if d > 0 else '-'}${abs(d):,.2f}{unit}{pct}"


def _fmt_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # the engine's numbers are floats: 3.0 reads as 3
    return json.dumps(v) if not isinstance(v, str) else f'"{v}"'


def _resource_cell(rc: ResourceChange | ViolationRef) -> str:
    if isinstance(rc, ViolationRef) and not rc.urn:
        return STACK_SCOPE
    return f"{_code(rc.name)} ({short_type(rc.type)})" if rc.type else _code(rc.name)


def _capped(rows: list[str], total: int) -> list[str]:
    if total > _ROWS:
        rows = rows[:_ROWS] + [f"\n... and {total - _ROWS} more (all of them in the diff JSON)"]
    return rows


def headline(d: PlanDiff) -> str:
    parts = []
    if d.protected_deletes:
        n = len(d.protected_deletes)
        parts.append(f"🛑 {n} protected delete{'s' if n != 1 else ''} (`pulumi up` fails until unprotected)")
    if d.head_mandatory:
        parts.append(f"❌ {d.head_mandatory} mandatory violation{'s' if d.head_mandatory != 1 else ''} (blocks the update)")
    if d.policy_compared:
        if d.new_violations:
            rules = sorted({v.policy for v in d.new_violations})
            named = ", ".join(rules[:3]) + (f" +{len(rules) - 3} rules" if len(rules) > 3 else "")
            parts.append(f"🆕 {len(d.new_violations)} new violation{'s' if len(d.new_violations) != 1 else ''} ({named})")
        if d.fixed_violations:
            parts.append(f"✅ {len(d.fixed_violations)} fixed")
    if not d.head_mandatory and d.policy_compared and not d.new_violations:
        parts.append("policy ✅ no new violations")
    parts.append(f"resources +{len(d.added)} ~{len(d.changed)} -{len(d.removed)}")
    if d.cost.total is not None:
        parts.append(f"cost {_delta(d.cost.total, '/month')}")
    return " · ".join(parts)


def to_markdown(d: PlanDiff, title: str | None = None) -> str:
    """The PR comment: a headline a reviewer reads at a glance, then violations, cost, resources."""
    out = [
        COMMENT_MARKER.format(stack=d.stack),
        f"### {title or f'meridian preview: stack `{d.stack}`'}",
        "",
        f"**{headline(d)}**",
        "",
    ]
    out += _blockers_section(d)
    out += _policy_section(d)
    out += _cost_section(d.cost)
    out += _resources_section(d)
    return _fit("\n".join(out).rstrip() + "\n")


def _fit(markdown: str) -> str:
    """Within GitHub's comment limit (65,536 characters, with room for CI's own line): cut at a line."""
    if len(markdown) <= _MAX_CHARS:
        return markdown
    cut = markdown[: markdown.rindex("\n", 0, _MAX_CHARS - 200)]
    closing = "\n\n</details>" if cut.count("<details>") > cut.count("</details>") else ""
    return f"{cut}\n\n... (cut to fit a PR comment: the diff JSON has everything){closing}\n"


def _blockers_section(d: PlanDiff) -> list[str]:
    if not d.protected_deletes:
        return []
    out = [
        f"#### 🛑 Protected deletes ({len(d.protected_deletes)}): `pulumi up` fails on each",
        "",
        "Deleting these is what the change asks, but they are protected: unprotect them first in a change of "
        'their own, or keep them (docs/operations.md, "Offboarding a tenant").',
        "",
        "| resource | region |",
        "|---|---|",
    ]
    rows = [f"| {_resource_cell(r)} | {r.region or ''} |" for r in d.protected_deletes]
    return out + _capped(rows, len(rows)) + [""]


def _policy_section(d: PlanDiff) -> list[str]:
    out = []
    if not d.policy_compared:
        out += [f"> {d.policy_note}", ""]
    if d.new_violations:
        label = "New policy violations" if d.policy_compared else "Policy violations in this change"
        out += [
            f"#### {label} ({len(d.new_violations)})",
            "",
            "| level | rule | resource | region | what must change |",
            "|---|---|---|---|---|",
        ]
        rows = [
            f"| {'**mandatory**' if v.level == 'mandatory' else v.level} | {_code(v.policy)} | {_resource_cell(v)} | {v.region or ''} | {_cell(v.message)} |"
            for v in sorted(d.new_violations, key=lambda v: (v.level != "mandatory", v.policy, v.urn))
        ]
        out += _capped(rows, len(rows)) + [""]
    if d.fixed_violations:
        out += [f"#### Fixed violations ({len(d.fixed_violations)})", "", "| level | rule | resource |", "|---|---|---|"]
        rows = [f"| {v.level} | {_code(v.policy)} | {_resource_cell(v)} |" for v in d.fixed_violations]
        out += _capped(rows, len(rows)) + [""]
    if d.policy_compared and d.open_violations:
        out += [
            f"{d.open_violations} violation{'s' if d.open_violations != 1 else ''} already open on the base branch (unchanged).",
            "",
        ]
    return out


def _cost_section(cost: CostDiff) -> list[str]:
    if not cost.evaluated or cost.total is None:
        return [f"> cost: {cost.note}", ""]
    out = ["#### Cost (monthly estimate)", "", "| | base | head | delta |", "|---|---:|---:|---:|"]
    t = cost.total
    out.append(f"| **total** | {_usd(t.before)} | {_usd(t.after)} | **{_delta(t)}** |")
    for label, lines in (("region", cost.regions), ("tenant", cost.tenants), ("type", cost.types)):
        for line in lines[:_ROWS]:
            key = _code(short_type(line.key)) if label == "type" else _code(line.key)
            if label == "type" and ":" not in line.key:
                label_here = "estimate"  # a cost line that is no resource (tenants' storage at quota)
            else:
                label_here = label
            out.append(f"| {label_here} {key} | {_usd(line.before)} | {_usd(line.after)} | {_delta(line)} |")
    out.append("")
    if cost.tenants:
        out += [
            "_A tenant's row is its own resources plus its share of the platform's shared costs (clusters, "
            "database, network), allocated by request quota: adding or removing a tenant moves every other "
            "tenant's row._",
            "",
        ]
    out += [f"- ⚠️ {_cell(p)}" for p in cost.head_problems]
    return out + ([""] if cost.head_problems else [])


def _inputs_text(r: ResourceChange) -> str:
    shown = ", ".join(f"{_code(k)}: {_cell(_fmt_value(v))}" for k, v in r.inputs[:_INPUTS_SHOWN])
    more = len(r.inputs) - _INPUTS_SHOWN
    return shown + (f" (+{more} more)" if more > 0 else "")


def _change_text(c: ValueChange) -> str:
    if c.secret:
        return f"{_code(c.path)} [secret]"
    if c.shown:
        return f"{_code(c.path)}: {_cell(_fmt_value(c.before))} → {_cell(_fmt_value(c.after))}"
    return _code(c.path)


def _providers_note(d: PlanDiff) -> str:
    """The head plan's size as `meridian preview` states it, so the two outputs' counts add up."""
    if not d.head_resources and not d.head_providers:
        return ""
    providers = f" + {d.head_providers} provider{'s' * (d.head_providers != 1)}" if d.head_providers else ""
    return f"; the change's plan: {d.head_resources} resources{providers}, as `meridian preview` counts them"


def _resources_section(d: PlanDiff) -> list[str]:
    note = [f"> {d.secrets_note}", ""] if d.secrets_note else []
    if not (d.added or d.removed or d.changed):
        return [*note, f"No resource changes ({d.unchanged} unchanged{_providers_note(d)})."]
    out = [
        *note,
        f"<details><summary>Resources: {len(d.added)} to add, {len(d.changed)} to change, {len(d.removed)} to delete, "
        f"{d.unchanged} unchanged{_providers_note(d)}</summary>",
        "",
        "| | resource | region | inputs: changed (~), set (+ / -) |",
        "|---|---|---|---|",
    ]
    # deletes and changes first: a long list is capped, and what it hides then are additions
    rows = [
        f"| - | {_resource_cell(r)} | {r.region or ''} | "
        f"{'⚠️ protected: the delete fails until unprotected; ' if r.protect else ''}{_inputs_text(r)} |"
        for r in d.removed
    ]
    rows += [
        f"| ~ | {_resource_cell(r)} | {r.region or ''} | {', '.join(_change_text(c) for c in r.changes[:8])}"
        f"{f' (+{len(r.changes) - 8} more)' if len(r.changes) > 8 else ''} |"
        for r in d.changed
    ]
    rows += [f"| + | {_resource_cell(r)} | {r.region or ''} | {_inputs_text(r)} |" for r in d.added]
    out += _capped(rows, len(rows))
    return out + ["", "</details>"]
