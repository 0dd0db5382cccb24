"""The plan: recorded registrations turned into the documented JSON shape, plus the views on it.

Plan JSON (docs/design.md, "The plan pipeline"):
  {"project", "stack", "resources": [{"urn", "type", "name", "parent", "provider", "region",
   "inputs", "dependencies", "propertyDependencies", "protect", "ignoreChanges" (only where set)}], "outputs", "policy", "cost"}

Deterministic: registration order depends on how the program's outputs resolve, and dependency
lists on set order, so resources are sorted by URN, dependencies too, and every mapping by key:
two runs of the same program give the same bytes, and a diff of two plans shows only real changes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from meridian.engine.mocks import kubeconfig_region
from meridian.engine.recorder import Registration, is_resource, plain_struct
from meridian.engine.secretdigest import plan_secrets

GLOBAL = "global"  # resources under no regional provider (components, the stack, providers themselves)


def short_type(token: str) -> str:
    """`aws:ec2/subnet:Subnet` -> `aws:ec2:Subnet`; `meridian:network:RegionNetwork` stays; a name that
    is not a type token (a cost line's `s3-storage-at-quota`) stays as it is."""
    if token.count(":") < 2:
        return token
    pkg, _, rest = token.partition(":")
    module, _, kind = rest.partition(":")
    return f"{pkg}:{module.split('/')[0]}:{kind}"


def canonical(value: Any) -> Any:
    """The same value with every mapping's keys sorted (lists keep their order: it means something)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


@dataclass
class Plan:
    project: str
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]

    def __post_init__(self) -> None:
        self.registrations = sorted(self.registrations, key=lambda r: r.urn)
        # region_of is asked for every resource by counts, tree, plan JSON, cost and preflight, and a
        # Kubernetes resource's answer walks its cluster component's resources: answer each once.
        self._regions: dict[str, str] = {}
        self._component_regions: dict[str, str | None] = {}

    @cached_property
    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.registrations}

    @cached_property
    def provider_regions(self) -> dict[str, str]:
        return {
            r.urn: region
            for r in self.registrations
            if r.type == "pulumi:providers:aws" and (region := r.explicit_region) is not None
        }

    @cached_property
    def kubernetes_provider_regions(self) -> dict[str, str]:
        return {
            r.urn: region
            for r in self.registrations
            if r.type == "pulumi:providers:kubernetes"
            and (region := kubeconfig_region(plain_struct(r.inputs).get("kubeconfig"))) is not None
        }

    def region_of(self, reg: Registration) -> str:
        """A per-resource `region` (pulumi-aws 7) wins over the provider's region."""
        region = self._regions.get(reg.urn)
        if region is None:
            region = self._regions[reg.urn] = self._region_of(reg)
        return region

    def _region_of(self, reg: Registration) -> str:
        explicit = reg.explicit_region
        if explicit is not None:
            return explicit
        if reg.provider_urn in self.provider_regions:
            return self.provider_regions[reg.provider_urn]
        # A provider of another package (kubernetes) talks to one region's cluster: its kubeconfig's
        # `aws eks get-token --region` says which (a cell's, parented to the stack), else the component
        # of the cluster it sits in does.
        provider = self.by_urn.get(reg.provider_urn)
        if reg.provider_urn in self.kubernetes_provider_regions:
            return self.kubernetes_provider_regions[reg.provider_urn]
        if provider is not None and provider.parent in self.by_urn and provider.parent != reg.urn:
            return self.component_region(provider.parent) or GLOBAL
        return GLOBAL

    @cached_property
    def custom(self) -> list[Registration]:
        return [r for r in self.registrations if is_resource(r.type, r.custom)]

    @cached_property
    def custom_by_type(self) -> dict[str, list[Registration]]:
        """type -> its custom resources, in registration order (checks ask by type, dozens of times)."""
        out: dict[str, list[Registration]] = defaultdict(list)
        for r in self.custom:
            out[r.type].append(r)
        return out

    @cached_property
    def children(self) -> dict[str, list[Registration]]:
        out: dict[str, list[Registration]] = defaultdict(list)
        for r in self.registrations:
            if r.parent:
                out[r.parent].append(r)
        return out

    def component_of(self, reg: Registration) -> Registration | None:
        """Nearest ancestor that is a component (or the stack)."""
        parent = self.by_urn.get(reg.parent)
        while parent is not None and parent.custom:
            parent = self.by_urn.get(parent.parent)
        return parent

    @cached_property
    def owned(self) -> dict[str, list[Registration]]:
        """Component (or stack) URN -> the custom resources it owns, through custom parents."""
        out: dict[str, list[Registration]] = defaultdict(list)
        for reg in self.custom:
            comp = self.component_of(reg)
            if comp is not None:
                out[comp.urn].append(reg)
        return out

    def component_region(self, urn: str) -> str | None:
        """The region of a component whose resources all sit in one region, else None."""
        if urn not in self._component_regions:
            # None while computing: a resource whose region would come from this component's own
            # (a cell's Kubernetes provider under the stack, its kubeconfig unknown in a first
            # preview) is global rather than a cycle that never ends
            self._component_regions[urn] = None
            regions = {self.region_of(r) for r in self.owned.get(urn, [])}
            self._component_regions[urn] = regions.pop() if len(regions) == 1 else None
        return self._component_regions[urn]

    def counts(self) -> dict[str, dict[str, int]]:
        """type -> region -> count, for custom resources."""
        table: dict[str, Counter[str]] = defaultdict(Counter)
        for r in self.custom:
            table[r.type][self.region_of(r)] += 1
        return {t: dict(c) for t, c in sorted(table.items())}

    def regions(self) -> list[str]:
        return sorted({self.region_of(r) for r in self.custom})

    @cached_property
    def resource_dicts(self) -> list[dict[str, Any]]:
        """The plan JSON's `resources`: plain values, secrets redacted."""
        return [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "custom": r.custom,
                "parent": r.parent or None,
                "provider": r.provider_urn or None,
                "region": self.region_of(r) if r.custom else None,
                "inputs": plain_struct(r.inputs),
                "dependencies": sorted(set(r.dependencies)),
                "propertyDependencies": {k: sorted(set(v)) for k, v in sorted(r.property_dependencies.items())},
                "protect": r.protect,
                # only where set, so plans without it read as before
                **({"ignoreChanges": sorted(r.ignore_changes)} if r.ignore_changes else {}),
            }
            for r in self.registrations
        ]

    def to_json(self, policy: dict[str, Any], cost: dict[str, Any]) -> dict[str, Any]:
        # Violations arrive in the order the analyzer answered: sort them like the resources.
        violations = sorted(
            policy.get("violations", []), key=lambda v: (v.get("urn") or "", v.get("policy", ""), v.get("message", ""))
        )
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": self.resource_dicts,
            "outputs": canonical(self.outputs),
            "secrets": plan_secrets(self.registrations),
            "policy": {**policy, "violations": violations},
            "cost": cost,
        }
