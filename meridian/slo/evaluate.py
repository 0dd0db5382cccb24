"""The SLO verdict from raw per-request timings: pure functions, no I/O.

Locust's own statistics round response times (1 ms steps under 100 ms, 10 ms under 1 s, 100 ms
under 10 s), which moves a p95 across a threshold; here every request's own duration is kept and
percentiles are exact (nearest rank: the smallest duration with at least p % of requests at or
below it).

What counts:
- an *error* is a request that failed (transport error, 5xx, a wrong answer the user flagged);
- a *throttled* request (HTTP 429 with Retry-After) is the quota doing its job: it is neither an
  error nor a latency sample (fast refusals would flatter the percentiles), and it is counted per
  tenant so a report shows who was throttled. The load suite stays under every tenant's plan quota
  by design, so with the plan quotas given (`tenants`) a 429 for a tenant that was below its quota
  is a defect and counts as an error; each tenant's throttled share is judged (`throttled_share`);
- latency percentiles are over the successful requests;
- availability is time-based: the share of seconds with traffic in which the service was
  available, a second being unavailable when more than half of its requests failed. Degradation
  below that is what the error rate measures.
- requests in flight at any moment of a fault window (chaos) are judged against the chaos
  budget, not the SLO: they are accounted separately, never dropped;
- with an `Evidence` rule, an objective passes only on enough samples (`samples_needed`): short of
  them its check fails as "not enough evidence", naming what it had and what it needed.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

OK, ERROR, THROTTLED = "ok", "error", "throttled"
ALL = "all"  # the scope of stack-wide objectives
UNAVAILABLE_SECOND = 0.5  # a second with more than this share of failed requests counts as down
QUANTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
HIGHER_IS_BETTER = ("availability", "duration_s")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")  # take ingest_eps tokens (per event); the rest gql_qps
MAX_EVENTS_PER_WRITE = 5  # the load suite's largest batch (loadtests/tenant_users.py uses this)

# Expected samples beyond the threshold an objective needs before a run can prove it: the "rule of
# three" (Hanley & Lippman-Hand, JAMA 1983). If the true share of requests beyond a quantile q (or
# failing, for a rate r) were exactly 1-q (r), a run of n requests would see none of them with
# probability (1-(1-q))^n ~ e^(-n(1-q)); n >= 3/(1-q) makes that <= 5 %. Put the other way: a run
# with fewer samples can look perfect (p99 = its slowest request, 0 errors) while the objective is
# missed, more often than 1 in 20. So a p50 needs 6 successful requests, a p95 60, a p99 300, an
# error rate of 1 % 300 judged requests, an availability of 99.9 % 3,000 seconds with traffic.
TAIL_SAMPLES = 3


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
class Evidence:
    """How much a run must show before its verdict means anything (see TAIL_SAMPLES)."""

    min_duration_s: float  # first request to last, outside fault windows
    tail_samples: int = TAIL_SAMPLES
    # Objectives a run of this kind is not expected to prove: a measured miss still fails, but a
    # pass short of evidence is reported "not proven" (never "met") instead of failing the run. A
    # 99.9 % availability needs 3,000 s of traffic (TAIL_SAMPLES seconds beyond its 0.1 % tail):
    # a post-update gate of a minute can only ever find it broken, and a soak proves it.
    watch: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TenantQuota:
    """A tenant's plan quota (what it was sold, from the stack config, not what a server enforces)."""

    gql_qps: float  # reads per second
    ingest_eps: float  # events written per second


def samples_needed(objective: str, threshold: float, tail_samples: int = TAIL_SAMPLES) -> float:
    """Samples an objective needs (see TAIL_SAMPLES): successful requests for a latency quantile,
    judged requests for the error rate, requests for the throttled share, seconds with traffic for
    availability. A zero tolerance (error rate 0, availability 1) can never be proven by sampling:
    `math.inf`."""
    if objective in QUANTILES:
        tail = 1 - QUANTILES[objective]
    elif objective == "availability":
        tail = 1 - threshold
    else:  # error_rate, throttled_share
        tail = threshold
    return math.ceil(round(tail_samples / tail, 9)) if tail > 0 else math.inf


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
    seconds: float  # first start to last start (outside fault windows: their time left out)
    rps: float
    throttled_share: float | None = None  # every 429 (counted as error or not) / requests
    seconds_with_traffic: int = 0  # what availability is judged over


