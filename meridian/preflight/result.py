"""What every preflight check takes and gives: the plan in context, its findings and notes.

Apart from `checks` so that a check in a module of its own imports these, and `checks` imports the
check (no circle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meridian.engine.plan import Plan
from meridian.engine.recorder import Registration
from meridian.preflight.workload import RenderedContainer, rendered_containers
from stackconfig import StackConfig


@dataclass(frozen=True)
class Finding:
    urn: str
    problem: str
    fix: str


@dataclass
class CheckResult:
    check: str
    encodes: str  # the AWS (or Kubernetes) rule the check stands for
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass
class Context:
    plan: Plan
    cfg: StackConfig
    inputs: dict[str, dict[str, Any]]  # urn -> plain inputs (secrets redacted)

    @classmethod
    def of(cls, plan: Plan, cfg: StackConfig) -> Context:
        # the plan JSON's own inputs: one plain copy of every resource's inputs shared with the plan
        return cls(plan, cfg, {r["urn"]: r["inputs"] for r in plan.resource_dicts})

    def of_type(self, token: str) -> list[Registration]:
        return [r for r in self.plan.custom if r.type == token]

    def containers(self) -> list[RenderedContainer]:
        return rendered_containers(self.plan.registrations, self.plan.region_of)
