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
    series = timeline(samples, 0.5 if span < 120 else 1.0)  # short chaos runs: fault edges need finer steps
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
    if verdict.failures or verdict.notes or verdict.not_proven:
        lines += [f"- {c.message}" for c in verdict.failures + verdict.not_proven] + [f"- {n}" for n in verdict.notes] + [""]
    lines += [
        "## Objectives",
        "",
        "| scope | objective | threshold | measured | evidence (had / needed) | result | threshold from |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for c in verdict.checks:
        stack_wide = c.scope == "all" or c.scope.startswith("tenant ")  # a tenant is judged on the stack-wide numbers
        src = spec.sources.get(c.objective, spec.path or "slo.yaml") if stack_wide else (spec.path or "slo.yaml")
        lines.append(
            f"| {c.scope} | {c.objective} | {fmt_value(c.objective, c.threshold)} | {fmt_value(c.objective, c.measured)} "
            f"| {_evidence(c)} | {c.outcome} | {src} |"
        )
    lines += ["", "## Traffic", "", HEAD, _row("all (outside fault windows)", verdict.overall)]
    lines += [_row(name, s) for name, s in verdict.endpoints.items()]
    if verdict.chaos is not None:
        lines.append(_row("inside fault windows", verdict.chaos))
    if verdict.tenants:
        lines += ["", "## Per tenant", "", HEAD] + [_row(t, s) for t, s in verdict.tenants.items()]
    lines += (
        ["", extra_md, "", f"![latency and throughput]({PNG})", ""] if extra_md else ["", f"![latency and throughput]({PNG})", ""]
    )
    return "\n".join(lines)


def plot(path: Path, title: str, series: list[dict], spec: SloSpec, windows, events) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, tput) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    t0 = series[0]["t"] if series else 0.0
    xs = [p["offset_s"] for p in series]
    for key, style in (("p50_ms", "-"), ("p95_ms", "-"), ("p99_ms", "-")):
        lat.plot(
            xs,
            [p[key] if p[key] is not None else float("nan") for p in series],
            style,
            label=key.replace("_ms", ""),
            lw=1.2,
            drawstyle="steps-post",
        )
    for key in ("p95_ms", "p99_ms"):
        v = getattr(spec.objectives, key)
        if v is not None:
            lat.axhline(v, ls="--", lw=0.8, color="grey")
            lat.annotate(
                f"{key.replace('_ms', '')} objective {v:g} ms",
                (0, v),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                color="grey",
                va="bottom",
            )
    lat.set_ylabel("latency, ms")
    lat.set_yscale("log")
    lat.legend(loc="upper right", fontsize=8)
    tput.plot(
        xs, [p["rps"] - p["errors_per_s"] - p["throttled_per_s"] for p in series], label="ok/s", lw=1.2, drawstyle="steps-post"
    )
    tput.plot(xs, [p["errors_per_s"] for p in series], label="errors/s", color="tab:red", lw=1.2, drawstyle="steps-post")
    if any(p["throttled_per_s"] for p in series):
        tput.plot(
            xs,
            [p["throttled_per_s"] for p in series],
            label="throttled (429)/s",
            color="tab:orange",
            lw=1.0,
            drawstyle="steps-post",
        )
    tput.set_ylabel("requests/s")
    lat.set_title(f"per {series[1]['offset_s'] - series[0]['offset_s']:g} s" if len(series) > 1 else "", fontsize=8, loc="left")
    tput.set_xlabel("seconds since the first request")
    tput.legend(loc="upper right", fontsize=8)
    for ax in (lat, tput):
        for w in windows:
            ax.axvspan(w.start - t0, w.end - t0, color="tab:red", alpha=0.12)
        for e in events:
            ax.axvline(e["t"] - t0, color="black", lw=0.7, ls=":")
        ax.grid(alpha=0.3)
    for w in windows:
        lat.annotate(w.label, (w.start - t0, 1.0), xycoords=("data", "axes fraction"), fontsize=7, va="top", color="tab:red")
    for i, e in enumerate(events):  # staggered: detection and recovery are often a few ms apart
        tput.annotate(
            e["label"], (e["t"] - t0, 1.0 - 0.3 * (i % 2)), xycoords=("data", "axes fraction"), fontsize=7, va="top", rotation=90
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