@dataclass(frozen=True)
class Check:
    scope: str  # ALL, an endpoint name, or "chaos"
    objective: str  # p95_ms, error_rate, ...
    threshold: float
    measured: float | None
    ok: bool
    note: str = ""
    had: float | None = None  # the evidence: samples (or seconds) the check was judged on
    needed: float | None = None  # what it takes to prove the objective (samples_needed)
    condition: bool = False  # a yes/no condition (1 = held), not a measured figure: its note says what was seen
    proven: bool = True  # False: a watched objective (Evidence.watch) not missed, but short of the evidence to prove it

    @property
    def insufficient(self) -> bool:
        """Failed for want of evidence (nothing to measure, or too few samples), not because the
        measure missed the objective."""
        if self.ok:
            return False
        if self.measured is None or self.objective == "duration_s":  # the run's length is evidence only
            return True
        short = self.had is not None and self.needed is not None and self.had < self.needed
        return short and meets(self.objective, self.measured, self.threshold)

    @property
    def outcome(self) -> str:
        """The one word a table shows: ok, not proven (watched, held), not enough evidence, FAILED."""
        if self.ok:
            return "ok" if self.proven else "not proven"
        return "not enough evidence" if self.insufficient else "FAILED"

    @property
    def message(self) -> str:
        what = f"{self.objective} of {self.scope}" if self.scope != ALL else self.objective
        if self.condition:
            return f"{what}: {'held' if self.ok else 'FAILED'} ({self.note})"
        if self.measured is None:
            return f"{what}: not measurable ({self.note})"
        higher_is_better = self.objective in HIGHER_IS_BETTER
        m, t = fmt_value(self.objective, self.measured), fmt_value(self.objective, self.threshold)
        if self.insufficient or not self.proven:
            needed = "more than any run can give (a zero tolerance)" if math.isinf(self.needed) else f"{self.needed:,.0f}"
            if not self.proven:
                return (
                    f"{what}: not proven by this run ({m} over {self.had:,.0f} {self.note}, needs {needed}; a miss would fail it)"
                )
            return f"{what}: not enough evidence ({self.had:,.0f} {self.note}, needs {needed})"
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
    stacks: dict[str, Stats] = field(default_factory=dict)  # per stack of the zone: its tenants' requests together

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def not_proven(self) -> list[Check]:
        """Watched objectives that held but that this run was too short to prove."""
        return [c for c in self.checks if c.ok and not c.proven]

    @property
    def not_enough_evidence(self) -> bool:
        """Failed only for want of evidence: no objective was measured as missed."""
        return bool(self.failures) and all(c.insufficient for c in self.failures)

    def unmet(self) -> list[tuple[str, list[Check]]]:
        """The checks a summary lists, grouped by the outcome the table prints for each (FAILED,
        not enough evidence, not proven), in that order, empty groups left out: every count said
        is the length of the list printed under it."""
        groups: dict[str, list[Check]] = {"FAILED": [], "not enough evidence": [], "not proven": []}
        for c in self.checks:
            if c.outcome in groups:
                groups[c.outcome].append(c)
        return [(outcome, checks) for outcome, checks in groups.items() if checks]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["failures"] = [c.message for c in self.failures]
        d["not_enough_evidence"] = self.not_enough_evidence
        d["not_proven"] = [c.message for c in self.not_proven]
        d["checks"] = [{**asdict(c), "message": c.message, "insufficient": c.insufficient} for c in self.checks]
        return d


def meets(objective: str, measured: float, threshold: float) -> bool:
    return measured >= threshold if objective in HIGHER_IS_BETTER else measured <= threshold


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


def stats(samples: list[Sample], seconds: float | None = None) -> Stats:
    """`seconds`: the span the samples cover when it is not first to last start (the time of fault
    windows left out)."""
    lat = sorted(s.ms for s in samples if s.outcome == OK)
    errors = sum(1 for s in samples if s.outcome == ERROR)
    throttled = sum(1 for s in samples if s.outcome == THROTTLED)
    judged = len(lat) + errors
    span = (max(s.start for s in samples) - min(s.start for s in samples)) if samples else 0.0
    if seconds is not None:
        span = seconds
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
        throttled_share=sum(s.status == 429 for s in samples) / len(samples) if samples else None,
        seconds_with_traffic=len({int(s.start) for s in samples if s.outcome != THROTTLED}),
    )


EVIDENCE_UNITS = {
    "p50_ms": "successful requests",
    "p95_ms": "successful requests",
    "p99_ms": "successful requests",
    "error_rate": "judged requests",
    "throttled_share": "requests",
    "availability": "seconds with traffic",
}


def _evidence_of(objective: str, st: Stats) -> float:
    if objective in QUANTILES:
        return st.ok
    if objective == "error_rate":
        return st.ok + st.errors
    if objective == "availability":
        return st.seconds_with_traffic
    return st.requests


