"""The SLO gate's objectives: the stack config's `meridian:slo` + `loadtests/slo.yaml`.

One source of truth per number. The stack-wide objectives (p95, p99, error rate, availability)
live in the stack config (`Pulumi.yaml` defaults, `Pulumi.<stack>.yaml` overrides) where the
platform's other tooling reads them too; `slo.yaml` adds what only the load suite knows: p50,
per-endpoint objectives, and the chaos budget. A `slo.yaml` may still set a stack-wide objective
(a stricter suite, or an impossible one to prove the gate fails): the report says where each
threshold came from.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meridian.errors import BadInput
from meridian.slo.evaluate import QUANTILES, Evidence, Objectives, Sample, TenantQuota, Verdict, Window, evaluate

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


class EvidenceSpec(_Model):
    # an SLO file may make a gate stricter, never looser: a longer minimum, and nothing but
    # availability left unproven (a file that watched p99 would let 100 requests "meet" it)
    min_duration_s: float = Field(
        20.0, ge=20, description="the shortest run (outside fault windows) a verdict may rest on: 20 s or more"
    )
    watch: list[Literal["availability"]] = Field(
        ["availability"],
        description="objectives a run may leave unproven (only availability: 99.9 % needs 3,000 s of traffic, a soak "
        'proves it, a gate cannot): a miss still fails, a pass short of evidence is reported "not proven", never "met"',
    )


class TenantsSpec(_Model):
    throttled_share: Annotated[float, Field(gt=0, le=1)] = Field(
        0.01, description="share of each tenant's requests that may be refused with 429 (the suite stays under quota)"
    )


class SloFile(_Model):
    version: Literal[1] = 1
    objectives: ObjectivesSpec = ObjectivesSpec()
    endpoints: dict[str, ObjectivesSpec] = {}
    chaos: ChaosBudget = ChaosBudget()
    evidence: EvidenceSpec = EvidenceSpec()
    tenants: TenantsSpec = TenantsSpec()


@dataclass(frozen=True)
class SloSpec:
    objectives: Objectives
    endpoints: dict[str, Objectives]
    chaos: ChaosBudget
    sources: dict[str, str] = field(default_factory=dict)  # objective -> where its threshold was set
    path: str = ""
    evidence: Evidence | None = None  # None: no minimum (only for callers that judge partial data)
    tenant_quotas: dict[str, TenantQuota] = field(default_factory=dict)  # every tenant of the zone: its plan quota
    throttled_share: float | None = None
    tenant_stacks: dict[str, str] = field(default_factory=dict)  # every tenant of the zone -> the stack holding it


# A request slower than this many times the loosest latency objective misses every latency
# objective anyway; waiting longer only lets a hung request hold its user and stop producing samples.
CLIENT_TIMEOUT_MULTIPLE = 3.0


def hang_after_s(spec: SloSpec) -> float:
    """The largest latency objective (stack-wide or per endpoint), in seconds: a request still
    unanswered after this long misses every latency objective, whenever the run stops it."""
    latencies = [v for obj in (spec.objectives, *spec.endpoints.values()) for k, v in obj.set_items() if k in QUANTILES]
    return max(latencies, default=1000.0) / 1000


def client_timeout_s(spec: SloSpec) -> float:
    """The load suite's request timeout, from the objectives: CLIENT_TIMEOUT_MULTIPLE x the largest
    latency objective."""
    return CLIENT_TIMEOUT_MULTIPLE * hang_after_s(spec)


def judge(
    spec: SloSpec, samples: list[Sample], windows: list[Window] | None = None, chaos_budget: WindowBudget | None = None
) -> Verdict:
    """The SLO gate's verdict: the objectives, the evidence rule, every tenant's error rate and
    throttled share, and inside fault windows the chaos budget. The Locust plugin, `meridian
    slo`/`up` and chaos runs all call this, on the same samples, so their verdicts agree.

    A chaos run is judged on its fault window (the budget, a window with requests in it), the
    steady state before it and the recovery: the requests around the window are a few seconds of
    warm-up and recovery, so there every objective is watched (a miss fails, nothing is claimed
    proven) rather than held to the gate's evidence rule."""
    evidence = window_evidence = spec.evidence
    if windows and evidence is not None:
        evidence = Evidence(
            0.0, evidence.tail_samples, watch=frozenset(QUANTILES) | {"error_rate", "availability", "throttled_share"}
        )
        window_evidence = Evidence(0.0, evidence.tail_samples)  # the window's budget must be proven
    return evaluate(
        samples,
        spec.objectives,
        spec.endpoints,
        windows,
        chaos_budget.error_rate if chaos_budget else None,
        chaos_budget.p95_ms if chaos_budget else None,
        evidence=evidence,
        window_evidence=window_evidence,
        tenants=spec.tenant_quotas,
        throttled_share=spec.throttled_share,
        stacks=spec.tenant_stacks,
    )


