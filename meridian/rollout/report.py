"""The rollout report: `rollout.json` (everything), `rollout.md` and `rollout.png` (the canary's
latency against stable's: every request over time by version with the steps marked, and each
objective the gate judges per step)."""

from __future__ import annotations

import json
from pathlib import Path

from meridian.rollout.judge import fmt_summary
from meridian.slo.evaluate import OK, Sample, fmt_value

JSON, MD, PNG = "rollout.json", "rollout.md", "rollout.png"


def write(out_dir: Path, doc: dict, samples: list[Sample], canary_version: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / JSON, "md": out_dir / MD, "png": out_dir / PNG}
    paths["json"].write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    paths["md"].write_text(markdown(doc))
    plot(paths["png"], doc, samples, canary_version)
    return paths


def markdown(doc: dict) -> str:
    plan = doc["plan"]
    lines = [
        f"# Rollout of {plan['version']} on {plan['stack']} ({plan['target']}): {doc['decision'].replace('_', ' ').upper()}",
        "",
        f"- digest `{plan['digest']}`, rollout plan sha256 `{doc['plan_sha256'][:16]}…`",
        f"- steps {', '.join(f'{s} %' for s in plan['steps'])} per region, in order {' -> '.join(plan['region_order'])}; "
        f"window {plan['window_s']:g} s, at least {plan['min_samples']} canary requests judged per step",
        f"- {doc['reason']}",
        "",
        "| step | region | canary % | decision | canary | stable | held s |",
        "|---:|---|---:|---|---|---|---:|",
    ]
    for s in doc["steps"]:
        lines.append(
            f"| {s['index'] + 1} | {s['role']} | {s['percent']} | {s['decision']} | {fmt_summary(s['canary'])} "
            f"| {fmt_summary(s['stable'])} | {s['ended_at'] - s['started_at']:.1f} |"
        )
    lines += traffic_moves(doc)
    rb = doc.get("rollback") or {}
    if rb:
        frac = rb.get("canary_fraction")
        lines += [
            "",
            "## Rollback",
            "",
            f"- {doc['reason']}",
            f"- canary traffic onset -> 0 %: {rb['onset_to_zero_s']:.2f} s (step window {rb['window_s']:g} s); "
            f"decision -> 0 %: {rb['decision_to_zero_s'] * 1000:.0f} ms",
            f"- requests answered by the canary before 0 %: {rb['canary_requests']} of {rb['requests']}"
            + (f" ({fmt_value('error_rate', frac)})" if frac is not None else ""),
        ]
    prov = doc.get("provenance")
    if prov:
        lines += ["", f"Provenance record: `{prov}`"]
    lines += ["", f"![canary vs stable latency]({PNG})", ""]
    return "\n".join(lines)


def traffic_moves(doc: dict) -> list[str]:
    """Every canary weight the run changed, in order: the evidence says what the terminal said."""
    moves = doc.get("traffic_moves") or []
    if not moves:
        return ["", "## Traffic moves", "", "- none: this run changed no weight"]
    lines = ["", "## Traffic moves", "", "| when (UTC) | region | canary % | version | why |", "|---|---|---|---|---|"]
    for m in moves:
        lines.append(
            f"| {m['at_utc']} | {m['role']} | {m['from_percent']} -> {m['to_percent']} | {m['version']} "
            f"| {m['why'].replace('|', '/')} |"
        )
    return lines


MAX_POINTS = 4000  # per version: more points only hide each other (and the canary under the stable)


