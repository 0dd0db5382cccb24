"""The SLO verdict from raw per-request timings: pure functions, no I/O.

Locust's own statistics round response times (1 ms steps under 100 ms, 10 ms under 1 s, 100 ms
under 10 s), which moves a p95 across a threshold; here every request's own duration is kept and
percentiles are exact (nearest rank: the smallest duration with at least p % of requests at or
below it).

What counts:
- an *error* is a request that failed (transport error, 5xx, a wrong answer the user flagged);
- a *throttled* request (HTTP 429 with Retry-After) is the quota doing its job: it is neither an
  error nor a latency sample (fast refusals would flatter the percentiles), and it is counted per
  tenant so a report shows who was throttled;
- latency percentiles are over the successful requests;
- availability is time-based: the share of seconds with traffic in which the service was
  available, a second being unavailable when more than half of its requests failed. Degradation
  below that is what the error rate measures.
- requests in flight at any moment of a fault window (chaos) are judged against the chaos
  budget, not the SLO: they are accounted separately, never dropped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

OK, ERROR, THROTTLED = "ok", "error", "throttled"
ALL = "all"  # the scope of stack-wide objectives
UNAVAILABLE_SECOND = 0.5  # a second with more than this share of failed requests counts as down


@dataclass(frozen=True)
class Sample:
    """One request: when it started (epoch s), what (`name` groups URLs), how long, how it ended."""

    start: float
    name: str
    ms: float
    status: int
    outcome: str  # OK | ERROR | THROTTLED
    tenant: str = ""
    version: str = ""  # the X-Meridian-Version that answered ("" if none did): canary vs stable


@dataclass(frozen=True)
class Objectives:
    """Thresholds; None leaves an objective unset. Latencies in ms, rates as fractions."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None
    availability: float | None = None

    def set_items(self) -> list[tuple[str, float]]:
        return [(k, v) for k, v in asdict(self).items() if v is not None]


@dataclass(frozen=True)
class Window:
    """A fault window: [start, end) in epoch seconds, and what was injected."""

    start: float
    end: float
    label: str

    def overlaps(self, s: Sample) -> bool:
        """The request was in flight at some moment of the window (one in flight when the fault
        hit belongs to the fault, not to the steady state before it)."""
        return s.start < self.end and s.start + s.ms / 1000 >= self.start


@dataclass(frozen=True)
class Stats:
    requests: int  # every request, throttled ones included
    ok: int
    errors: int
    throttled: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_rate: float | None  # errors / (ok + errors); None with no judged request
    availability: float | None
    seconds: float  # first start to last start
    rps: float


@dataclass(frozen=True)
class Check:
    scope: str  # ALL, an endpoint name, or "chaos"
    objective: str  # p95_ms, error_rate, ...
    threshold: float
    measured: float | None
    ok: bool
    note: str = ""
    condition: bool = False  # a yes/no condition (1 = held), not a measured figure: its note says what was seen

    @property
    def message(self) -> str:
        what = f"{self.objective} of {self.scope}" if self.scope != ALL else self.objective
        if self.condition:
            return f"{what}: {'held' if self.ok else 'FAILED'} ({self.note})"
        if self.measured is None:
            return f"{what}: not measurable ({self.note})"
        higher_is_better = self.objective == "availability"
        m, t = fmt_value(self.objective, self.measured), fmt_value(self.objective, self.threshold)
        if self.ok:
            return f"{what} {m} meets {'>=' if higher_is_better else '<='} {t}"
        by = abs(self.measured - self.threshold)
        rel = f", {by / self.threshold:.0%}" if self.threshold else ""
        side = "below" if higher_is_better else "over"
        return f"{what} {m} is {side} the objective {t} by {fmt_value(self.objective, by)}{rel}"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    overall: Stats
    endpoints: dict[str, Stats]
    tenants: dict[str, Stats]
    checks: list[Check]
    chaos: Stats | None = None  # the requests inside fault windows
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failures"] = [c.message for c in self.failures]
        d["checks"] = [{**asdict(c), "message": c.message} for c in self.checks]
        return d


def fmt_value(objective: str, value: float | None) -> str:
    """An objective's value in its unit: *_ms milliseconds, *_s seconds, rates as percentages."""
    if value is None:
        return "-"
    if objective.endswith("_ms"):
        return f"{value:.1f} ms"
    if objective.endswith("_s"):
        return f"{value:.2f} s"
    return f"{value * 100:.3g} %"


