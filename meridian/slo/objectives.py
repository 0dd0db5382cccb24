"""The SLO gate's objectives: the stack config's `meridian:slo` + `loadtests/slo.yaml`.

One source of truth per number. The stack-wide objectives (p95, p99, error rate, availability)
live in the stack config (`Pulumi.yaml` defaults, `Pulumi.<stack>.yaml` overrides) where the
platform's other tooling reads them too; `slo.yaml` adds what only the load suite knows: p50,
per-endpoint objectives, and the chaos budget. A `slo.yaml` may still set a stack-wide objective
(a stricter suite, or an impossible one to prove the gate fails): the report says where each
threshold came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meridian.errors import BadInput
from meridian.slo.evaluate import Objectives

STACK_KEYS = ("p95_ms", "p99_ms", "error_rate", "availability")  # stackconfig.SloSettings
DEFAULT_SLO_FILE = Path(__file__).resolve().parents[2] / "loadtests" / "slo.yaml"

Ms = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectivesSpec(_Model):
    p50_ms: Ms | None = None
    p95_ms: Ms | None = None
    p99_ms: Ms | None = None
    error_rate: Fraction | None = None
    availability: Annotated[float, Field(gt=0, le=1)] | None = None


class ScenarioBudget(_Model):
    """A scenario's own window budget; what it leaves unset is the chaos section's."""

    error_rate: Fraction | None = None
    p95_ms: Ms | None = None


@dataclass(frozen=True)
class WindowBudget:
    """What the requests made inside a fault window may cost: their error rate and the p95 of the successful ones."""

    error_rate: float
    p95_ms: float | None


class ChaosBudget(_Model):
    error_rate: Fraction = Field(0.05, description="share of requests inside a fault window that may fail")
    p95_ms: Ms | None = Field(None, description="p95 latency of the successful requests inside a fault window")
    recovery_slack_s: float = Field(1.0, ge=0, description="recovery may take the target's detection bound + this")
    mttr_s: float = Field(900, gt=0, description="game days: time to restore the steady state after a fault")
    scenarios: dict[str, ScenarioBudget] = Field({}, description="per chaos scenario: a budget of its own")

    def budget_for(self, scenario: str) -> WindowBudget:
        own = self.scenarios.get(scenario) or ScenarioBudget()
        return WindowBudget(
            self.error_rate if own.error_rate is None else own.error_rate,
            self.p95_ms if own.p95_ms is None else own.p95_ms,
        )


class SloFile(_Model):
    version: Literal[1] = 1
    objectives: ObjectivesSpec = ObjectivesSpec()
    endpoints: dict[str, ObjectivesSpec] = {}
    chaos: ChaosBudget = ChaosBudget()


@dataclass(frozen=True)
class SloSpec:
    objectives: Objectives
    endpoints: dict[str, Objectives]
    chaos: ChaosBudget
    sources: dict[str, str] = field(default_factory=dict)  # objective -> where its threshold was set
    path: str = ""


def read_slo_file(path: Path) -> SloFile:
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"SLO file {path} not found (the default is {DEFAULT_SLO_FILE})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"SLO file {path} is not readable YAML: {exc}") from None
    try:
        return SloFile.model_validate(doc or {})
    except ValidationError as exc:
        problems = "\n".join(f"  {path}: {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise BadInput(f"invalid SLO file ({len(exc.errors())} problem(s)):\n{problems}") from None


def resolve(slo_file: SloFile, stack_slo, *, path: str = "", stack_source: str = "stack config") -> SloSpec:
    """The objectives in force: `stack_slo` (a `stackconfig.SloSettings`) for the stack-wide
    ones, overridden by what `slo_file` sets."""
    own = slo_file.objectives.model_dump(exclude_none=True)
    merged, sources = {}, {}
    for key in STACK_KEYS:
        merged[key] = own.get(key, getattr(stack_slo, key))
        sources[key] = (path or "slo.yaml") if key in own else stack_source
    if "p50_ms" in own:
        merged["p50_ms"], sources["p50_ms"] = own["p50_ms"], path or "slo.yaml"
    endpoints = {name: Objectives(**spec.model_dump()) for name, spec in slo_file.endpoints.items()}
    return SloSpec(Objectives(**merged), endpoints, slo_file.chaos, sources, path)


def load(project_dir: Path, stack: str, slo_path: Path | None = None) -> SloSpec:
    from meridian.stackconfig import load_validated

    cfg = load_validated(project_dir, stack)
    path = slo_path or DEFAULT_SLO_FILE
    return resolve(read_slo_file(path), cfg.slo, path=str(path), stack_source=f"Pulumi.{stack}.yaml / Pulumi.yaml meridian:slo")
