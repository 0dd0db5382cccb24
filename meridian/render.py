"""Terminal views of a plan (rich): the component tree and resource counts per type and region."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from meridian.engine.plan import Plan, short_type

# Beyond this many children of one type under one component, show a count instead of names.
_NAME_LIMIT = 3
# Beyond this many components of one type under one parent (tenants at scale), summarise the rest.
_COMPONENT_LIMIT = 8


def component_tree(plan: Plan) -> Tree:
    """Stack -> components -> their resources, grouped by type (names when few, counts when many)."""
    root = next((r for r in plan.registrations if r.type == "pulumi:pulumi:Stack"), None)
    tree = Tree(f"[bold]{plan.project}[/] stack [bold cyan]{plan.stack}[/]")
    if root is None:
        return tree

    def add(node: Tree, urn: str) -> None:
        mine = plan.owned.get(urn, [])
        by_type = Counter(r.type for r in mine)
        for token, n in sorted(by_type.items()):
            names = sorted(r.name for r in mine if r.type == token)
            label = ", ".join(names) if n <= _NAME_LIMIT else f"x{n}"
            node.add(f"[green]{short_type(token)}[/] {label}")
        components = [c for c in plan.children.get(urn, []) if not c.custom]
        shown: Counter[str] = Counter()
        for child in components:
            shown[child.type] += 1
            if shown[child.type] > _COMPONENT_LIMIT:
                continue
            region = plan.component_region(child.urn)
            sub = node.add(f"[bold magenta]{child.type}[/] {child.name}" + (f" [dim]({region})[/]" if region else ""))
            add(sub, child.urn)
        for token, n in shown.items():
            if n > _COMPONENT_LIMIT:
                node.add(f"[dim]... and {n - _COMPONENT_LIMIT} more {token} (see --json)[/]")

    add(tree, root.urn)
    return tree


def counts_table(plan: Plan) -> Table:
    regions = plan.regions()
    table = Table(title=f"Resources per type and region ({len(plan.custom)} total)")
    table.add_column("type")
    for region in regions:
        table.add_column(region, justify="right")
    table.add_column("total", justify="right", style="bold")
    for token, per_region in plan.counts().items():
        table.add_row(short_type(token), *(str(per_region.get(r, "")) for r in regions), str(sum(per_region.values())))
    totals = Counter()
    for per_region in plan.counts().values():
        totals.update(per_region)
    table.add_row("[bold]all[/]", *(f"[bold]{totals.get(r, 0)}[/]" for r in regions), f"[bold]{sum(totals.values())}[/]")
    return table


def print_plan(plan: Plan, console: Console) -> None:
    console.print(component_tree(plan))
    console.print(counts_table(plan))


def cost_summary(report) -> str:
    """One line for the preview: the estimate against the cap, and the unit economics."""
    per_1k = report.usd_per_1k_requests
    unit = f", ${per_1k:.6f} per 1k requests at quota" if per_1k is not None else ""
    verdict = "[red]over[/]" if report.problems else "[green]within caps[/]"
    return f"cost: ${report.total_usd:,.2f}/month vs stack cap ${report.stack_cap_usd:,.2f} ({verdict}){unit}"


def print_cost(report, console: Console) -> None:
    """Tables a FinOps reader can act on: where the money goes, and each tenant against its budget."""
    total = report.total_usd or 1.0
    by_type = Table(title=f"{report.stack}: monthly estimate by resource type (USD)")
    by_type.add_column("type")
    by_type.add_column("USD/month", justify="right")
    by_type.add_column("share", justify="right")
    for token, usd in report.by("type").items():
        by_type.add_row(short_type(token) if ":" in token else token, f"{usd:,.2f}", f"{usd / total:.0%}")
    console.print(by_type)

    by_region = Table(title="by region")
    by_region.add_column("region")
    by_region.add_column("USD/month", justify="right")
    for region, usd in report.by("region").items():
        by_region.add_row(region, f"{usd:,.2f}")
    console.print(by_region)

    tenants = Table(title="by tenant (direct + allocated share of the platform) vs budget")
    for col in ("tenant", "plan", "direct", "shared", "total", "budget", "used"):
        tenants.add_column(col, justify="left" if col in ("tenant", "plan") else "right")
    for t in sorted(report.tenants, key=lambda t: -t.total_usd):
        used = t.total_usd / t.budget_usd
        style = "red" if t.over_budget else ("yellow" if used >= 0.8 else "")
        tenants.add_row(t.tenant, t.plan, f"{t.direct_usd:,.2f}", f"{t.shared_usd:,.2f}", f"{t.total_usd:,.2f}",
                        f"{t.budget_usd:,.2f}", f"[{style}]{used:.0%}[/]" if style else f"{used:.0%}")
    console.print(tenants)
    console.print(cost_summary(report))
    console.print(f"[dim]prices: {report.date}; {report.source}[/]")
    if report.unpriced_types:
        console.print(f"[yellow]not priced (no model yet):[/] {', '.join(report.unpriced_types)}")
