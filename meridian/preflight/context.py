"""What every preflight check works with: the plan, the typed config, and the result it returns.
Checks live one topic to a module (`checks` holds the first ones and the registry, CHECKS), and
each imports only this, so the registry can import them all."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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
    warnings: list[str] = field(default_factory=list)  # what is wrong for a real deploy but not for a preview
    checked: int = 0

    @property
    def passed(self) -> bool:
        return not self.findings


@dataclass
class Context:
    plan: Plan
    cfg: StackConfig
    inputs: dict[str, dict[str, Any]]  # urn -> plain inputs (secrets redacted)
    project_dir: Path | None = None  # the project's stack files (stacks sharing an account); None: this stack alone

    @classmethod
    def of(cls, plan: Plan, cfg: StackConfig, project_dir: Path | None = None) -> Context:
        # the plan JSON's own inputs: one plain copy of every resource's inputs shared with the plan
        return cls(plan, cfg, {r["urn"]: r["inputs"] for r in plan.resource_dicts}, project_dir)

    def of_type(self, token: str) -> list[Registration]:
        return list(self.plan.custom_by_type.get(token, ()))

    def containers(self) -> list[RenderedContainer]:
        return rendered_containers(self.plan.registrations, self.plan.region_of)