def _check(scope: str, objective: str, threshold: float, st: Stats, evidence: Evidence | None = None) -> Check:
    measured = getattr(st, objective)
    if measured is None:
        note = (
            "no requests" if st.requests == 0 else ("no successful request" if objective.endswith("_ms") else "no judged request")
        )
        return Check(scope, objective, threshold, None, False, note)
    ok = meets(objective, measured, threshold)
    if evidence is None:
        return Check(scope, objective, threshold, measured, ok)
    had, needed = _evidence_of(objective, st), samples_needed(objective, threshold, evidence.tail_samples)
    # a measure that misses the objective is a breach whatever the sample size; only a pass needs proof
    if ok and had < needed and objective in evidence.watch:
        return Check(scope, objective, threshold, measured, True, EVIDENCE_UNITS[objective], had, needed, proven=False)
    return Check(scope, objective, threshold, measured, ok and had >= needed, EVIDENCE_UNITS[objective], had, needed)


def _span_outside(outside: list[Sample], windows: list[Window]) -> float:
    """First to last start of the requests outside fault windows, less the windows' time between."""
    if not outside:
        return 0.0
    t0, t1 = min(s.start for s in outside), max(s.start for s in outside)
    covered, edge = 0.0, t0
    for w in sorted(windows, key=lambda w: w.start):
        lo, hi = max(w.start, edge), min(w.end, t1)
        if hi > lo:
            covered += hi - lo
            edge = hi
    return t1 - t0 - covered


def reclassify_throttles(samples: list[Sample], quotas: dict[str, TenantQuota]) -> tuple[list[Sample], int]:
    """A 429 for a tenant that was below its plan quota is an error: the suite stays under quota by
    design, so the refusal is a defect (a quota cut in the running service, a bucket that leaks).
    Below quota: the tenant's requests of the same kind started in the second up to this one fit
    the quota (the service's bucket holds one second of its rate, so such a rate is never refused;
    writes are counted at MAX_EVENTS_PER_WRITE events each). Returns the samples and how many
    429s became errors."""
    by_tenant: dict[tuple[str, bool], list[float]] = defaultdict(list)
    for s in samples:
        by_tenant[(s.tenant, _is_write(s))].append(s.start)
    for starts in by_tenant.values():
        starts.sort()
    out, changed = [], 0
    for s in samples:
        quota = quotas.get(s.tenant)
        if s.outcome == THROTTLED and quota is not None:
            write = _is_write(s)
            starts = by_tenant[(s.tenant, write)]
            recent = bisect_right(starts, s.start) - bisect_left(starts, s.start - 1.0)
            demand, allowed = (recent * MAX_EVENTS_PER_WRITE, quota.ingest_eps) if write else (recent, quota.gql_qps)
            if demand <= allowed:
                s = replace(s, outcome=ERROR)
                changed += 1
        out.append(s)
    return out, changed


def _is_write(s: Sample) -> bool:
    return s.name.split(" ", 1)[0].upper() in WRITE_METHODS


