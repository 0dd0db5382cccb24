"""Load shapes as stage tables, scaled by the run's own `-u` (users) and `-t` (run time).

Each stage: (end of the stage as a fraction of the run time, users as a multiple of -u, spawn rate
as a multiple of -r). `flat` is plain Locust: -u users at -r per second until -t, so
`locust -f loadtests/locustfile.py --headless -u 20 -r 5 -t 30s` behaves as users expect.
"""

from __future__ import annotations

from locust import LoadTestShape

STAGES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "flat": ((1.0, 1.0, 1.0),),
    # ramp up over the first 10 %, hold
    "steady": ((0.1, 1.0, 1.0), (1.0, 1.0, 1.0)),
    # a third at half load, a sudden 3x spike for 20 %, back to half: does the p99 recover?
    "spike": ((0.35, 0.5, 1.0), (0.55, 3.0, 10.0), (1.0, 0.5, 10.0)),
    # slow ramp, long hold at 80 %: leaks and creeping latency show over time
    "soak": ((0.05, 0.8, 0.5), (1.0, 0.8, 1.0)),
}
DEFAULT_RUN_TIME_S = {"flat": None, "steady": 60, "spike": 90, "soak": 1800}


def stage_at(stages, elapsed_s: float, run_time_s: float, users: int, spawn_rate: float):
    """(users, spawn rate) at `elapsed_s`, or None once the run time is over."""
    if elapsed_s >= run_time_s:
        return None
    for end, user_mult, rate_mult in stages:
        if elapsed_s < end * run_time_s:
            return max(1, round(users * user_mult)), max(0.1, spawn_rate * rate_mult)
    return None


class StageShape(LoadTestShape):
    """The stage table named by `--shape` (reads -u, -r and -t: `use_common_options`)."""

    use_common_options = True

    def tick(self):
        opts = self.runner.environment.parsed_options
        shape = getattr(opts, "shape", "flat") or "flat"
        users = opts.num_users or 1
        rate = opts.spawn_rate or 1
        run_time = opts.run_time or DEFAULT_RUN_TIME_S[shape]
        if run_time is None:  # flat without -t: run until stopped, as plain Locust does
            return users, rate
        return stage_at(STAGES[shape], self.get_run_time(), run_time, users, rate)
