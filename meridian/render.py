"""Views of a plan and its cost for people: the component tree and the tables, as Rich (terminal)
or Markdown (PR comments). Every view is sorted, so two runs of the same plan render the same bytes.

The tree a reviewer reads: grouped by region, then component; each component's resources summarised
by type with counts; sibling components of one type (the tenants of a region) folded into one line
that still names every one of them, so nothing that changed (a newly added tenant) is ever hidden.
`full=True` lists every component and resource by name.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from meridian.engine.plan import GLOBAL, Plan, short_type
from meridian.engine.recorder import is_resource

STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass
class TreeNode:
    """One line of the tree, free of presentation: `kind` picks the style, `title` and `detail` are plain text."""

    kind: str  # stack | region | component | group | types
    title: str
    detail: str = ""
    children: list[TreeNode] = field(default_factory=list)


def _type_label(token: str) -> str:
    """`aws:ec2/subnet:Subnet` -> `ec2:Subnet`: short, and unambiguous within the project."""
    return short_type(token).split(":", 1)[1]


def _type_counts(counts: Counter[str]) -> str:
    return ", ".join(f"{_type_label(t)} x{n}" for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _names(names: list[str]) -> str:
    """`a-t-acme, a-t-globex` -> `a-t-{acme, globex}`: the shared prefix once, every name kept."""
    names = sorted(names)
    if len(names) == 1:
        return names[0]
    prefix = os.path.commonprefix(names)
    prefix = prefix[: prefix.rfind("-") + 1] if "-" in prefix else ""
    return f"{prefix}{{{', '.join(n[len(prefix) :] for n in names)}}}"


def region_label(regions: frozenset[str], roles: Mapping[str, str] | None = None) -> str:
    """`eu-west-1 (dr)`; roles name the stack's primary and dr regions (other regions host what AWS
    keeps in one region, like Route 53's health-check alarms in us-east-1)."""
    roles = roles or {}

    def named(region: str) -> str:
        return f"{region} · {roles[region]}" if region in roles else region

    if len(regions) == 1:
        return named(next(iter(regions)))
    if not regions:
        return GLOBAL
    return "cross-region (" + " + ".join(named(r) for r in sorted(regions, key=lambda r: role_rank(r, roles))) + ")"


ROLE_ORDER = {"primary": 0, "dr": 1}


def role_rank(region: str, roles: Mapping[str, str] | None) -> tuple[int, str]:
    """Sort key of a region: the primary first, then the dr region, then the others by name."""
    return (ROLE_ORDER.get((roles or {}).get(region, ""), len(ROLE_ORDER)), region)