def thinned(points: list[tuple[float, float]], cap: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Every n-th point, evenly over time, so at most `cap` remain (the same points every run)."""
    if len(points) <= cap:
        return points
    step = len(points) / cap
    return [points[int(i * step)] for i in range(cap)]


# What each step's panel draws: every objective the gate judges, in this order; p95 when none is set.
PANELS = ("p50_ms", "p95_ms", "p99_ms", "error_rate", "availability")
LINE_STYLES = {"p50_ms": ":", "p95_ms": "--", "p99_ms": "-."}


def judged_objectives(objectives: dict) -> list[str]:
    return [key for key in PANELS if objectives.get(key) is not None] or ["p95_ms"]


def _panel_label(key: str) -> str:
    return key.removesuffix("_ms").replace("_", " ") + (" ms" if key.endswith("_ms") else " %")


def _panel_value(key: str, value: float | None) -> float:
    if value is None:
        return float("nan")  # nothing measured (too little evidence): no bar
    return value if key.endswith("_ms") else value * 100


def step_label(step: dict) -> str:
    """Three short lines ("1", "dr", "5 %"): ten steps side by side stay apart."""
    return f"{step['index'] + 1}\n{step['role']}\n{step['percent']} %"


def figure(doc: dict, samples: list[Sample], canary_version: str):
    """Each request's latency (thinned to at most MAX_POINTS per version) with the steps, the pauses
    between regions and the rollback marked; below, one panel per objective the gate judges (p50,
    p95, p99, error rate, availability as configured): canary against stable at every step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = doc["steps"]
    objectives = doc.get("objectives") or {}
    keys = judged_objectives(objectives)
    width = max(12.0, 3.5 + 0.9 * len(steps))  # room for every step's label
    fig, axes = plt.subplots(
        1 + len(keys),
        1,
        figsize=(width, 4.5 + 1.7 * len(keys)),
        gridspec_kw={"height_ratios": [3] + [1.2] * len(keys)},
    )
    ax, panels = axes[0], axes[1:]
    t0 = min((s.start for s in samples), default=0.0)
    for is_canary, colour, label in ((False, "tab:blue", "stable"), (True, "tab:red", f"canary ({canary_version})")):
        pts = sorted(
            (s.start - t0, s.ms) for s in samples if s.outcome == OK and s.version and (s.version == canary_version) == is_canary
        )
        shown = thinned(pts)
        if shown:
            xs, ys = zip(*shown, strict=True)
            note = f", {len(shown):,} of {len(pts):,} shown" if len(shown) < len(pts) else ""
            ax.scatter(
                xs,
                ys,
                s=14 if is_canary else 5,
                c=colour,
                alpha=0.85 if is_canary else 0.3,
                label=f"{label}{note}",
                zorder=3 if is_canary else 2,
            )
    for s in steps:
        ax.axvline(s["started_at"] - t0, color="grey", lw=0.8, ls=":")
        ax.annotate(
            f"{s['index'] + 1}: {s['role']} {s['percent']} %",
            (s["started_at"] - t0, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            rotation=90,
            va="top",
            ha="right",
        )
    for before, after in zip(steps, steps[1:], strict=False):
        if before["role"] != after["role"] and after["started_at"] > before["ended_at"]:
            ax.axvspan(
                before["ended_at"] - t0, after["started_at"] - t0, color="grey", alpha=0.15, label="pause: load moves region"
            )
    rb = doc.get("rollback") or {}
    if rb:
        ax.axvline(rb["at_zero"] - t0, color="tab:red", lw=1.2, label="canary at 0 %")
    for key in keys:  # one line style per percentile: three black dashes would read as one
        if key.endswith("_ms") and objectives.get(key) is not None:
            name = key.removesuffix("_ms")
            style = LINE_STYLES[key]
            ax.axhline(objectives[key], color="black", lw=0.8, ls=style, label=f"{name} objective {objectives[key]:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("latency ms (each request)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry for every pause
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    ax.set_title(f"Rollout of {canary_version}: canary vs stable ({doc['decision'].replace('_', ' ')})")
    xs = list(range(len(steps)))
    for i, (bx, key) in enumerate(zip(panels, keys, strict=True)):
        unit = _panel_label(key)
        bx.bar(
            [x - 0.2 for x in xs],
            [_panel_value(key, s["stable"].get(key)) for s in steps],
            width=0.4,
            color="tab:blue",
            label="stable",
        )
        bx.bar(
            [x + 0.2 for x in xs],
            [_panel_value(key, s["canary"].get(key)) for s in steps],
            width=0.4,
            color="tab:red",
            label="canary",
        )
        if objectives.get(key) is not None:
            threshold = _panel_value(key, objectives[key])
            bx.axhline(threshold, color="black", lw=0.8, ls="--", label=f"objective {threshold:g} {unit.split()[-1]}")
        bx.set_ylabel(f"{unit}\nper step", fontsize=9)
        bx.set_xticks(xs, [step_label(s) for s in steps] if i == len(keys) - 1 else [""] * len(xs), fontsize=9)
        bx.set_xlim(-0.6, len(steps) - 0.4)
        if key == "availability":  # 99.9 against 100 from a zero baseline are one bar height: start near them
            shown = [v for s in steps for v in (_panel_value(key, s["canary"].get(key)), _panel_value(key, s["stable"].get(key)))]
            floor = min([v for v in shown if v == v] + ([threshold] if objectives.get(key) is not None else []), default=0.0)
            bx.set_ylim(max(0.0, floor - max(1.0, 100.0 - floor)), 100.0 + 0.05 * max(1.0, 100.0 - floor))
        bx.grid(axis="y", alpha=0.3)
        bx.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    fig.tight_layout()
    return fig


def plot(path: Path, doc: dict, samples: list[Sample], canary_version: str) -> None:
    import matplotlib.pyplot as plt

    fig = figure(doc, samples, canary_version)
    fig.savefig(path, dpi=100)
    plt.close(fig)
