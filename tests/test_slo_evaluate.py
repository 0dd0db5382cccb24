"""The SLO evaluator and objectives on synthetic timings: exact percentiles, empty runs, all
errors, one endpoint breaching, fault windows, and the one-source-of-truth rule for objectives."""

from __future__ import annotations

import random

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from meridian.errors import BadInput
from meridian.slo import objectives as objlib
from meridian.slo.evaluate import ERROR, OK, THROTTLED, Objectives, Sample, Window, evaluate, percentile, stats, timeline
from meridian.slo.raw import read_raw, write_raw
from stackconfig import SloSettings, load_stack
from tests.helpers import ROOT, STACKS

READ, WRITE = "GET /v1/tenants/[tenant]/events", "POST /v1/tenants/[tenant]/events"


def sample(ms: float, *, t: float = 1000.0, name: str = READ, outcome: str = OK, tenant: str = "acme") -> Sample:
    return Sample(t, name, ms, {OK: 200, ERROR: 503, THROTTLED: 429}[outcome], outcome, tenant)


def test_percentiles_are_exact_nearest_rank():
    ms = [float(i) for i in range(1, 101)]  # 1..100 ms
    random.Random(7).shuffle(ms)
    st_ = stats([sample(m, t=1000 + i / 10) for i, m in enumerate(ms)])
    assert (st_.p50_ms, st_.p95_ms, st_.p99_ms, st_.max_ms) == (50.0, 95.0, 99.0, 100.0)
    # Locust would report 490 for 494.2 ms (10 ms steps): the exact value decides a 494 ms objective
    near = [sample(10.0)] * 94 + [sample(494.2)] * 6
    assert stats(near).p95_ms == 494.2
    assert not evaluate(near, Objectives(p95_ms=494.0)).passed
    assert evaluate(near, Objectives(p95_ms=494.2)).passed


@given(st.lists(st.floats(0.01, 1e5, allow_nan=False), min_size=1, max_size=300), st.floats(0.1, 100))
def test_percentile_is_the_smallest_value_covering_p_percent(values, p):
    s = sorted(values)
    v = percentile(s, p)
    assert sum(x <= v for x in s) >= p / 100 * len(s) - 1e-9
    below = [x for x in s if x < v]
    assert len(below) < p / 100 * len(s)


def test_no_requests_fails_with_a_reason():
    v = evaluate([], Objectives(p95_ms=500, error_rate=0.01, availability=0.999))
    assert not v.passed
    assert all(c.measured is None and not c.ok for c in v.checks)
    assert "no requests" in v.checks[0].message and "no requests were recorded" in v.notes[0]


def test_all_errors():
    samples = [sample(5.0, t=1000 + i * 0.1, outcome=ERROR) for i in range(50)]
    v = evaluate(samples, Objectives(p95_ms=500, error_rate=0.01, availability=0.999))
    by = {c.objective: c for c in v.checks}
    assert by["error_rate"].measured == 1.0 and not by["error_rate"].ok
    assert by["availability"].measured == 0.0 and not by["availability"].ok
    assert by["p95_ms"].measured is None and "no successful request" in by["p95_ms"].message
    assert "error_rate 100 % is over the objective 1 % by 99 %" in by["error_rate"].message


def test_one_endpoint_breaching_is_named_with_its_margin():
    samples = [sample(20.0, t=1000 + i * 0.01) for i in range(200)]
    samples += [sample(30.0, t=1000 + i * 0.01, name=WRITE) for i in range(180)]
    samples += [sample(700.0, t=1002 + i * 0.01, name=WRITE) for i in range(20)]
    v = evaluate(samples, Objectives(p95_ms=800), {WRITE: Objectives(p95_ms=450), READ: Objectives(p95_ms=400)})
    assert not v.passed
    [failed] = v.failures
    assert failed.scope == WRITE and failed.measured == 700.0
    assert failed.message == f"p95_ms of {WRITE} 700.0 ms is over the objective 450.0 ms by 250.0 ms, 56%"
    assert v.endpoints[READ].p95_ms == 20.0


def test_throttled_requests_are_counted_but_neither_errors_nor_latency():
    samples = [sample(10.0, t=1000 + i * 0.01) for i in range(90)]
    samples += [sample(1.0, t=1000 + i * 0.01, outcome=THROTTLED, tenant="initech") for i in range(900)]
    v = evaluate(samples, Objectives(p50_ms=10, error_rate=0.0))
    assert v.passed
    assert v.overall.throttled == 900 and v.overall.errors == 0 and v.overall.p50_ms == 10.0
    assert v.tenants["initech"].throttled == 900 and v.tenants["acme"].throttled == 0


