"""Terminal views of a plan (rich): the component tree and resource counts per type and region."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from meridian.engine.plan import Plan, short_type

# Beyond this many children of one type under one component, show a count instead of names.
_NAME_LIMIT = 3


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
        for child in plan.children.get(urn, []):
            if not child.custom:
                region = plan.component_region(child.urn)
                sub = node.add(f"[bold magenta]{child.type}[/] {child.name}" + (f" [dim]({region})[/]" if region else ""))
                add(sub, child.urn)

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
