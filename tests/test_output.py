"""Report output: consoles for terminals and pipes, Markdown/JSON renderings, sandbox status text."""

from __future__ import annotations

import io
import json

import pytest

from meridian.commands.sandbox import _print_status, status_markdown
from meridian.costmodel import estimate
from meridian.output import PIPE_WIDTH, report_console
from meridian.render import cost_markdown, cost_rows, markdown_table

from .helpers import ROOT


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def console_on(monkeypatch, stream, **env):
    monkeypatch.setattr("sys.stdout", stream)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return report_console()


def test_terminal_gets_colour_unless_no_color(monkeypatch):
    out = FakeTerminal()
    console_on(monkeypatch, out).print("[green]ok[/]")
    assert "\x1b[32m" in out.getvalue()
    out = FakeTerminal()
    console_on(monkeypatch, out, NO_COLOR="1").print("[green]ok[/]")
    assert "\x1b[" not in out.getvalue() and "ok" in out.getvalue()


def test_pipe_gets_plain_uncut_text(monkeypatch):
    out = io.StringIO()
    console = console_on(monkeypatch, out, COLUMNS="80")
    assert console.width == PIPE_WIDTH
    name = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    console.print(f"[green]{name}[/] " + "x" * 200)
    text = out.getvalue()
    assert "\x1b[" not in text and name in text and len(text.splitlines()) == 1


STATUS = {
    "state": "up",
    "healthy": False,
    "endpoint": "http://127.0.0.1:18080",
    "parts": {
        "db-dr": {"pid": 11, "port": 15433, "running": True, "healthy": True, "role": "replica"},
        "svc-dr": {
            "pid": 12,
            "port": 18082,
            "running": True,
            "healthy": False,
            "http": 503,
            "db": "unreachable",
            "db_role": None,
        },
    },
    "replication": {"state": "streaming", "lag_bytes": 0, "since_replay_s": 12.5},
}


def test_sandbox_status_never_prints_none(monkeypatch):
    out = io.StringIO()
    _print_status(console_on(monkeypatch, out), "us", STATUS)
    text = out.getvalue()
    assert "None" not in text
    assert "db unreachable" in text and "0 bytes behind, last replay 12.5 s ago (caught up)" in text
    md = status_markdown("us", STATUS)
    assert "None" not in md and "| svc-dr | FAIL | 12 | 18082 | db unreachable |" in md


def test_status_shows_bytes_behind_and_seconds_since_the_last_replay():
    st = {**STATUS, "replication": {"state": "streaming", "lag_bytes": 393584, "since_replay_s": 6.4}}
    md = status_markdown("us", st)
    assert "Replication: streaming, 393584 bytes behind, last replay 6.4 s ago (stalled or catching up)" in md
    assert "replay lag" not in md, "replay_lag is stale while a stream is stalled: status no longer shows it"


def test_markdown_table_escapes_cells_and_aligns_numbers():
    table = markdown_table(["rule", "n"], [["a|b", "3"], ["line\nbreak", "12"]])
    assert table.splitlines()[1] == "|---|---:|"
    assert "| a\\|b | 3 |" in table and "| line<br>break | 12 |" in table


@pytest.fixture(scope="module")
def us_cost(previews):
    from stackconfig import load_stack

    return estimate(previews["us"].plan["resources"], load_stack(ROOT, "us"), "us")


def test_cost_markdown_is_the_plans_estimate(previews, us_cost):
    """Rendered from the plan the preview wrote: the same totals as the plan's own cost section."""
    md = cost_markdown(us_cost)
    assert f"Total ${previews['us'].plan['cost']['monthly_total_usd']:,.2f}/month" in md
    for tenant in previews["us"].plan["outputs"]["tenants"]:
        assert f"| {tenant} | " in md
    rows = cost_rows(us_cost)["by tenant (direct + allocated share of the platform) vs budget"][1]
    totals = [float(r[4].replace(",", "")) for r in rows]
    assert totals == sorted(totals, reverse=True)
    assert json.dumps(us_cost.to_json()) == json.dumps(previews["us"].plan["cost"])


