"""What a locustfile needs to be an SLO gate: options, raw timings, the verdict as the exit code.

Imported only inside Locust processes (it imports locust, which monkey-patches with gevent).
`install()` registers event listeners:

- `init_command_line_parser`: the suite's options (`--stack`, `--target`, `--slo`, `--raw-out`,
  `--tenants-file`, `--shape`), passed on to workers by Locust itself;
- `request`: every request's start, duration, status and tenant, kept raw (Locust's own stats round);
  a worker ships its samples to the master every second and when it stops (custom messages), so
  the master of a distributed run (in-region workers on EKS) judges the exact same data;
- `init` (every process): the user classes' request timeout from the objectives
  (`objectives.client_timeout_s`): a hung request ends as a failed sample, not a silent one;
- `quitting` (standalone or master): the verdict from `meridian.slo.objectives.judge` sets
  `environment.process_exit_code`: 0 met, 1 breached or not enough evidence; an exit code set
  earlier stands (2: the load could not start, e.g. no tenants). With `--raw-out DIR` the samples
  (`raw.csv`), a per-second progress log (`progress.jsonl`) and the verdict (`verdict.json`) are
  written there for `meridian slo` to report on.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
from pathlib import Path

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from meridian.errors import MeridianError
from meridian.slo.evaluate import ERROR, OK, THROTTLED, Sample, Window
from meridian.slo.raw import RAW_FIELDS, outcome_of, write_raw

log = logging.getLogger("meridian.slo")
RAW_MESSAGE = "meridian_raw_samples"
FLUSH_S = 1.0
LIVE_FLUSH_S = 0.2


class Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple] = []  # everything this process judges (master/standalone)
        self.outbox: list[tuple] = []  # worker: not yet shipped to the master
        self.environment = None
        self.is_worker = False
        self.spec = None  # the objectives, loaded at init (master or standalone)

    # --- events -------------------------------------------------------------------------------

    def on_request(
        self,
        request_type,
        name,
        response_time,
        response_length,
        response=None,
        context=None,
        exception=None,
        start_time=None,
        **_kw,
    ) -> None:
        status = getattr(response, "status_code", 0) or 0
        row = (
            round(start_time if start_time is not None else time.time() - response_time / 1000, 6),
            f"{request_type} {name}",
            round(float(response_time), 3),
            int(status),
            outcome_of(int(status), exception),
            (context or {}).get("tenant", ""),
            _version_of(response),
        )
        (self.outbox if self.is_worker else self.rows).append(row)

    def on_init(self, environment, **_kw) -> None:
        self.environment = environment
        runner = environment.runner
        self.is_worker = isinstance(runner, WorkerRunner)
        if isinstance(runner, MasterRunner):
            runner.register_message(RAW_MESSAGE, lambda msg, **kw: self.rows.extend(tuple(r) for r in msg.data))
        # a bad SLO file or stack is bad input: refuse at start (exit 2), not after the run
        try:
            self.spec = _load_spec(environment.parsed_options)
        except MeridianError as exc:
            sys.stderr.write(f"error: {exc}\n")
            sys.exit(exc.exit_code)
        _set_client_timeout(environment, self.spec)
        if self.is_worker:
            gevent.spawn(self._ship_forever)
            return
        if runner is not None and environment.parsed_options and environment.parsed_options.raw_out:
            gevent.spawn(self._progress_forever, Path(environment.parsed_options.raw_out))
            gevent.spawn(self._live_forever, Path(environment.parsed_options.raw_out))

    def on_test_stop(self, environment, **_kw) -> None:
        if self.is_worker:
            self._ship()

    def on_quitting(self, environment, **_kw) -> None:
        if self.is_worker or environment.process_exit_code is not None:
            return  # a worker has no verdict; a code set before (2: the load could not start) stands
        from meridian.slo.objectives import judge

        opts = environment.parsed_options
        spec = self.spec
        windows = []
        out = Path(opts.raw_out) if opts and opts.raw_out else None
        if out is not None and (out / "windows.json").exists():
            windows = [Window(**w) for w in json.loads((out / "windows.json").read_text())]
        samples = [Sample(*r) for r in self.rows]
        budget = spec.chaos.budget_for(windows[0].label) if windows else None
        verdict = judge(spec, samples, windows, budget)
        environment.process_exit_code = 0 if verdict.passed else 1
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            write_raw(out / "raw.csv", self.rows)
            (out / "verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2, default=str))
        outcome = "met" if verdict.passed else ("NOT PROVEN (not enough evidence)" if verdict.not_enough_evidence else "BREACHED")
        lines = [f"SLO {outcome}: {len(samples)} requests"]
        for group, checks in verdict.unmet():
            lines += [f"  {len(checks)} objective(s) {group}:"] + [f"    {c.message}" for c in checks]
        lines += [f"  note: {n}" for n in verdict.notes]
        print("\n".join(lines), flush=True)

    # --- shipping and progress ----------------------------------------------------------------

    def _ship(self) -> None:
        if not self.outbox or self.environment is None:
            return
        batch, self.outbox = self.outbox, []
        self.environment.runner.send_message(RAW_MESSAGE, [list(r) for r in batch])

    def _ship_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_S)
            try:
                self._ship()
            except Exception as exc:  # the master went away: the run is over
                log.warning("could not ship samples to the master: %s", exc)

    def _live_forever(self, out: Path) -> None:
        """Every sample as it arrives, in `live.csv` (raw.csv's columns): what a rollout judges a
        canary on while the load is still running (fast enough that the flush is not the delay)."""
        out.mkdir(parents=True, exist_ok=True)
        live = out / "live.csv"
        live.write_text(",".join(RAW_FIELDS) + "\n")
        seen = 0
        while True:
            gevent.sleep(LIVE_FLUSH_S)
            rows = self.rows
            new, seen = rows[seen:], len(rows)
            if new:
                with live.open("a", newline="") as f:
                    csv.writer(f).writerows(new)

    def _progress_forever(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "progress.jsonl"
        seen = 0
        while True:
            gevent.sleep(FLUSH_S)
            rows = self.rows
            new = rows[seen:]
            seen = len(rows)
            ok = sorted(r[2] for r in new if r[4] == OK)
            line = {
                "t": round(time.time(), 3),
                "requests": seen,
                "users": self.environment.runner.user_count,
                "window_requests": len(new),
                "window_errors": sum(r[4] == ERROR for r in new),
                "window_throttled": sum(r[4] == THROTTLED for r in new),
                "window_p95_ms": ok[max(0, -(-len(ok) * 95 // 100) - 1)] if ok else None,
            }
            with path.open("a") as f:
                f.write(json.dumps(line) + "\n")


def _set_client_timeout(environment, spec) -> None:
    """Every user class's request timeout (FastHttpUser's connection and network timeouts) from the
    objectives, instead of Locust's fixed 60 s; and how long a request cut off by the stop must have
    waited to be recorded as failed (`hang_after_s`, for user classes that record them)."""
    from meridian.slo.objectives import client_timeout_s, hang_after_s

    timeout = client_timeout_s(spec)
    for cls in environment.user_classes or ():
        if hasattr(cls, "network_timeout"):
            cls.network_timeout = cls.connection_timeout = timeout
        if hasattr(cls, "hang_after_s"):
            cls.hang_after_s = hang_after_s(spec)


def _version_of(response) -> str:
    """The version that answered (the service's X-Meridian-Version), "" when none did."""
    headers = getattr(response, "headers", None)
    try:
        return (headers.get("X-Meridian-Version") or "") if headers is not None else ""
    except Exception:  # a transport error's stand-in response may have no usable headers
        return ""


def _load_spec(opts):
    from meridian.project import find_project_dir
    from meridian.slo.objectives import load

    slo = Path(opts.slo) if opts and opts.slo else None
    project = find_project_dir(Path(opts.project_dir) if opts and opts.project_dir else Path(__file__).resolve().parents[2])
    return load(project, opts.stack if opts else "us", slo)


def add_arguments(parser) -> None:
    g = parser.add_argument_group("meridian", "the SLO gate (loadtests/slo.yaml + the stack config)")
    g.add_argument("--stack", default=os.environ.get("MERIDIAN_STACK", "us"), help="stack whose SLOs and tenants to use")
    g.add_argument("--target", default="sandbox", choices=("sandbox", "aws"), help="where the tenants' keys come from")
    g.add_argument("--project-dir", default="", help="the Pulumi project (default: the one holding this locustfile)")
    g.add_argument("--state-dir", default="", help="sandbox state dir (default: <project>/.meridian/sandbox)")
    g.add_argument("--slo", default="", help="SLO file (default: loadtests/slo.yaml)")
    g.add_argument("--raw-out", default="", help="write raw.csv, progress.jsonl and verdict.json here")
    g.add_argument("--tenants-file", default="", help="tenants JSON written by `meridian slo` (else read from the target)")
    g.add_argument(
        "--shape",
        default="flat",
        choices=("flat", "steady", "spike", "soak"),
        help="load shape: flat = -u/-r for -t (plain Locust); steady/spike/soak = stage tables scaled by -u and -t",
    )


def install() -> Recorder:
    recorder = Recorder()
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(recorder.on_init)
    events.request.add_listener(recorder.on_request)
    events.test_stop.add_listener(recorder.on_test_stop)
    events.quitting.add_listener(recorder.on_quitting)
    return recorder
