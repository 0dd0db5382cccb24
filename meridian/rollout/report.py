"""The rollout report: `rollout.json` (everything), `rollout.md` and `rollout.png` (the canary's
latency against stable's: every request over time by version with the steps marked, and p95 per step)."""

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


def figure(doc: dict, samples: list[Sample], canary_version: str):
    """Each request's latency (thinned to at most MAX_POINTS per version) with the steps, the pauses
    between regions and the rollback marked; below, each step's p95 of canary and stable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(12, 7.5), gridspec_kw={"height_ratios": [3, 2]})
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
    steps = doc["steps"]
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
    p95 = doc.get("objectives", {}).get("p95_ms")
    if p95:
        ax.axhline(p95, color="black", lw=0.8, ls="--", label=f"p95 objective {p95:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("latency ms (each request)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry for every pause
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    ax.set_title(f"Rollout of {canary_version}: canary vs stable ({doc['decision'].replace('_', ' ')})")
    labels = [f"{s['index'] + 1}: {s['role']} {s['percent']}%" for s in steps]
    xs = range(len(labels))
    can = [s["canary"].get("p95_ms") or 0 for s in steps]
    sta = [s["stable"].get("p95_ms") or 0 for s in steps]
    bx.bar([x - 0.2 for x in xs], sta, width=0.4, color="tab:blue", label="stable p95")
    bx.bar([x + 0.2 for x in xs], can, width=0.4, color="tab:red", label="canary p95")
    if p95:
        bx.axhline(p95, color="black", lw=0.8, ls="--", label=f"p95 objective {p95:g} ms")
    bx.set_xticks(list(xs), labels, fontsize=9)
    bx.set_ylabel("p95 ms per step")
    bx.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    fig.tight_layout()
    return fig


def plot(path: Path, doc: dict, samples: list[Sample], canary_version: str) -> None:
    import matplotlib.pyplot as plt

    fig = figure(doc, samples, canary_version)
    fig.savefig(path, dpi=100)
    plt.close(fig)