def percentile(sorted_ms: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when empty."""
    if not sorted_ms:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100] (got {p})")
    rank = max(1, math.ceil(p / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def availability(samples: Iterable[Sample]) -> float | None:
    per_second: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for s in samples:
        if s.outcome == THROTTLED:
            continue
        bucket = per_second[int(s.start)]
        bucket[0] += 1
        bucket[1] += s.outcome == ERROR
    if not per_second:
        return None
    down = sum(1 for n, err in per_second.values() if err / n > UNAVAILABLE_SECOND)
    return 1 - down / len(per_second)


def stats(samples: list[Sample]) -> Stats:
    lat = sorted(s.ms for s in samples if s.outcome == OK)
    errors = sum(1 for s in samples if s.outcome == ERROR)
    throttled = sum(1 for s in samples if s.outcome == THROTTLED)
    judged = len(lat) + errors
    span = (max(s.start for s in samples) - min(s.start for s in samples)) if samples else 0.0
    return Stats(
        requests=len(samples),
        ok=len(lat),
        errors=errors,
        throttled=throttled,
        p50_ms=percentile(lat, 50),
        p95_ms=percentile(lat, 95),
        p99_ms=percentile(lat, 99),
        max_ms=lat[-1] if lat else None,
        error_rate=errors / judged if judged else None,
        availability=availability(samples),
        seconds=span,
        rps=len(samples) / span if span > 0 else float(len(samples)),
    )


def _check(scope: str, objective: str, threshold: float, st: Stats) -> Check:
    measured = getattr(st, objective)
    if measured is None:
        note = (
            "no requests" if st.requests == 0 else ("no successful request" if objective.endswith("_ms") else "no judged request")
        )
        return Check(scope, objective, threshold, None, False, note)
    ok = measured >= threshold if objective == "availability" else measured <= threshold
    return Check(scope, objective, threshold, measured, ok)


def evaluate(
    samples: list[Sample],
    objectives: Objectives,
    endpoint_objectives: dict[str, Objectives] | None = None,
    windows: list[Window] | None = None,
    chaos_error_budget: float | None = None,
    chaos_p95_ms: float | None = None,
) -> Verdict:
    """Judge `samples` against the objectives.

    Stack-wide objectives apply to every request outside fault windows; an endpoint's own
    objectives apply to that endpoint's requests. With `windows`, the requests inside them are
    judged against the chaos budget instead: `chaos_error_budget` (their error rate) and
    `chaos_p95_ms` (the p95 of the successful ones). A window without requests fails the budget:
    no data is no evidence, never 0 % errors.
    """
    windows = windows or []
    inside = [s for s in samples if any(w.overlaps(s) for w in windows)]
    outside = [s for s in samples if not any(w.overlaps(s) for w in windows)] if windows else samples
    overall = stats(outside)
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    by_tenant: dict[str, list[Sample]] = defaultdict(list)
    for s in outside:
        by_endpoint[s.name].append(s)
        if s.tenant:
            by_tenant[s.tenant].append(s)
    endpoints = {name: stats(v) for name, v in sorted(by_endpoint.items())}
    checks = [_check(ALL, k, v, overall) for k, v in objectives.set_items()]
    for name, obj in sorted((endpoint_objectives or {}).items()):
        st = endpoints.get(name) or stats([])
        checks += [_check(name, k, v, st) for k, v in obj.set_items()]
    notes = []
    if not samples:
        notes.append("no requests were recorded: nothing shows the objectives are met")
    chaos = None
    if windows:
        chaos = stats(inside)
        if chaos_error_budget is not None:
            measured = chaos.error_rate
            checks.append(
                Check(
                    "chaos",
                    "error_rate",
                    chaos_error_budget,
                    measured,
                    measured is not None and measured <= chaos_error_budget,
                    f"{chaos.errors} errors in {chaos.requests} requests inside fault windows"
                    if measured is not None
                    else "no judged request inside the fault windows: nothing shows the budget held",
                )
            )
        if chaos_p95_ms is not None:
            checks.append(_check("chaos", "p95_ms", chaos_p95_ms, chaos))
    passed = bool(samples) and all(c.ok for c in checks)
    return Verdict(passed, overall, endpoints, {t: stats(v) for t, v in sorted(by_tenant.items())}, checks, chaos, notes)


def timeline(samples: list[Sample], bucket_s: float = 1.0) -> list[dict]:
    """Per time bucket (from the first request): requests/s, errors/s, throttled/s and exact
    p50/p95/p99 of the bucket's successful requests: what the report plots."""
    if not samples:
        return []
    t0 = min(s.start for s in samples)
    buckets: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        buckets[int((s.start - t0) // bucket_s)].append(s)
    out = []
    for i in range(max(buckets) + 1):
        b = buckets.get(i, [])
        lat = sorted(s.ms for s in b if s.outcome == OK)
        out.append(
            {
                "t": round(t0 + i * bucket_s, 3),
                "offset_s": i * bucket_s,
                "rps": len(b) / bucket_s,
                "errors_per_s": sum(s.outcome == ERROR for s in b) / bucket_s,
                "throttled_per_s": sum(s.outcome == THROTTLED for s in b) / bucket_s,
                "p50_ms": percentile(lat, 50),
                "p95_ms": percentile(lat, 95),
                "p99_ms": percentile(lat, 99),
            }
        )
    return out