def evaluate(
    samples: list[Sample],
    objectives: Objectives,
    endpoint_objectives: dict[str, Objectives] | None = None,
    windows: list[Window] | None = None,
    chaos_error_budget: float | None = None,
    chaos_p95_ms: float | None = None,
    *,
    evidence: Evidence | None = None,
    tenants: dict[str, TenantQuota] | None = None,
    throttled_share: float | None = None,
    window_evidence: Evidence | None = None,
    stacks: dict[str, str] | None = None,
) -> Verdict:
    """Judge `samples` against the objectives.

    Stack-wide objectives apply to every request outside fault windows; an endpoint's own
    objectives apply to that endpoint's requests. With `windows`, the requests inside them are
    judged against the chaos budget instead: `chaos_error_budget` (their error rate) and
    `chaos_p95_ms` (the p95 of the successful ones). A window without requests fails the budget:
    no data is no evidence, never 0 % errors.

    With `evidence`, every objective (and the run's duration) must rest on enough samples. With
    `tenants` (each tenant of the stack and its plan quota), every one of them is judged on its own:
    its error rate against the stack-wide objective, its throttled share against
    `throttled_share`, and a 429 below its quota counts as an error (`reclassify_throttles`).
    With `stacks` (each tenant of the zone -> the stack holding it: the platform or a cell), each
    stack's tenants' requests are counted together (`Verdict.stacks`) and judged like a tenant's: a
    stack whose tenants the run never reached, or the service does not serve, fails by name.
    """
    windows = windows or []
    notes = []
    inside = [s for s in samples if any(w.overlaps(s) for w in windows)]
    outside = [s for s in samples if not any(w.overlaps(s) for w in windows)] if windows else samples
    if tenants:
        # outside fault windows only: inside one a 429 may be the experiment itself (a noisy
        # neighbour driven over its quota by traffic this suite does not see)
        outside, changed = reclassify_throttles(outside, tenants)
        if changed:
            notes.append(f"{changed} requests refused with 429 while their tenant was below its plan quota: counted as errors")
        samples = outside + inside
    overall = stats(outside, _span_outside(outside, windows) if windows else None)
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    by_tenant: dict[str, list[Sample]] = defaultdict(list, {t: [] for t in tenants or {}})
    for s in outside:
        by_endpoint[s.name].append(s)
        if s.tenant:
            by_tenant[s.tenant].append(s)
    span = (lambda v: _span_outside(v, windows)) if windows else (lambda v: None)  # req/s over the time outside windows
    endpoints = {name: stats(v, span(v)) for name, v in sorted(by_endpoint.items())}
    tenant_stats = {t: stats(v, span(v)) for t, v in sorted(by_tenant.items())}
    by_stack: dict[str, list[Sample]] = {stack: [] for stack in sorted(set((stacks or {}).values()))}
    for tenant, v in by_tenant.items():
        if tenant in (stacks or {}):
            by_stack[stacks[tenant]] += v
    stack_stats = {stack: stats(v, span(v)) for stack, v in by_stack.items()}
    checks = []
    if evidence is not None:
        checks.append(
            Check(
                ALL,
                "duration_s",
                evidence.min_duration_s,
                overall.seconds,
                overall.seconds >= evidence.min_duration_s,
                "s of load",
                overall.seconds,
                evidence.min_duration_s,
            )
        )
    checks += [_check(ALL, k, v, overall, evidence) for k, v in objectives.set_items()]
    for name, obj in sorted((endpoint_objectives or {}).items()):
        st = endpoints.get(name) or stats([])
        checks += [_check(name, k, v, st, evidence) for k, v in obj.set_items()]
    if throttled_share is not None:
        checks.append(_check(ALL, "throttled_share", throttled_share, overall, evidence))
    for tenant in sorted(tenants or {}):
        st = tenant_stats[tenant]
        if objectives.error_rate is not None:
            checks.append(_check(f"tenant {tenant}", "error_rate", objectives.error_rate, st, evidence))
        if throttled_share is not None:
            checks.append(_check(f"tenant {tenant}", "throttled_share", throttled_share, st, evidence))
    for stack, st in stack_stats.items():
        if objectives.error_rate is not None:
            checks.append(_check(f"stack {stack}", "error_rate", objectives.error_rate, st, evidence))
    if not samples:
        notes.append("no requests were recorded: nothing shows the objectives are met")
    chaos = None
    if windows:
        chaos = stats(inside)
        # the window's budget rests on evidence like any objective: a p95 of the window from a handful
        # of requests proves nothing (window_evidence; its watch list is empty: short is a failure)
        if chaos_error_budget is not None:
            check = _check("chaos", "error_rate", chaos_error_budget, chaos, window_evidence)
            if chaos.requests == 0:
                check = replace(check, note="no judged request inside the fault windows: nothing shows the budget held")
            checks.append(check)
        if chaos_p95_ms is not None:
            checks.append(_check("chaos", "p95_ms", chaos_p95_ms, chaos, window_evidence))
    passed = bool(samples) and all(c.ok for c in checks)
    return Verdict(passed, overall, endpoints, tenant_stats, checks, chaos, notes, stack_stats)


def timeline(samples: list[Sample], bucket_s: float = 1.0, align_to: float | None = None) -> list[dict]:
    """Per time bucket: requests/s, errors/s, throttled/s and exact p50/p95/p99 of the bucket's
    successful requests (`ok` of them): what the report plots. `offset_s` is the bucket's start in
    seconds since the first request.

    `align_to` (a fault's start): a bucket edge falls exactly there, so no bucket mixes requests from
    before and after it and a spike starts where the fault does, not at the edge before it. A bucket
    the run covers only in part (the last one, usually; the first one when aligned) has rates per
    full width, so it is marked `partial` (with the `span_s` it covers) and the plot leaves it out
    rather than draw a throughput drop that did not happen."""
    if not samples:
        return []
    first = min(s.start for s in samples)
    last = max(s.start for s in samples)
    t0 = first if align_to is None else align_to - math.ceil((align_to - first) / bucket_s) * bucket_s
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
                "offset_s": round(t0 + i * bucket_s - first, 3),
                "rps": len(b) / bucket_s,
                "errors_per_s": sum(s.outcome == ERROR for s in b) / bucket_s,
                "throttled_per_s": sum(s.outcome == THROTTLED for s in b) / bucket_s,
                "p50_ms": percentile(lat, 50),
                "p95_ms": percentile(lat, 95),
                "p99_ms": percentile(lat, 99),
                "ok": len(lat),
            }
        )
    span = last - (t0 + (len(out) - 1) * bucket_s)
    if len(out) > 1 and span < 0.9 * bucket_s:
        out[-1].update(partial=True, span_s=round(span, 3))
    lead = t0 + bucket_s - first
    if len(out) > 1 and lead < 0.9 * bucket_s:
        out[0].update(partial=True, span_s=round(lead, 3))
    return out