def read_slo_file(path: Path, shown: str | None = None) -> SloFile:
    """`shown`: the file as messages name it (project-relative), `path` by default."""
    shown = shown or str(path)
    try:
        with path.open(encoding="utf-8") as stream:  # a named stream: errors name the file
            doc = yaml.safe_load(stream)
    except FileNotFoundError:
        raise BadInput(f"SLO file {shown} not found (the default is {DEFAULT_SLO_FILE})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"SLO file {shown} is not readable YAML: {exc}") from None
    try:
        return SloFile.model_validate(doc or {})
    except ValidationError as exc:
        problems = "\n".join(f"  {shown}: {'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise BadInput(f"invalid SLO file ({len(exc.errors())} problem(s)):\n{problems}") from None


def resolve(
    slo_file: SloFile,
    stack_slo,
    *,
    path: str = "",
    stack_source: str = "stack config",
    tenant_quotas: dict[str, TenantQuota] | None = None,
    tenant_stacks: dict[str, str] | None = None,
) -> SloSpec:
    """The objectives in force: `stack_slo` (a `stackconfig.SloSettings`) for the stack-wide
    ones, overridden by what `slo_file` sets; `tenant_quotas`: the zone's tenants and the quotas
    their plans sell (from the stack configs); `tenant_stacks`: the stack of the zone holding each."""
    own = slo_file.objectives.model_dump(exclude_none=True)
    merged, sources = {}, {}
    for key in STACK_KEYS:
        merged[key] = own.get(key, getattr(stack_slo, key))
        sources[key] = (path or "slo.yaml") if key in own else stack_source
    if "p50_ms" in own:
        merged["p50_ms"], sources["p50_ms"] = own["p50_ms"], path or "slo.yaml"
    endpoints = {name: Objectives(**spec.model_dump()) for name, spec in slo_file.endpoints.items()}
    sources["throttled_share"] = path or "slo.yaml"
    return SloSpec(
        Objectives(**merged),
        endpoints,
        slo_file.chaos,
        sources,
        path,
        Evidence(slo_file.evidence.min_duration_s, watch=frozenset(slo_file.evidence.watch)),
        dict(tenant_quotas or {}),
        slo_file.tenants.throttled_share,
        dict(tenant_stacks or {}),
    )


def load(project_dir: Path, stack: str, slo_path: Path | None = None) -> SloSpec:
    """The stack config and the SLO file, both read before either is refused: a mistake in each is
    reported in one run (exit 2), not the second after the first is fixed."""
    from meridian.stackconfig import load_validated

    path = slo_path or DEFAULT_SLO_FILE
    refused: list[BadInput] = []
    try:
        cfg = load_validated(project_dir, stack)
    except BadInput as exc:
        refused.append(exc)
    try:
        slo_file = read_slo_file(path, shown_path(path, project_dir))
    except BadInput as exc:
        refused.append(exc)
    if refused:
        raise BadInput("\n".join(str(exc) for exc in refused))
    return spec_of(project_dir, stack, cfg, path, slo_file)


def spec_of(project_dir: Path, stack: str, cfg, path: Path, slo_file: SloFile) -> SloSpec:
    """The objectives in force from a validated stack config (a zone's platform) and a read SLO
    file, over every tenant of the zone: the gate judges each tenant the zone's front door serves."""
    quotas, stacks = zone_tenants(project_dir, stack, cfg)
    return resolve(
        slo_file,
        cfg.slo,
        path=shown_path(path, project_dir),
        stack_source=cfg.where("slo"),
        tenant_quotas=quotas,
        tenant_stacks=stacks,
    )


def require_users_for_every_tenant(spec: SloSpec, users: int) -> None:
    """Each simulated user is one tenant (round-robin, loadtests/tenant_users.py): fewer users than
    the zone has tenants leaves some never exercised, a verdict that can only fail. Refused before
    any load (exit 2), naming the count the zone needs."""
    if users < len(spec.tenant_quotas):
        per_stack = Counter(spec.tenant_stacks.values())
        stacks = ", ".join(f"{stack} {n}" for stack, n in sorted(per_stack.items()))
        raise BadInput(
            f"--users {users} is fewer than the zone's {len(spec.tenant_quotas)} tenants ({stacks}): each user is one "
            f"tenant, and every tenant is judged; give --users {len(spec.tenant_quotas)} or more"
        )


def zone_tenants(project_dir: Path, platform: str, cfg) -> tuple[dict[str, TenantQuota], dict[str, str]]:
    """Every tenant of the zone of `platform` (its config `cfg`): its plan quota and the stack holding
    it (the platform's inline tenants, then each cell it lists, each cell's config validated).
    From the configs, never from what a target says it serves: a tenant the service lost is still
    judged, and fails for want of requests."""
    from meridian.stackconfig import load_validated

    quotas: dict[str, TenantQuota] = {}
    stacks: dict[str, str] = {}
    configs = [(platform, cfg)]
    for cell in cfg.cells.names:
        try:
            configs.append((cell, load_validated(project_dir, cell)))
        except BadInput as exc:
            raise BadInput(
                f"zone {platform}: Pulumi.{platform}.yaml lists the cell {cell} (meridian:cells.names): {exc}"
            ) from None
    for stack, one in configs:
        for t in one.tenants:
            quotas[t.id] = TenantQuota(one.quota_of(t).gql_qps, one.quota_of(t).ingest_eps)
            stacks[t.id] = stack
    return quotas, stacks


def shown_path(path: Path, project_dir: Path) -> str:
    """A file as a report names it: relative to the project when inside it (a report read on
    another machine, or from a temporary checkout, still says which file), else as given."""
    try:
        return str(path.resolve().relative_to(project_dir.resolve()))
    except ValueError:
        return str(path)
