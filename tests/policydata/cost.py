"""Budgets: the stack's and each tenant's."""

from __future__ import annotations

from .base import STACK, Builder, Mutations, drop


def build(b: Builder) -> None:
    for name, tag in (
        ("stack", f"user:meridian:stack${STACK}"),
        ("tenant-acme", "user:meridian:tenant$acme"),
        ("tenant-globex", "user:meridian:tenant$globex"),
    ):
        b.add(
            "aws:budgets/budget:Budget",
            f"budget-{name}",
            {
                "budgetType": "COST",
                "timeUnit": "MONTHLY",
                "limitAmount": "1000.00",
                "limitUnit": "USD",
                "costFilters": [{"name": "TagKeyValue", "values": [tag]}],
            },
        )


MUTATIONS: Mutations = {
    "budgets-tenant-budget-exists": [
        ("a tenant without a budget", drop("budget-tenant-globex")),
    ],
    "budgets-stack-budget-exists": [
        ("the stack budget removed", drop("budget-stack")),
    ],
}
