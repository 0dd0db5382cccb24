"""The SLO gate: load the target, judge the raw timings, report. Shared by `meridian slo`, `up`
and `chaos`; it talks to the stack only through its Target."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from meridian.errors import GateFailed
from meridian.output import Progress
from meridian.slo import report, run
from meridian.slo.evaluate import Verdict, fmt_value
from meridian.slo.objectives import SloSpec, judge
from meridian.targets import Target


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    paths: dict[str, Path]
    locust_exit: int  # the suite's own verdict (locust's exit code): must agree with ours


class PlanNotTested(GateFailed):
    """The target does not run the plan that was previewed (exit 1): gating it would judge another deployment."""


def check_tested_plan(target: Target, previewed_sha256: str | None) -> str | None:
    """The plan hash the target runs (what the report says it tested); with `previewed_sha256`,
    a target running any other plan (or an unrecorded one) fails the gate."""
    tested = target.plan_sha256()
    if previewed_sha256 is not None and tested != previewed_sha256:
        raise PlanNotTested(
            f"the {target.stack} {target.kind} runs plan {tested or '(unrecorded)'}, not the previewed plan "
            f"{previewed_sha256}: the update was not applied, so the SLO gate would judge another deployment. "
            f"Bring the target to the new plan (`meridian up` restarts a sandbox whose plan changed) and rerun."
        )
    return tested


def progress_printer(console, spec: run.LoadSpec):
    """A callback for `LocustRun.wait`: the load's progress, live in a terminal, a line every few
    seconds in a CI log (output.Progress). The clock stops at the run's duration: after it, the
    line says once that the run is finishing (the last requests and the report) instead of counting past it."""
    status = Progress(console, "starting Locust ...").start()
    t0 = time.monotonic()

    def show(p: dict | None) -> None:
        if p is None:
            status.stop()
            return
        p95 = "-" if p["window_p95_ms"] is None else f"{p['window_p95_ms']:.0f} ms"
        elapsed = time.monotonic() - t0
        if elapsed > spec.duration_s:  # said once: the counts come whole in the summary after it
            status.update(f"{spec.duration_s:g} s done: the last requests in flight, then the report")
            return
        clock = f"{elapsed:4.0f}/{spec.duration_s:g} s"
        status.update(
            f"{clock}  users {p['users']:>4}  "
            f"req {p['requests']:>7}  last s: {p['window_requests']:>5} req, {p['window_errors']} err, "
            f"{p['window_throttled']} 429, p95 {p95}"
        )

    return show


def run_gate(
    target: Target,
    project_dir: Path,
    slo: SloSpec,
    load: run.LoadSpec,
    out_dir: Path,
    *,
    console,
    slo_path: Path | None = None,
    title: str | None = None,
    previewed_sha256: str | None = None,
) -> GateResult:
    """`previewed_sha256`: the plan `meridian up` previewed; the target must run it before and after
    the load (`check_tested_plan`)."""
    check_tested_plan(target, previewed_sha256)
    loc = run.start(target, project_dir, load, out_dir, slo_path=slo_path)
    show = progress_printer(console, load)
    try:
        code = loc.wait(load.duration_s + 60, show)
    finally:
        show(None)
        run.finish(loc)
    if code not in (0, 1):  # 0/1 are the suite's own SLO verdict; anything else is Locust failing
        raise run.LoadFailed(f"Locust exited with {code}; log tail:\n{run.tail(out_dir / 'locust.log')}")
    tested_plan = check_tested_plan(target, previewed_sha256)  # not restarted onto another plan meanwhile
    samples = loc.samples()
    verdict = judge(slo, samples)
    if code != (0 if verdict.passed else 1):
        raise run.LoadFailed(
            f"the suite's own verdict (Locust exit {code}) disagrees with the gate's "
            f"({'met' if verdict.passed else 'failed'}) on the same samples: a bug; see {out_dir}"
        )
    meta = {
        "stack": target.stack,
        "target": target.kind,
        "endpoint": target.endpoint(),
        "plan_sha256": tested_plan or "unrecorded",
        "started_at": datetime.fromtimestamp(loc.started, UTC).isoformat(timespec="seconds"),
        "load": asdict(load),
        "samples": "raw.csv",  # beside the report: the folder reads the same wherever it is copied
    }
    paths = report.write(
        out_dir,
        title=title or f"SLO gate: {target.stack} on {target.kind} ({load.shape})",
        meta=meta,
        spec=slo,
        verdict=verdict,
        samples=samples,
    )
    return GateResult(verdict, paths, code)


_STYLE = {"ok": "green", "not proven": "yellow", "not enough evidence": "yellow", "FAILED": "red"}


def print_verdict(console, result: GateResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    v = result.verdict
    table = Table(title="SLO objectives", title_justify="left")
    for col in ("scope", "objective", "threshold", "measured", "result"):
        table.add_column(col, justify="right" if col in ("threshold", "measured") else "left")
    for c in v.checks:
        table.add_row(
            escape(c.scope),
            c.objective,
            fmt_value(c.objective, c.threshold),
            fmt_value(c.objective, c.measured),
            f"[{_STYLE[c.outcome]}]{c.outcome}[/]",
        )
    console.print(table)
    o = v.overall
    console.print(
        f"{o.requests} requests ({o.rps:.0f}/s), {o.errors} errors, {o.throttled} throttled (429); "
        f"report: {result.paths['md']}  plot: {result.paths['png']}"
    )