def test_violations_markdown_keeps_messages_whole_and_orders_by_level():
    from types import SimpleNamespace

    from meridian.render import violations_markdown

    def v(level, policy, urn, message):
        return SimpleNamespace(level=level, policy=policy, urn=urn, message=message)

    report = SimpleNamespace(
        pack=SimpleNamespace(name="meridian", policies=[1, 2]),
        config_file="policies/config/us.json",
        violations=[
            v("advisory", "b-rule", "urn:b", "Tenant ids must match ^[a-z][a-z0-9-]{1,30}$"),
            v("mandatory", "z-rule", None, "a | b"),
        ],
    )
    lines = violations_markdown(report).splitlines()
    assert lines[2] == "| mandatory | z-rule | (the stack) | a \\| b |"
    assert lines[3] == "| advisory | b-rule | urn:b | Tenant ids must match ^[a-z][a-z0-9-]{1,30}$ |"
    report.violations = []
    assert violations_markdown(report).startswith("Policy pack `meridian`: no violations (2 rules")


def test_sandbox_up_and_down_refuse_markdown_before_touching_anything(tmp_path):
    from meridian.commands.sandbox import SandboxRequest, run_down, run_up
    from meridian.errors import BadInput
    from meridian.output import Format

    req = SandboxRequest(stack="us", project_dir=ROOT, state_dir=tmp_path, format=Format.markdown)
    for run, command in ((run_up, "up"), (run_down, "down")):
        with pytest.raises(BadInput, match=f"sandbox {command}` prints text or json, not markdown"):
            run(req)
    assert not any(tmp_path.iterdir())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def plain_console():
    from rich.console import Console

    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=PIPE_WIDTH), out


def test_progress_reaches_a_ci_log_every_few_seconds_and_always_its_last_line(monkeypatch):
    from meridian import output

    clock = Clock()
    monkeypatch.setattr(output.time, "monotonic", clock)
    console, out = plain_console()
    progress = output.Progress(console, "load: starting", every_s=5).start()
    for second in range(1, 13):
        clock.now += 1
        progress.update(f"load: {second}/12 s")
    progress.stop()
    lines = out.getvalue().splitlines()
    assert lines == ["load: starting", "load: 5/12 s", "load: 10/12 s", "load: 12/12 s"], lines


def test_progress_in_a_terminal_is_the_live_line_only():
    from rich.console import Console

    from meridian.output import Progress

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with Progress(console, "working") as progress:
        progress.update("still working")
    shown = out.getvalue()
    assert "⠋" in shown and "\x1b[2K" in shown, "a spinner line, erased when done: not a log of plain lines"


def test_the_load_clock_never_runs_past_the_duration(monkeypatch):
    from meridian.slo import gate, run

    clock = Clock()
    monkeypatch.setattr(gate.time, "monotonic", clock)
    console, out = plain_console()
    show = gate.progress_printer(console, run.LoadSpec(users=5, spawn_rate=5, duration_s=8))
    sample = {"users": 5, "requests": 10, "window_requests": 2, "window_errors": 0, "window_throttled": 0, "window_p95_ms": 12.0}
    for _ in range(3):
        clock.now += 5
        show(sample)
    show(None)
    text = out.getvalue()
    assert "5/8 s" in text and "8 s done: the last requests in flight" in text and "10/8" not in text and "15/8" not in text


def test_the_finishing_line_is_said_once_though_the_counts_still_move(monkeypatch):
    from meridian.slo import gate, run

    clock = Clock()
    monkeypatch.setattr(gate.time, "monotonic", clock)
    console, out = plain_console()
    show = gate.progress_printer(console, run.LoadSpec(users=5, spawn_rate=5, duration_s=8))
    for n, dt in ((10, 9), (60, 1), (62, 1)):  # past the duration, the requests in flight still come in
        clock.now += dt
        show({"users": 5, "requests": n, "window_requests": 2, "window_errors": 0, "window_throttled": 0, "window_p95_ms": 9.0})
    show(None)
    assert sum("8 s done" in line for line in out.getvalue().splitlines()) == 1, out.getvalue()


def test_progress_started_again_on_the_same_line_says_it_once():
    from meridian.output import Progress

    console, out = plain_console()
    progress = Progress(console, every_s=5)
    progress.update("step 1 set and read back; holding")
    progress.start()  # a rollout step starts the line it just set
    progress.stop()
    assert out.getvalue().splitlines() == ["step 1 set and read back; holding"]
