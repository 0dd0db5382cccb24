"""A drill's record: timeline.json (everything), timeline.md (for people), timeline.png (the picture:
every probe request over time, fault, detection, promotion and the first good write and read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meridian.drills.probe import ProbeLog

FILES = ("timeline.json", "timeline.md", "timeline.png")


def document(
    state: dict[str, Any],
    *,
    stack: str,
    description: str,
    objectives: dict[str, Any],
    measured: dict[str, Any],
    verdict: str,
    missed: list[str],
    log: ProbeLog | None,
) -> dict[str, Any]:
    outcomes = log.outcomes if log is not None else []
    return {
        "kind": "meridian-drill",
        "drill": state["drill"],
        "stack": stack,
        "target": state["target"],
        "run_id": state["run_id"],
        "description": description,
        "status": state["status"],
        "verdict": verdict,
        "objectives_missed": missed,
        "objectives": objectives,
        "measured": measured,
        "started_at": state.get("started_at"),
        "finished_at": state.get("finished_at"),
        "resumed": state.get("resumed", 0),
        "steps": state["steps"],
        "events": sorted(state.get("events", []), key=lambda e: e["t"]),
        "rollback": state.get("rollback"),
        "error": state.get("error"),
        "probe": {
            "tenant": log.tenant if log else None,
            "writes": sum(1 for o in outcomes if o.kind == "write"),
            "reads": sum(1 for o in outcomes if o.kind == "read"),
            "failed": sum(1 for o in outcomes if not o.ok),
            "event_type": log.event_type if log else None,
            "outcomes": [[round(o.t, 4), o.kind, o.ok, o.status, o.event_id, o.tenant, o.probe_id] for o in outcomes],
        },
    }


def markdown(doc: dict[str, Any]) -> str:
    t0 = doc["started_at"] or 0.0
    lines = [
        f"# Drill `{doc['drill']}` on stack `{doc['stack']}` ({doc['target']})",
        "",
        f"{doc['description']}. Run `{doc['run_id']}`. **Verdict: {doc['verdict']}**",
        "",
    ]
    if doc["objectives_missed"]:
        lines += ["Why it is not a pass:", *[f"- {m}" for m in doc["objectives_missed"]], ""]
    obj = doc["objectives"]
    lines += [
        "## Objectives and measurements",
        "",
        f"Objectives (stack config `failover.rto_target_s`, `dr.rpo_minutes` and the failover detection bound, "
        f"divided by the target's time scale {obj['time_scale']:g}): RTO {obj['rto_s']:.2f} s, RPO {obj['rpo_s']:.2f} s, "
        f"detection {obj.get('detection_s') or 0:.2f} s.",
        "",
        "| phase | RTO s | failed requests | acknowledged writes | lost | RPO s | zero loss required |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for phase, m in doc["measured"].items():
        if not m.get("measured"):
            lines.append(f"| {phase} | not measured: {m.get('reason')} | | | | | |")
            continue
        rec, loss = m["recovery"], m["data_loss"]
        lines.append(
            f"| {phase} | {rec['rto_s']} | {rec['failed_requests']} | {loss['acknowledged']} | {len(loss['lost_ids'])} | "
            f"{loss['rpo_s']} | {'yes' if m['zero_loss_required'] else 'no'} |"
        )
    lost = {p: m["data_loss"]["lost_ids"] for p, m in doc["measured"].items() if m.get("measured") and m["data_loss"]["lost_ids"]}
    for phase, ids in lost.items():
        lines.append(f"\nLost in {phase} (acknowledged, then missing from the new primary): ids {', '.join(map(str, ids))}")
    lines += ["", "## Steps", "", "| # | step | status | seconds | what happened |", "|---:|---|---|---:|---|"]
    for i, s in enumerate(doc["steps"], start=1):
        said = (s.get("found") or s.get("error") or "").replace("|", "/")
        lines.append(f"| {i} | {s['name']} | {s.get('status')} | {s.get('seconds', '')} | {said} |")
    lines += ["", "## Timeline", "", "| t (s) | event | detail |", "|---:|---|---|"]
    lines += [f"| {e['t'] - t0:.3f} | {e['event']} | {e.get('detail', '')} |" for e in doc["events"]]
    if doc.get("rollback"):
        rb = doc["rollback"]
        lines += ["", f"## Rollback ({rb['mode']})", "", *[f"- {o}" for o in rb["operations"]]]
        if rb["errors"]:
            lines += ["", "Rollback errors:", *[f"- {e}" for e in rb["errors"]]]
        if rb["failback_needed"]:
            lines += ["", "The stack stays failed over: run `meridian drill failback` once the cause is fixed."]
    p = doc["probe"]
    lines += ["", f"Probe: tenant `{p['tenant']}`, {p['writes']} writes, {p['reads']} reads, {p['failed']} failed.", ""]
    return "\n".join(lines)


def figure(doc: dict[str, Any]):
    """The drill on one time axis: each probe write and read (ok or failed), every event labelled
    with its time, the steps' spans; the legend beside the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = doc["started_at"] or 0.0
    fig, ax = plt.subplots(figsize=(11, 3.6), dpi=110)
    rows = {"write": 1.0, "read": 0.0}
    for kind, y in rows.items():
        for ok, colour, marker in ((True, "#2e7d32", "|"), (False, "#c62828", "x")):
            xs = [o[0] - t0 for o in doc["probe"]["outcomes"] if o[1] == kind and o[2] == ok]
            if xs:
                ax.scatter(
                    xs, [y] * len(xs), s=18, c=colour, marker=marker, linewidths=0.8, label=f"{kind} {'ok' if ok else 'failed'}"
                )
    colours = {"fault": "#c62828", "detected": "#ef6c00", "failback": "#6a1b9a"}
    # in time order, each label on its own level (four levels) with its time: labels of events a few
    # ms apart neither overlap nor read in the wrong order
    for i, e in enumerate(sorted(doc["events"], key=lambda e: e["t"])):
        x = e["t"] - t0
        colour = colours.get(e["event"], "#1565c0")
        ax.axvline(x, color=colour, lw=1, ls="--", alpha=0.8)
        ax.text(
            x,
            1.3 + 0.17 * (i % 4),
            f"{e['event']} {x:.2f} s",
            fontsize=7,
            color=colour,
            ha="left",
            va="bottom",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    for s in doc["steps"]:
        if s.get("started_at") and s.get("seconds") is not None:
            ax.axvspan(
                s["started_at"] - t0, s["started_at"] - t0 + s["seconds"], ymin=0.02, ymax=0.08, color="#90a4ae", alpha=0.6
            )
    ax.set_yticks(list(rows.values()), list(rows))
    ax.set_ylim(-0.5, 2.1)
    ax.set_xlabel("seconds since the drill started")
    measured = "; ".join(
        f"{k}: RTO {m['recovery']['rto_s']} s, lost {len(m['data_loss']['lost_ids'])}"
        for k, m in doc["measured"].items()
        if m.get("measured")
    )
    ax.set_title(f"{doc['drill']} on {doc['stack']} ({doc['target']}): {doc['verdict']}  {measured}", fontsize=9)
    if ax.get_legend_handles_labels()[0]:  # a drill that failed before the probe started has no requests
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def picture(doc: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = figure(doc)
    fig.savefig(path)
    plt.close(fig)


def write(run_dir: Path, doc: dict[str, Any]) -> list[Path]:
    (run_dir / "timeline.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (run_dir / "timeline.md").write_text(markdown(doc))
    picture(doc, run_dir / "timeline.png")
    return [run_dir / f for f in FILES]
