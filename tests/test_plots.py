"""Each report picture rendered from recorded-shape data and read back element by element: every
objective drawn, the partial last bin left out, thin percentiles not drawn, points thinned, phases
labelled, labels that do not overlap, legends that cover no data, distinct colours."""

from __future__ import annotations

import dataclasses
import random

import matplotlib
import pytest

from meridian.drills import timeline as drill_timeline
from meridian.rollout import report as rollout_report
from meridian.slo import report as slo_report
from meridian.slo.evaluate import ERROR, OK, THROTTLED, Objectives, Sample, Window, timeline
from meridian.slo.objectives import SloSpec

matplotlib.use("Agg")


def render(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def legends_beside_the_data(fig) -> None:
    renderer = render(fig)
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box, area = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert box.x0 >= area.x1 - 1, f"a legend over the plot area of {ax.get_title() or ax.get_ylabel()!r}"


def no_overlap(texts, renderer) -> None:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            assert not box_a.overlaps(box_b), f"labels {a!r} and {b!r} overlap"


@pytest.fixture
def slo_run():
    """40.3 s of traffic (a last bin of 0.3 s), a fault window, 429s, and chaos events a few ms apart."""
    rng = random.Random(3)
    samples = []
    for i in range(8060):  # 200 a second: enough for a p99 in every bin
        t = 1000.0 + i * 0.005
        outcome = OK if i % 50 else (THROTTLED if i % 100 else ERROR)
        samples.append(Sample(t, "read", rng.uniform(5, 80), 200, outcome, "acme"))
    window = Window(1015.0, 1020.0, "db-primary-down")
    events = [
        {"t": 1015.0, "label": "fault injected"},
        {"t": 1016.204, "label": "recovered"},
        {"t": 1016.2, "label": "detected"},
        {"t": 1020.0, "label": "restored"},
    ]
    spec = SloSpec(Objectives(p50_ms=50, p95_ms=300, p99_ms=900, error_rate=0.01), {}, None)
    return samples, window, events, spec


def test_the_slo_picture_draws_every_objective_and_leaves_the_partial_bin_out(slo_run):
    samples, window, events, spec = slo_run
    series = timeline(samples, 1.0)
    assert series[-1].get("partial") and series[-1]["span_s"] == pytest.approx(0.29, abs=0.01)
    fig = slo_report.figure("us: chaos", series, spec, [window], events)
    lat, tput = fig.axes
    labels = [line.get_label() for line in lat.get_lines()]
    for objective in ("p50 objective 50 ms", "p95 objective 300 ms", "p99 objective 900 ms"):
        assert objective in labels, labels
    last_full = max(p["offset_s"] for p in series if not p.get("partial"))
    for ax in (lat, tput):
        for line in ax.get_lines():
            xs = list(line.get_xdata())
            if len(xs) > 2:  # a data line, not an objective or event line
                assert max(xs) <= last_full, f"{line.get_label()} draws the partial bin"
    colours = {line.get_label(): line.get_color() for ax in (lat, tput) for line in ax.get_lines()}
    assert colours["throttled (429)/s"] != colours["p95"] and len({colours[k] for k in ("p50", "p95", "p99")}) == 3
    legends_beside_the_data(fig)
    assert "partial bins at the ends left out" in lat.get_title(loc="left")


def test_a_spike_starts_at_the_fault_line_not_at_the_bin_edge_before_it(slo_run):
    # the reviewer's run: the fault at 3.2 s, 0.5 s bins from the first request: the bin [3.0, 3.5)
    # mixed 0.2 s before the fault with 0.3 s after it, and its p50 spike was drawn from 3.0 s
    samples, _, _, spec = slo_run
    fault = Window(1003.2, 1008.0, "region-loss")
    slow = [dataclasses.replace(s, ms=900.0) for s in samples if fault.start <= s.start < fault.end]
    fast = [s for s in samples if not fault.start <= s.start < fault.end]
    series = timeline(fast + slow, 0.5, align_to=fault.start)
    first = min(s.start for s in samples)
    edges = [p["t"] for p in series]
    assert any(abs(e - fault.start) < 1e-6 for e in edges), "no bin edge at the fault"
    spike = next(p for p in series if p["p50_ms"] and p["p50_ms"] > 500)
    assert spike["offset_s"] == pytest.approx(fault.start - first), "the spike starts at the fault"
    assert series[0].get("partial") and series[0]["offset_s"] < 0 < series[1]["offset_s"] + 1e-9
    fig = slo_report.figure("us: chaos", series, spec, [fault], [{"t": fault.start, "label": "fault injected"}])
    lat = fig.axes[0]
    p50 = next(line for line in lat.get_lines() if line.get_label() == "p50")
    xs, ys = list(p50.get_xdata()), list(p50.get_ydata())
    rise = next(x for x, y in zip(xs, ys, strict=True) if y > 500)
    assert rise == pytest.approx(fault.start - first), "drawn from the fault line"
    # the window's label sits inside the plot, clear of the title above it
    renderer = render(fig)
    label = next(t for t in lat.texts if t.get_text() == "region-loss")
    title = lat.title if lat.get_title() else lat._left_title
    assert label.get_window_extent(renderer).y1 <= lat.get_window_extent(renderer).y1 + 1
    assert not label.get_window_extent(renderer).overlaps(title.get_window_extent(renderer))


def test_a_percentile_is_not_drawn_from_too_few_requests():
    samples = [Sample(1000.0 + i * 0.02, "read", 10.0 + i % 7, 200, OK) for i in range(200)]  # 50 a second
    series = timeline(samples, 1.0)
    fig = slo_report.figure("thin", series, SloSpec(Objectives(p95_ms=300), {}, None), [], [])
    lat = fig.axes[0]
    p95 = next(line for line in lat.get_lines() if line.get_label() == "p95")
    assert all(v == v for v in p95.get_ydata()), "p95 of 50 requests is drawn"
    assert "p99" not in [line.get_label() for line in lat.get_lines()], "p99 of 50 requests is their maximum: not drawn"
    legend = [t.get_text() for t in lat.get_legend().get_texts()]
    assert "p95" in legend and "p99" not in legend, f"no legend entry for a series that draws nothing: {legend}"
    assert "p99 not drawn: no bin has 100 successful requests (most 50)" in lat.get_title(loc="left")


def test_the_chaos_events_read_in_time_order_without_overlapping(slo_run):
    samples, window, events, spec = slo_run
    fig = slo_report.figure("us: chaos", timeline(samples, 0.5), spec, [window], events)
    tput = fig.axes[1]
    texts = [t for t in tput.texts if " s)" in t.get_text()]
    assert [t.get_text().split(" (")[0] for t in texts] == ["fault injected", "detected", "recovered", "restored"]
    no_overlap(texts, render(fig))


OBJECTIVES = {"p50_ms": 100, "p95_ms": 500, "p99_ms": 900, "error_rate": 0.01}


def rollout_doc(t0: float, percents=(1, 50), objectives=None) -> dict:
    steps, t = [], t0
    plan = [("dr", p) for p in percents] + [("primary", p) for p in percents]
    for index, (role, percent) in enumerate(plan):
        if index == len(percents):
            t += 20  # the pause while the load moves to the primary
        measured = {"p50_ms": 12.0, "p95_ms": 40.0, "p99_ms": 70.0, "error_rate": 0.002, "availability": 0.998}
        steps.append(
            {
                "index": index,
                "role": role,
                "percent": percent,
                "started_at": t,
                "ended_at": t + 30,
                "canary": dict(measured, p95_ms=44.0 + index),
                "stable": measured,
            }
        )
        t += 30
    return {"steps": steps, "decision": "promoted", "objectives": objectives or {"p95_ms": 500}, "rollback": {}}


def test_the_rollout_picture_thins_its_points_labels_the_pause_and_keeps_the_legend_off_the_data():
    t0 = 2000.0
    rng = random.Random(5)
    samples = [
        Sample(t0 + i * 0.0047, "read", rng.uniform(5, 60), 200, OK, "acme", "v2" if i % 20 == 0 else "v1") for i in range(30_000)
    ]
    fig = rollout_report.figure(rollout_doc(t0), samples, "v2")
    ax, bx = fig.axes
    assert bx.get_ylabel().startswith("p95 ms"), "no objective set: p95 is still drawn"
    sizes = {c.get_label(): len(c.get_offsets()) for c in ax.collections if c.get_label().startswith(("stable", "canary"))}
    assert all(n <= rollout_report.MAX_POINTS for n in sizes.values()) and sum(sizes.values()) < 30_000, sizes
    assert any("of 28,500 shown" in label for label in sizes), sizes
    assert "pause: load moves region" in ax.get_legend_handles_labels()[1]
    assert [t.get_text() for t in ax.texts] == ["1: dr 1 %", "2: dr 50 %", "3: primary 1 %", "4: primary 50 %"]
    assert min(t.get_fontsize() for t in ax.texts) >= 8 and min(t.get_fontsize() for t in bx.get_xticklabels()) >= 8
    legends_beside_the_data(fig)


@pytest.mark.parametrize("percents", [(1, 5, 25, 100), (1, 2, 5, 10, 25, 50, 100)], ids=["default plan", "7 steps a region"])
def test_the_rollout_step_labels_do_not_collide(percents):
    doc = rollout_doc(2000.0, percents)
    fig = rollout_report.figure(doc, [], "v2")
    bottom = fig.axes[-1]
    renderer = render(fig)
    labels = [t for t in bottom.get_xticklabels() if t.get_text()]
    assert len(labels) == 2 * len(percents)
    assert [" ".join(t.get_text().split()) for t in labels][:2] == ["1 dr 1 %", f"2 dr {percents[1]} %"]
    no_overlap(labels, renderer)


def test_the_rollout_picture_draws_each_objective_the_gate_judges():
    fig = rollout_report.figure(rollout_doc(2000.0, (1, 25, 100), OBJECTIVES), [], "v2")
    ax, *panels = fig.axes
    assert [p.get_ylabel().split("\n")[0] for p in panels] == ["p50 ms", "p95 ms", "p99 ms", "error rate %"]
    for panel, (key, objective) in zip(panels, OBJECTIVES.items(), strict=True):
        bars = {c.get_label(): [round(b.get_height(), 3) for b in c] for c in panel.containers}
        assert set(bars) == {"stable", "canary"} and all(len(v) == 6 for v in bars.values()), (key, bars)
        lines = {line.get_label(): line.get_ydata()[0] for line in panel.get_lines()}
        shown = objective * (1 if key.endswith("_ms") else 100)
        assert lines[next(k for k in lines if k.startswith("objective"))] == pytest.approx(shown), (key, lines)
    error_panel = panels[3]
    assert {c.get_label(): round(c[0].get_height(), 3) for c in error_panel.containers} == {"stable": 0.2, "canary": 0.2}
    assert [p.get_xticklabels()[0].get_text() for p in panels[:-1]] == ["", "", ""], "step labels once, under the last panel"
    with_availability = rollout_report.figure(rollout_doc(2000.0, (1, 100), {**OBJECTIVES, "availability": 0.999}), [], "v2")
    availability = with_availability.axes[-1]
    assert availability.get_ylabel().startswith("availability %") and availability.get_ylim()[0] >= 97, (
        "99.9 % against 99.8 % must be told apart, not drawn from 0"
    )
    latency_lines = {line.get_label(): line.get_linestyle() for line in ax.get_lines() if "objective" in line.get_label()}
    assert list(latency_lines) == ["p50 objective 100 ms", "p95 objective 500 ms", "p99 objective 900 ms"]
    assert len(set(latency_lines.values())) == 3, f"each objective line tells itself apart: {latency_lines}"
    legends_beside_the_data(fig)


def test_the_drill_picture_labels_events_in_order_with_their_times_and_no_overlap():
    t0 = 3000.0
    outcomes = [[t0 + i * 0.1, "write" if i % 2 else "read", i % 13 != 0, 200, f"e{i}", "acme", "p1"] for i in range(300)]
    doc = {
        "started_at": t0,
        "drill": "region-failover",
        "stack": "us",
        "target": "sandbox",
        "verdict": "passed",
        "measured": {},
        "steps": [{"started_at": t0 + 1, "seconds": 2.0}],
        "events": [
            {"t": t0 + 5.0, "event": "fault"},
            {"t": t0 + 9.31, "event": "recovered"},
            {"t": t0 + 9.3, "event": "detected"},
            {"t": t0 + 20.0, "event": "failback"},
        ],
        "probe": {"outcomes": outcomes},
    }
    fig = drill_timeline.figure(doc)
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text().endswith(" s")]
    assert [t.get_text().split()[0] for t in texts] == ["fault", "detected", "recovered", "failback"]
    no_overlap(texts, render(fig))
    legends_beside_the_data(fig)