def test_availability_is_the_share_of_seconds_that_served():
    good = [sample(5.0, t=1000 + s + k / 10) for s in range(98) for k in range(10)]
    # second 98: 4 of 10 failed (degraded, still available); second 99: 6 of 10 failed (down)
    degraded = [sample(5.0, t=1098 + k / 10, outcome=ERROR if k < 4 else OK) for k in range(10)]
    down = [sample(5.0, t=1099 + k / 10, outcome=ERROR if k < 6 else OK) for k in range(10)]
    v = evaluate(good + degraded + down, Objectives(availability=0.99))
    assert v.overall.availability == pytest.approx(0.99)
    assert v.passed
    assert not evaluate(good + degraded + down, Objectives(availability=0.995)).passed


def test_fault_windows_move_requests_to_the_chaos_budget():
    before = [sample(5.0, t=1000 + i * 0.1) for i in range(100)]
    during = [sample(5.0, t=1010 + i * 0.1, outcome=ERROR if i % 4 == 0 else OK) for i in range(20)]
    after = [sample(5.0, t=1012 + i * 0.1) for i in range(100)]
    window = [Window(1010.0, 1012.0, "region-loss")]
    v = evaluate(before + during + after, Objectives(error_rate=0.01), windows=window, chaos_error_budget=0.3)
    assert v.passed and v.overall.errors == 0 and v.chaos.errors == 5 and v.chaos.requests == 20
    strict = evaluate(before + during + after, Objectives(error_rate=0.01), windows=window, chaos_error_budget=0.2)
    assert [c.scope for c in strict.failures] == ["chaos"]
    # a request in flight when the fault hit belongs to the window, though it started before it
    hit = sample(400.0, t=1009.8, outcome=ERROR)
    v2 = evaluate(before + [hit] + during + after, Objectives(error_rate=0.01), windows=window, chaos_error_budget=0.3)
    assert v2.overall.errors == 0 and v2.chaos.errors == 6
    # without the window the same errors breach the SLO itself: accounted, not hidden
    assert not evaluate(before + during + after, Objectives(error_rate=0.01)).passed


def test_an_empty_fault_window_is_no_evidence_and_latency_inside_one_is_judged():
    before = [sample(5.0, t=1000 + i * 0.1) for i in range(100)]
    after = [sample(5.0, t=1012 + i * 0.1) for i in range(100)]
    window = [Window(1010.0, 1012.0, "db-latency")]
    empty = evaluate(before + after, Objectives(error_rate=0.01), windows=window, chaos_error_budget=0.1)
    assert not empty.passed  # no request inside the window is not 0 % errors
    assert [(c.objective, c.measured) for c in empty.failures] == [("error_rate", None)]
    slow = [sample(1413.0, t=1010 + i * 0.1) for i in range(20)]  # all answered, slowly
    budget = {"windows": window, "chaos_error_budget": 0.1, "chaos_p95_ms": 1000.0}
    judged = evaluate(before + slow + after, Objectives(error_rate=0.01), **budget)
    assert [(c.scope, c.objective) for c in judged.failures] == [("chaos", "p95_ms")]
    assert evaluate(before + slow + after, Objectives(error_rate=0.01), **{**budget, "chaos_p95_ms": 1500.0}).passed


def test_timeline_buckets_per_second():
    samples = [sample(float(k + 1), t=1000.2 + k * 0.01) for k in range(100)] + [sample(7.0, t=1002.5, outcome=ERROR)]
    series = timeline(samples)
    assert [p["rps"] for p in series] == [100, 0, 1]
    assert series[0]["p95_ms"] == 95.0 and series[1]["p95_ms"] is None and series[2]["errors_per_s"] == 1


def test_raw_samples_round_trip(tmp_path):
    rows = [(1000.5, READ, 12.345, 200, OK, "acme"), (1001.0, WRITE, 3.0, 429, THROTTLED, "initech")]
    write_raw(tmp_path / "raw.csv", rows)
    assert read_raw(tmp_path / "raw.csv") == [Sample(*r) for r in rows]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a raw samples file"):
        read_raw(tmp_path / "bad.csv")


