"""The gate at each step: the canary's own requests against the SLO, apart from stable's. Pure.

Requests are told apart by the version that answered them (the service's `X-Meridian-Version`), so
1 % of traffic is enough to see a canary fail: its p95 is its own, not diluted by the 99 %.

How it decides, at every look while a step holds:
- fewer than `min_samples` judged canary requests (successes + errors; 429s are the quota, not a
  verdict): hold; past `max_hold_s` still short -> roll back ("not enough evidence" never promotes);
- otherwise judge them (stack-wide objectives, and each endpoint's own objectives where the canary
  has `min_samples` of that endpoint): a failed objective -> roll back at once, not at the end of
  the window (the time from a bad canary's first request to 0 % is the point of the gate);
- everything met and the window over -> promote.
Stable's requests are judged the same way and reported beside the canary's (the control group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from meridian.slo.evaluate import ERROR, OK, Sample, Verdict, evaluate, fmt_value
from meridian.slo.objectives import SloSpec

DEFAULT_MIN_SAMPLES = 20
HOLD_FACTOR = 4  # a step short of samples holds at most this many windows


@dataclass(frozen=True)
class Split:
    canary: list[Sample]
    stable: list[Sample]
    unattributed: list[Sample]  # no version answered (transport errors, the balancer's own 503)


def split_by_version(samples: list[Sample], canary_version: str) -> Split:
    canary, stable, none = [], [], []
    for s in samples:
        if not s.version:
            none.append(s)
        elif s.version == canary_version:
            canary.append(s)
        else:
            stable.append(s)
    return Split(canary, stable, none)


def judged_count(samples: list[Sample]) -> int:
    return sum(1 for s in samples if s.outcome in (OK, ERROR))


@dataclass(frozen=True)
class Judgement:
    decision: Literal["hold", "promote", "rollback"]
    reason: str
    canary: Verdict | None
    stable: Verdict | None
    canary_judged: int
    failures: list[str] = field(default_factory=list)


def verdict_of(samples: list[Sample], slo: SloSpec, min_samples: int) -> Verdict:
    by_endpoint: dict[str, int] = {}
    for s in samples:
        if s.outcome in (OK, ERROR):
            by_endpoint[s.name] = by_endpoint.get(s.name, 0) + 1
    endpoints = {name: obj for name, obj in slo.endpoints.items() if by_endpoint.get(name, 0) >= min_samples}
    return evaluate(samples, slo.objectives, endpoints)


def judge(split: Split, slo: SloSpec, *, min_samples: int, elapsed_s: float, window_s: float, max_hold_s: float) -> Judgement:
    n = judged_count(split.canary)
    stable = verdict_of(split.stable, slo, min_samples) if split.stable else None
    if n < min_samples:
        if elapsed_s >= max_hold_s:
            return Judgement(
                "rollback",
                f"not enough evidence: the canary answered {n} judged requests in {elapsed_s:.1f} s, fewer than the "
                f"minimum {min_samples} (raise --window or the load, or lower --min-samples)",
                None,
                stable,
                n,
                [f"canary requests {n} < minimum {min_samples}"],
            )
        return Judgement("hold", f"{n}/{min_samples} canary requests", None, stable, n)
    canary = verdict_of(split.canary, slo, min_samples)
    if not canary.passed:
        failures = [c.message for c in canary.failures]
        return Judgement("rollback", "; ".join(failures), canary, stable, n, failures)
    if elapsed_s >= window_s:
        return Judgement("promote", f"every objective met on {n} canary requests", canary, stable, n)
    return Judgement("hold", f"{n} canary requests, objectives met so far", canary, stable, n)


def summary(verdict: Verdict | None) -> dict:
    if verdict is None:
        return {"requests": 0}
    o = verdict.overall
    return {
        "requests": o.requests,
        "judged": o.ok + o.errors,
        "p50_ms": o.p50_ms,
        "p95_ms": o.p95_ms,
        "p99_ms": o.p99_ms,
        "error_rate": o.error_rate,
        "availability": o.availability,
        "passed": verdict.passed,
        "failures": [c.message for c in verdict.failures],
    }


def fmt_summary(d: dict) -> str:
    """One side of a step (canary or stable) in a line. A side that was never judged (too few
    requests) has only its counts: it says so instead of percentiles it does not have."""
    if not d.get("requests"):
        return "no requests"
    if "p95_ms" not in d:
        return f"{d['requests']} req, {d.get('judged', 0)} judged: too few to judge"
    return f"{d['requests']} req, p95 {fmt_value('p95_ms', d['p95_ms'])}, errors {fmt_value('error_rate', d['error_rate'])}"


def hold_clock(elapsed_s: float, window_s: float, max_hold_s: float, *, short_of_samples: bool) -> str:
    """Where a step is in its hold, never past its own limit: within the window `2.0/5 s`; after it,
    while short of canary requests, against the longest hold `9.1/20 s`; else the window is done."""
    if elapsed_s < window_s:
        return f"{elapsed_s:.1f}/{window_s:g} s"
    if short_of_samples:
        return f"window {window_s:g} s over, short of requests {min(elapsed_s, max_hold_s):.1f}/{max_hold_s:g} s"
    return f"window {window_s:g} s done"