def plan_tree(plan: Plan, *, full: bool = False, roles: Mapping[str, str] | None = None) -> TreeNode:
    """Stack -> region groups -> components (-> nested components) -> resources by type.

    A component whose resources span regions sits under `cross-region`, so a region's own line
    counts only its single-region components; where that differs from the region's total in the
    counts table, the line gives both."""
    root = next((r for r in plan.registrations if r.type == STACK_TYPE), None)
    n = len(plan.custom)
    tree = TreeNode("stack", f"{plan.project} stack {plan.stack}", f"{n} resource{'s' * (n != 1)}")
    if root is None:
        return tree

    def components_under(urn: str) -> list:
        return [c for c in plan.children.get(urn, []) if not c.custom]

    @cache
    def subtree(urn: str) -> tuple:
        """Every custom resource of a component and its nested components."""
        own = tuple(plan.owned.get(urn, ()))
        return own + tuple(r for c in components_under(urn) for r in subtree(c.urn))

    def regions_of(urn: str) -> frozenset[str]:
        regions = {plan.region_of(r) for r in subtree(urn)}
        return frozenset(regions - {GLOBAL} or regions)  # a regionless password does not make a component cross-region

    def component_nodes(components: list) -> list[TreeNode]:
        by_type: dict[str, list] = {}
        for comp in sorted(components, key=lambda c: (c.type.rsplit(":", 1)[-1], c.name)):
            by_type.setdefault(comp.type, []).append(comp)
        out = []
        for token, comps in by_type.items():
            kind = token.rsplit(":", 1)[-1]
            if full or len(comps) == 1:
                out += [component_node(kind, c) for c in comps]
                continue
            counts = Counter(r.type for c in comps for r in subtree(c.urn))
            out.append(
                TreeNode(
                    "group", f"{kind} x{len(comps)}", _names([c.name for c in comps]), [TreeNode("types", _type_counts(counts))]
                )
            )
        return out

    def component_node(kind: str, comp) -> TreeNode:
        mine = plan.owned.get(comp.urn, [])
        if full:
            node = TreeNode("component", f"{kind} {comp.name}")
            by_type: dict[str, list[str]] = {}
            for r in mine:
                by_type.setdefault(r.type, []).append(r.name)
            node.children += [
                TreeNode("types", f"{short_type(t)} x{len(names)}", ", ".join(sorted(names)))
                for t, names in sorted(by_type.items())
            ]
        else:
            node = TreeNode("component", f"{kind} {comp.name}", _type_counts(Counter(r.type for r in mine)))
        node.children += component_nodes(components_under(comp.urn))
        return node

    groups: dict[frozenset[str], list] = {}
    for comp in components_under(root.urn):
        groups.setdefault(regions_of(comp.urn), []).append(comp)
    loose = [r for r in plan.owned.get(root.urn, []) if is_resource(r.type, r.custom)]  # directly under the stack
    in_region = Counter(plan.region_of(r) for r in plan.custom)
    every_group = set(groups) | {frozenset({plan.region_of(r)}) for r in loose}
    for regions in sorted(every_group, key=lambda g: (len(g) != 1, [role_rank(r, roles) for r in sorted(g)])):
        comps = groups.get(regions, [])
        direct = [r for r in loose if frozenset({plan.region_of(r)}) == regions]
        count = sum(len(subtree(c.urn)) for c in comps) + len(direct)
        detail = f"{count} resource{'s' * (count != 1)}"
        total = in_region[next(iter(regions))] if len(regions) == 1 else count
        if total != count:
            detail += f"; {total} in {next(iter(regions))} with those of the cross-region components below"
        node = TreeNode("region", region_label(regions, roles), detail)
        node.children += component_nodes(comps)
        if direct:
            node.children.append(TreeNode("types", _type_counts(Counter(r.type for r in direct)), "(directly under the stack)"))
        tree.children.append(node)
    return tree


_STYLE = {"stack": "bold", "region": "bold cyan", "component": "bold magenta", "group": "bold magenta", "types": "green"}


def rich_tree(node: TreeNode) -> Tree:
    def label(n: TreeNode) -> str:
        text = f"[{_STYLE[n.kind]}]{escape(n.title)}[/]"
        if not n.detail:
            return text
        return f"{text} [dim]({escape(n.detail)})[/]" if n.kind in ("stack", "region") else f"{text}: {escape(n.detail)}"

    def add(parent: Tree, n: TreeNode) -> None:
        for child in n.children:
            add(parent.add(label(child)), child)

    tree = Tree(label(node))
    add(tree, node)
    return tree


def markdown_tree(node: TreeNode) -> str:
    lines = []

    def walk(n: TreeNode, depth: int) -> None:
        title = f"**{n.title}**" if n.kind in ("region", "stack") else n.title
        if not n.detail:
            detail = ""
        else:
            detail = (
                f" ({n.detail})"
                if n.kind in ("region", "stack")
                else (f": `{n.detail}`" if n.kind == "group" else f": {n.detail}")
            )
        lines.append(f"{'  ' * depth}- {title}{detail}")
        for child in n.children:
            walk(child, depth + 1)

    for child in node.children:
        walk(child, 0)
    return "\n".join(lines)


