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


def plot(path: Path, doc: dict, samples: list[Sample], canary_version: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(10, 7), gridspec_kw={"height_ratios": [3, 2]})
    t0 = min((s.start for s in samples), default=0.0)
    for version, colour, label in ((False, "tab:blue", "stable"), (True, "tab:red", f"canary ({canary_version})")):
        pts = [
            (s.start - t0, s.ms) for s in samples if s.outcome == OK and (s.version == canary_version) == version and s.version
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, s=6 if not version else 14, c=colour, alpha=0.35 if not version else 0.9, label=label)
    for s in doc["steps"]:
        ax.axvline(s["started_at"] - t0, color="grey", lw=0.8, ls=":")
        ax.annotate(f" {s['role']} {s['percent']}%", (s["started_at"] - t0, 0.02), xycoords=("data", "axes fraction"), fontsize=7)
    rb = doc.get("rollback") or {}
    if rb:
        ax.axvline(rb["at_zero"] - t0, color="tab:red", lw=1.2, label="canary at 0 %")
    p95 = doc.get("objectives", {}).get("p95_ms")
    if p95:
        ax.axhline(p95, color="black", lw=0.8, ls="--", label=f"p95 objective {p95:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("latency ms (each request)")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(f"Rollout of {canary_version}: canary vs stable ({doc['decision'].replace('_', ' ')})")
    labels = [f"{s['index'] + 1}: {s['role']} {s['percent']}%" for s in doc["steps"]]
    xs = range(len(labels))
    can = [s["canary"].get("p95_ms") or 0 for s in doc["steps"]]
    sta = [s["stable"].get("p95_ms") or 0 for s in doc["steps"]]
    bx.bar([x - 0.2 for x in xs], sta, width=0.4, color="tab:blue", label="stable p95")
    bx.bar([x + 0.2 for x in xs], can, width=0.4, color="tab:red", label="canary p95")
    if p95:
        bx.axhline(p95, color="black", lw=0.8, ls="--")
    bx.set_xticks(list(xs), labels, fontsize=7)
    bx.set_ylabel("p95 ms per step")
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
