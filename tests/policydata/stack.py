"""The valid stack: every area of the pack, configured the way the rules want it, and one
rule's failing case built from it."""

from __future__ import annotations

from . import (
    access,
    backstops,
    cluster,
    clusteraccess,
    cost,
    cover,
    database,
    dataside,
    datastores,
    dr,
    failover,
    iam,
    k8splatform,
    keys,
    network,
    operations,
    residency,
    storage,
    tags,
    tenancy,
)
from .base import Builder, Mutations, Resources, stack_and_providers

AREAS = (
    keys,
    storage,
    database,
    cluster,
    network,
    operations,
    dr,
    iam,
    tenancy,
    cost,
    failover,
    datastores,
    backstops,
    clusteraccess,
    dataside,
    k8splatform,
)


def _merged(*modules) -> Mutations:
    out: Mutations = {}
    for module in modules:
        assert not out.keys() & module.MUTATIONS.keys(), f"{module.__name__} repeats a rule"
        out.update(module.MUTATIONS)
    return out


# rule -> [(what the mutation does, mutation)], each breaking its rule alone
MUTATIONS: Mutations = _merged(residency, tags, cover, access, *AREAS)
for _rule, _cases in cover.EXTRA.items():  # cover's cases for rules other areas own
    MUTATIONS[_rule] = MUTATIONS[_rule] + _cases


def valid_stack() -> Resources:
    b = Builder()
    stack_and_providers(b)
    for area in AREAS:
        area.build(b)
    return b.resources


def mutated(rule: str, index: int = 0) -> Resources:
    resources = valid_stack()
    MUTATIONS[rule][index][1](resources)
    return resources
