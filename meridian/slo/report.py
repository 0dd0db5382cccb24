"""The SLO report: `report.json` (everything), `report.md` (for people and PRs) and `latency.png`
(p50/p95/p99 and throughput per second, objectives dashed, fault windows shaded, chaos events marked)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from meridian.reports import SLO_JSON, SLO_MD, SLO_PNG
from meridian.slo.evaluate import Sample, Stats, Verdict, Window, fmt_value, timeline
from meridian.slo.objectives import SloSpec

PNG, MD, JSON = SLO_PNG, SLO_MD, SLO_JSON


def write(
    out_dir: Path,
    *,
    title: str,
    meta: dict,
    spec: SloSpec,
    verdict: Verdict,
    samples: list[Sample],
    windows: list[Window] = (),
    events: list[dict] = (),
    extra_md: str = "",
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    span = (max(x.start for x in samples) - min(x.start for x in samples)) if samples else 0.0
    # short chaos runs: fault edges need finer steps; a bin edge on the (first) fault's start
    series = timeline(samples, 0.5 if span < 120 else 1.0, align_to=min((w.start for w in windows), default=None))
    doc = {
        "title": title,
        **meta,
        "passed": verdict.passed,
        "objectives": asdict(spec.objectives),
        "endpoint_objectives": {k: asdict(v) for k, v in spec.endpoints.items()},
        "objective_sources": spec.sources,
        "chaos_budget": spec.chaos.model_dump(),
        "verdict": verdict.to_dict(),
        "windows": [asdict(w) for w in windows],
        "events": list(events),
        "timeline": series,
    }
    paths = {"json": out_dir / JSON, "md": out_dir / MD, "png": out_dir / PNG}
    paths["json"].write_text(json.dumps(doc, indent=2, default=str) + "\n")
    plot(paths["png"], title, series, spec, windows, events)
    paths["md"].write_text(markdown(title, meta, spec, verdict, extra_md))
    return paths


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.3g} %"


def _evidence(c) -> str:
    if c.had is None or c.needed is None:
        return "-"
    return f"{c.had:,.0f} / {'∞' if c.needed == float('inf') else format(c.needed, ',.0f')} {c.note}"


def _row(name: str, s: Stats) -> str:
    return (
        f"| {name} | {s.requests} | {s.errors} | {s.throttled} | {_pct(s.throttled_share)} | {_ms(s.p50_ms)} | {_ms(s.p95_ms)} | {_ms(s.p99_ms)} "
        f"| {_pct(s.error_rate)} | {_pct(s.availability)} | {s.rps:.1f} |"
    )


HEAD = (
    "| scope | requests | errors | throttled (429) | 429 share | p50 ms | p95 ms | p99 ms | error rate | availability | req/s |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _headline(verdict: Verdict) -> str:
    if not verdict.passed:
        return "NOT ENOUGH EVIDENCE" if verdict.not_enough_evidence else "FAILED"
    unproven = ", ".join(sorted({c.objective for c in verdict.not_proven}))
    return f"PASSED (not proven by this run: {unproven})" if unproven else "PASSED"


def markdown(title: str, meta: dict, spec: SloSpec, verdict: Verdict, extra_md: str = "") -> str:
    lines = [
        f"# {title}",
        "",
        f"**{_headline(verdict)}** — " + ", ".join(f"{k} {v}" for k, v in meta.items() if isinstance(v, (str, int, float))),
        "",
    ]
    for outcome, checks in verdict.unmet():
        lines += [f"- {len(checks)} objective(s) {outcome}:"] + [f"  - {c.message}" for c in checks]
    lines += [f"- {n}" for n in verdict.notes]
    if verdict.unmet() or verdict.notes:
        lines.append("")
    lines += [
        "## Objectives",
        "",
        "| scope | objective | threshold | measured | evidence (had / needed) | result | threshold from |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for c in verdict.checks:
        # a tenant, and a stack of the zone, is judged on the stack-wide numbers
        stack_wide = c.scope == "all" or c.scope.startswith(("tenant ", "stack "))
        src = spec.sources.get(c.objective, spec.path or "slo.yaml") if stack_wide else (spec.path or "slo.yaml")
        lines.append(
            f"| {c.scope} | {c.objective} | {fmt_value(c.objective, c.threshold)} | {fmt_value(c.objective, c.measured)} "
            f"| {_evidence(c)} | {c.outcome} | {src} |"
        )
    lines += ["", "## Traffic", "", HEAD, _row("all (outside fault windows)", verdict.overall)]
    lines += [_row(name, s) for name, s in verdict.endpoints.items()]
    if verdict.chaos is not None:
        lines.append(_row("inside fault windows", verdict.chaos))
    if verdict.stacks:
        lines += ["", "## Per stack of the zone", "", HEAD] + [_row(t, s) for t, s in verdict.stacks.items()]
    if verdict.tenants:
        lines += ["", "## Per tenant", "", HEAD] + [_row(t, s) for t, s in verdict.tenants.items()]
    lines += (
        ["", extra_md, "", f"![latency and throughput]({PNG})", ""] if extra_md else ["", f"![latency and throughput]({PNG})", ""]
    )
    return "\n".join(lines)


# Each line its own colour across both panels (the throttled line used to share p95's).
COLOURS = {
    "p50_ms": "tab:blue",
    "p95_ms": "tab:purple",
    "p99_ms": "tab:brown",
    "ok": "tab:green",
    "errors": "tab:red",
    "throttled": "tab:olive",
}
# A percentile is drawn for a bin only with enough successful requests under it: below that, "p99"
# of a bin is just its slowest request (p95 needs 20, p99 100).
MIN_OK = {"p50_ms": 2, "p95_ms": 20, "p99_ms": 100}


def figure(title: str, series: list[dict], spec: SloSpec, windows, events):
    """The report's picture: latency percentiles against every objective set, throughput by
    outcome, fault windows and chaos events; the partial last bin left out (`timeline`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, tput) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    t0 = series[0]["t"] - series[0]["offset_s"] if series else 0.0  # the first request: x = 0
    whole = [p for p in series if not p.get("partial")]
    xs = [p["offset_s"] for p in whole]
    missing = []  # percentiles no bin had enough requests for: no line, no legend entry, said in the title
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        ys = [p[key] if p[key] is not None and p.get("ok", MIN_OK[key]) >= MIN_OK[key] else float("nan") for p in whole]
        if all(y != y for y in ys):
            most = max((p.get("ok", 0) for p in whole), default=0)
            missing.append(f"{key.replace('_ms', '')} not drawn: no bin has {MIN_OK[key]} successful requests (most {most})")
        else:
            lat.plot(xs, ys, "-", color=COLOURS[key], label=key.replace("_ms", ""), lw=1.2, drawstyle="steps-post")
        objective = getattr(spec.objectives, key, None)
        if objective is not None:
            lat.axhline(
                objective, ls="--", lw=0.9, color=COLOURS[key], label=f"{key.replace('_ms', '')} objective {objective:g} ms"
            )
    lat.set_ylabel("latency, ms (log)")
    lat.set_yscale("log")
    ok = [p["rps"] - p["errors_per_s"] - p["throttled_per_s"] for p in whole]
    tput.plot(xs, ok, label="ok/s", color=COLOURS["ok"], lw=1.2, drawstyle="steps-post")
    tput.plot(xs, [p["errors_per_s"] for p in whole], label="errors/s", color=COLOURS["errors"], lw=1.2, drawstyle="steps-post")
    if any(p["throttled_per_s"] for p in whole):
        tput.plot(
            xs,
            [p["throttled_per_s"] for p in whole],
            label="throttled (429)/s",
            color=COLOURS["throttled"],
            lw=1.0,
            drawstyle="steps-post",
        )
    tput.set_ylabel("requests/s")
    tput.set_xlabel("seconds since the first request")
    width = series[1]["offset_s"] - series[0]["offset_s"] if len(series) > 1 else 0
    cut = " (partial bins at the ends left out)" if len(whole) < len(series) else ""
    lat.set_title(
        f"per {width:g} s bin{cut}; p95 drawn where a bin has >= {MIN_OK['p95_ms']} successful requests, "
        f"p99 where >= {MIN_OK['p99_ms']}" + "".join(f"\n{m}" for m in missing),
        fontsize=8,
        loc="left",
    )
    for ax in (lat, tput):
        for w in windows:
            ax.axvspan(w.start - t0, w.end - t0, color="tab:red", alpha=0.12)
        ax.grid(alpha=0.3)
    for w in windows:  # inside the plot, under its top edge: the title above stays clear
        lat.annotate(
            w.label,
            (w.start - t0, 0.98),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            va="top",
            ha="left",
            color="tab:red",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    # events in time order, each label on its own level so near-simultaneous ones stay readable
    for i, e in enumerate(sorted(events, key=lambda e: e["t"])):
        x = e["t"] - t0
        for ax in (lat, tput):
            ax.axvline(x, color="black", lw=0.7, ls=":")
        tput.annotate(
            f"{e['label']} ({x:.1f} s)",
            (x, 0.95 - 0.13 * (i % 4)),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            va="top",
            ha="left",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    # legends beside the plots: they cover no data
    lat.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    tput.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot(path: Path, title: str, series: list[dict], spec: SloSpec, windows, events) -> None:
    import matplotlib.pyplot as plt

    fig = figure(title, series, spec, windows, events)
    fig.savefig(path, dpi=110)
    plt.close(fig)