# --- objectives: stack config + slo.yaml ---------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_slo_file_takes_stack_wide_objectives_from_the_stack_config(stack):
    """One source of truth: loadtests/slo.yaml never repeats what the stack config holds."""
    doc = yaml.safe_load(objlib.DEFAULT_SLO_FILE.read_text())
    assert not set(doc.get("objectives") or {}) & set(objlib.STACK_KEYS)
    assert set(objlib.STACK_KEYS) == set(SloSettings.model_fields)  # a new stack SLO key needs wiring here
    cfg = load_stack(ROOT, stack)
    spec = objlib.load(ROOT, stack)
    for key in objlib.STACK_KEYS:
        assert getattr(spec.objectives, key) == getattr(cfg.slo, key)
        assert "Pulumi" in spec.sources[key]
    assert spec.objectives.p50_ms == doc["objectives"]["p50_ms"]


def test_a_slo_file_may_override_and_says_so(tmp_path):
    path = tmp_path / "strict.yaml"
    path.write_text("version: 1\nobjectives: {p95_ms: 1}\nendpoints: {'GET /x': {error_rate: 0}}\n")
    spec = objlib.load(ROOT, "us", path)
    assert spec.objectives.p95_ms == 1 and spec.sources["p95_ms"] == str(path)
    assert spec.endpoints["GET /x"] == Objectives(error_rate=0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("version: 2\n", "version"),
        ("objectives: {p95_ms: -1}\n", "objectives.p95_ms"),
        ("objectives: {error_rate: 2}\n", "objectives.error_rate"),
        ("objectives: {p96_ms: 3}\n", "objectives.p96_ms"),
        ("chaos: {error_rate: x}\n", "chaos.error_rate"),
        ("[unclosed\n", "not readable YAML"),
    ],
)
def test_bad_slo_files_are_refused_with_the_key(tmp_path, text, message):
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    with pytest.raises(BadInput, match=message) as refused:
        objlib.load(ROOT, "us", path)
    assert "<unicode string>" not in str(refused.value), "a YAML error names the file"


def test_missing_slo_file(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        objlib.load(ROOT, "us", tmp_path / "nope.yaml")


def test_threshold_sources_are_project_relative_files_and_keys(tmp_path):
    """report.md's 'threshold from' column: a file a reader can open anywhere, and the exact key."""
    spec = objlib.load(ROOT, "us")
    assert spec.path == "loadtests/slo.yaml"
    stack_keys = {v for k, v in spec.sources.items() if v != spec.path}
    assert stack_keys == {"Pulumi.yaml: meridian:slo"}, stack_keys  # the project default the us stack keeps
    outside = tmp_path / "slo.yaml"
    outside.write_text("objectives: {p95_ms: 400}\n")
    assert objlib.load(ROOT, "us", outside).path == str(outside), "a file outside the project keeps its full path"


def _counted_groups(text: str, heading: str, item: str) -> dict[str, list[str]]:
    """`<heading>N objective(s) <outcome>:` lines and the `<item>` lines under each, as printed."""
    groups: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(heading) and " objective(s) " in line and line.endswith(":"):
            count, _, outcome = line.removeprefix(heading).removesuffix(":").partition(" objective(s) ")
            current = groups.setdefault(outcome, [count])
        elif current is not None and line.startswith(item):
            current.append(line.removeprefix(item))
        else:
            current = None
    return groups


def test_the_not_enough_evidence_count_is_the_list_printed_under_it():
    from meridian.commands.slo import breach_message
    from meridian.slo.evaluate import Evidence
    from meridian.slo.objectives import SloSpec
    from meridian.slo.report import markdown

    samples = [sample(10.0, t=1000 + i * 0.1) for i in range(60)]  # 6 s: too short for the tail objectives
    objectives = Objectives(p95_ms=500, p99_ms=900, error_rate=0.001, availability=0.999)
    v = evaluate(samples, objectives, evidence=Evidence(min_duration_s=30, watch=frozenset({"availability"})))
    table = {}
    for c in v.checks:
        table.setdefault(c.outcome, []).append(c.message)
    assert set(table) == {"ok", "not enough evidence", "not proven"}, table
    message = breach_message(v, {"md": "report.md"})
    assert message.startswith("not enough evidence: the SLO is not proven:")
    report = markdown("t", {}, SloSpec(objectives, {}, None), v)
    for text, heading, item in ((message, "  ", "    "), (report, "- ", "  - ")):
        groups = _counted_groups(text, heading, item)
        assert set(groups) == {"not enough evidence", "not proven"}, text
        for outcome, (count, *listed) in groups.items():
            assert int(count) == len(listed) == len(table[outcome]) and listed == table[outcome], (outcome, text)