def count_rows(plan: Plan, roles: Mapping[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows (type, per region, total; last row the totals) of the counts table; a
    region's column counts every resource in it, whichever component owns it."""
    regions = sorted(plan.regions(), key=lambda r: role_rank(r, roles))
    counts = plan.counts()
    rows = [[short_type(t), *(str(per.get(r, "")) for r in regions), str(sum(per.values()))] for t, per in counts.items()]
    totals: Counter[str] = Counter()
    for per in counts.values():
        totals.update(per)
    rows.append(["all", *(str(totals.get(r, 0)) for r in regions), str(sum(totals.values()))])
    return ["type", *(region_label(frozenset({r}), roles) for r in regions), "total"], rows


def counts_table(plan: Plan, roles: Mapping[str, str] | None = None) -> Table:
    header, rows = count_rows(plan, roles)
    table = Table(title=f"Resources per type and region ({len(plan.custom)} total)")
    table.add_column(header[0], no_wrap=True, overflow="fold")
    for col in header[1:]:
        table.add_column(col, justify="right", style="bold" if col == "total" else None)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_row(*(f"[bold]{c}[/]" for c in rows[-1]))
    return table


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", "<br>")

    right = [i > 0 and all(_numeric(r[i]) for r in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return (
        text.replace(",", "").replace(".", "").replace("$", "").replace("%", "").replace("-", "").strip().isdigit() or text == ""
    )


def counts_line(plan: Plan, analysed: int | None) -> str:
    """The three counts a reader meets (resources shown, analysed by the pack, in the plan JSON), in one line."""
    regs = plan.registrations
    providers = sum(1 for r in regs if r.type.startswith("pulumi:providers:"))
    components = sum(1 for r in regs if not r.custom and r.type != STACK_TYPE)
    stacks = sum(1 for r in regs if r.type == STACK_TYPE)
    policy = f"; the policy pack analysed {analysed} (all of them but the stack)" if analysed is not None else ""
    return (
        f"counts: {len(plan.custom)} resources (the tree and the counts table) + {providers} providers + {components} components"
        f" + {stacks} stack = {len(regs)} registrations in the plan JSON{policy}"
    )


# --- cost ----------------------------------------------------------------------------------------


def cost_summary(report) -> str:
    """One line for the preview: the estimate against the cap, and the unit economics (Rich markup)."""
    per_1k = report.usd_per_1k_requests
    unit = f", ${per_1k:.6f} per 1k requests at quota" if per_1k is not None else ""
    return f"cost: ${report.total_usd:,.2f}/month vs stack cap ${report.stack_cap_usd:,.2f} ({cost_verdict(report, markup=True)}){unit}"


def cost_verdict(report, *, markup: bool = False) -> str:
    """Which cap, if any, the estimate is over: `within the stack cap; 1 tenant over budget (globex)`."""

    def red(text: str) -> str:
        return f"[red]{text}[/]" if markup else f"**{text}**"

    over_stack = report.total_usd > report.stack_cap_usd + 1e-9
    verdict = (
        red("over the stack cap") if over_stack else ("[green]within the stack cap[/]" if markup else "within the stack cap")
    )
    over = [t.tenant for t in report.tenants if t.over_budget]
    if over:
        verdict += f"; {red(f'{len(over)} tenant' + ('s' if len(over) != 1 else '') + ' over budget')} ({', '.join(over)})"
    return verdict


def region_roles(cfg) -> dict[str, str]:
    """The stack's primary and dr regions, as the tree and the counts table mark them."""
    return {cfg.regions.primary.region: "primary", cfg.regions.dr.region: "dr"}


def cost_rows(report) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The cost tables as (header, rows), sorted by cost then name so ties never reorder."""
    total = report.total_usd or 1.0
    by_type = [
        [short_type(t), f"{usd:,.2f}", f"{usd / total:.0%}"]
        for t, usd in sorted(report.by("type").items(), key=lambda kv: (-round(kv[1], 6), kv[0]))
    ]
    by_region = [[r, f"{usd:,.2f}"] for r, usd in sorted(report.by("region").items(), key=lambda kv: (-round(kv[1], 6), kv[0]))]
    tenants = [
        [
            t.tenant,
            t.plan,
            f"{t.direct_usd:,.2f}",
            f"{t.shared_usd:,.2f}",
            f"{t.total_usd:,.2f}",
            f"{t.budget_usd:,.2f}",
            f"{t.total_usd / t.budget_usd:.0%}",
        ]
        for t in sorted(report.tenants, key=lambda t: (-round(t.total_usd, 6), t.tenant))
    ]
    tables = {
        f"{report.stack}: monthly estimate by resource type (USD)": (["type", "USD/month", "share"], by_type),
        "by region": (["region", "USD/month"], by_region),
        "by tenant (direct + allocated share of the platform) vs budget": (
            ["tenant", "plan", "direct", "shared", "total", "budget", "used"],
            tenants,
        ),
    }
    if report.pairs:  # in the stack total, not in its tenants' shares: the pairs' cells' tenants carry them
        tables["tenant cluster pairs (allocated to the tenants of their cells: meridian preview --zone)"] = (
            ["pair", "cells", "USD/month"],
            [[str(p.pair), ", ".join(p.cells), f"{p.monthly_usd:,.2f}"] for p in report.pairs],
        )
    return tables


def print_cost(report, console) -> None:
    """Tables a FinOps reader can act on: where the money goes, and each tenant against its budget."""
    over = {t.tenant: t for t in report.tenants}
    for title, (header, rows) in cost_rows(report).items():
        table = Table(title=escape(title))
        for i, col in enumerate(header):
            text_col = i == 0 or col == "plan"
            table.add_column(col, justify="left" if text_col else "right", no_wrap=text_col, overflow="fold")
        for row in rows:
            cells = [escape(c) for c in row]
            tenant = over.get(row[0]) if header[0] == "tenant" else None
            if tenant is not None:
                used = tenant.total_usd / tenant.budget_usd
                style = "red" if tenant.over_budget else ("yellow" if used >= 0.8 else "")
                if style:
                    cells[-1] = f"[{style}]{cells[-1]}[/]"
            table.add_row(*cells)
        console.print(table)
    console.print(cost_summary(report))
    console.print(f"[dim]prices: {escape(report.date)}; {escape(report.source)}[/]")
    if report.unpriced_types:
        console.print(f"[yellow]not priced (no model yet):[/] {escape(', '.join(report.unpriced_types))}")


def cost_markdown(report) -> str:
    out = [f"## meridian cost: stack `{report.stack}`", ""]
    for title, (header, rows) in cost_rows(report).items():
        out += [f"### {title}", "", markdown_table(header, rows), ""]
    verdict = "**over**" if report.problems else "within caps"
    out.append(
        f"Total ${report.total_usd:,.2f}/month vs stack cap ${report.stack_cap_usd:,.2f} ({verdict}). Prices: {report.date}; {report.source}."
    )
    out += [f"- over cap: {p}" for p in report.problems]
    if report.unpriced_types:
        out.append(f"\nNot priced (no model yet): {', '.join(report.unpriced_types)}")
    return "\n".join(out) + "\n"


# --- policy --------------------------------------------------------------------------------------

_LEVEL_ORDER = {"mandatory": 0, "advisory": 1, "remediate": 2, "disabled": 3}


def violations_markdown(report) -> str:
    if not report.violations:
        return (
            f"Policy pack `{report.pack.name}`: no violations ({len(report.pack.policies)} rules, config `{report.config_file}`)."
        )
    rows = [
        [v.level, v.policy, v.urn or "(the stack)", v.message]
        for v in sorted(report.violations, key=lambda v: (_LEVEL_ORDER.get(v.level, 9), v.policy, v.urn or "", v.message))
    ]
    return markdown_table(["level", "rule", "resource", "message"], rows)
