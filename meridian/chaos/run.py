"""`meridian chaos SCENARIO`: load + a Chaos Toolkit experiment + the SLO judgement of both.

1. the target must be healthy (steady state) before anything is done;
2. the load suite starts (Locust subprocess, open-ended) and warms up;
3. `chaos run loadtests/chaos/<scenario>.json --rollback-strategy always` runs the experiment
   (steady-state hypothesis -> method -> hypothesis again under the fault -> rollbacks), while a
   poller records the target's health every 100 ms;
4. after a cool-down the load ends; the fault window is [method start, rollbacks end];
5. the verdict: the SLO outside the window, the chaos budget inside it (error rate and p95), time
   to detect (health checks) and to recover (kill to the first good answer after the last error)
   against the target's detection bound where the scenario asks for it, MTTR against the budget,
   and the stack healthy again at the end.

A run passes only on evidence that the fault happened and was survived. Chaos Toolkit journals
`completed` and exits 0 when the steady state fails *before* the method (nothing was injected), so
the journal's status proves nothing: the run fails unless the steady state held before the fault
(`steady_states.before.steady_state_met`), every method step ran and succeeded (the `run` list),
the fault window holds requests (no data is never read as 0 % errors), recovery was measured, and
Locust's own exit code agrees with meridian's reading of the same samples.

The experiments name no tenant: their `probe_tenant` (and `noisy_tenant`) come from the stack's
config through $MERIDIAN_PROBE_TENANT / $MERIDIAN_NOISY_TENANT (`experiment_tenants`), so the
steady state probes a tenant the stack under test serves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from meridian.errors import BadInput, GateFailed
from meridian.output import Progress
from meridian.slo import report
from meridian.slo import run as loadrun
from meridian.slo.evaluate import ERROR, OK, Check, Sample, Verdict, Window, percentile, stats
from meridian.slo.objectives import SloSpec, judge
from meridian.targets import Explains, FaultProxies, Target

if TYPE_CHECKING:
    from stackconfig import StackConfig

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "loadtests" / "chaos"
POLL_S = 0.1
EXPERIMENT_TIMEOUT_S = 600
MAX_LOAD_S = 3600


PROBE_TENANT_ENV = "MERIDIAN_PROBE_TENANT"
NOISY_TENANT_ENV = "MERIDIAN_NOISY_TENANT"


@dataclass(frozen=True)
class ExperimentTenants:
    """The tenants an experiment's configuration names (`probe_tenant`, `noisy_tenant`), taken from the
    stack's own config: the steady state probes a tenant the stack under test serves."""

    probe: str
    noisy: str | None  # None: the stack has a single tenant, nobody to be a noisy neighbour to

    def env(self) -> dict[str, str]:
        return {PROBE_TENANT_ENV: self.probe, **({NOISY_TENANT_ENV: self.noisy} if self.noisy else {})}


def experiment_tenants(cfg: StackConfig, stack: str) -> ExperimentTenants:
    """probe: the tenant with the highest read quota (its steady-state writes stay far from any quota);
    noisy: the one with the lowest (the cheapest plan to drive over its quota), never the probe itself.
    Ties go to the first in the stack config."""
    if not cfg.tenants:
        raise BadInput(f"stack {stack}: no tenants in meridian:tenants; an experiment needs one to probe")
    probe = max(cfg.tenants, key=lambda t: cfg.quota_of(t).gql_qps)
    noisy = min(cfg.tenants, key=lambda t: cfg.quota_of(t).gql_qps)
    return ExperimentTenants(probe.id, None if noisy.id == probe.id else noisy.id)


def scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load_experiment(name: str) -> tuple[Path, dict, dict]:
    """(path, experiment, its `meridian` extension) of a scenario, or BadInput naming the known ones."""
    path = SCENARIO_DIR / f"{name}.json"
    if not path.is_file():
        raise BadInput(f"unknown chaos scenario {name!r} (scenarios: {', '.join(scenarios())})")
    doc = json.loads(path.read_text())
    ext = next((e for e in doc.get("extensions", []) if e.get("name") == "meridian"), {})
    return path, doc, ext


# chaos action function -> the Target operation it performs (noisy_neighbour is load, not an operation)
ACTION_OPS = {
    "kill_region": "kill_region",
    "restore_region": "restore_region",
    "stop_database": "stop_database",
    "restore_database": "restore_database",
    "promote": "promote",
    "flip_traffic": "flip_traffic",
    "inject_fault": "inject",
    "clear_faults": "clear_faults",
}


def dry_run(name: str, target: Target, tenants: ExperimentTenants) -> list[tuple[str, str, list[str]]]:
    """(phase, activity, what it would do) for every action of the scenario, in order, doing none:
    on AWS the exact API calls (`explain()`), elsewhere the Target operation and its arguments,
    with the stack's tenants filled in as a run would."""
    _, experiment, _ = load_experiment(name)
    filled = {"${probe_tenant}": tenants.probe, "${noisy_tenant}": tenants.noisy or "(none: the stack has one tenant)"}
    out = []
    for phase, key in (("method", "method"), ("rollback", "rollbacks")):
        for a in experiment.get(key, []):
            if a["type"] != "action":
                continue
            func = a["provider"]["func"]
            args = {k: filled.get(v, v) if isinstance(v, str) else v for k, v in a["provider"].get("arguments", {}).items()}
            op = ACTION_OPS.get(func)
            if op is None:
                lines = [
                    f"{func}({', '.join(f'{k}={v!r}' for k, v in args.items())}): load through the front door, no infrastructure call"
                ]
            elif isinstance(target, Explains):
                role = args.pop("role", args.pop("to_role", None))
                lines = target.explain(op, *([role] if role else []), **args)
            else:
                lines = [f"{target.kind}.{op}({', '.join(f'{k}={v!r}' for k, v in args.items())})"]
            out.append((phase, a["name"], lines))
    return out


@dataclass(frozen=True)
class ChaosOutcome:
    verdict: Verdict
    metrics: dict
    paths: dict[str, Path]
    journal: dict


class HealthPoller(threading.Thread):
    """The target's health every POLL_S, for time-to-detect and the timeline.

    A look starts every POLL_S whether or not the previous one has answered: a call waiting on the
    dead region (its database connect, the front door's request) must not hold back the next look,
    or detection is read late by however long that call waited (under load, more than the bound
    itself). At most MAX_IN_FLIGHT looks run at once, so a target that stops answering costs a few
    threads, never one per round. Each look is stamped with when it began: the sandbox reads the
    front door's check state (HAProxy's stats socket) first thing, so a region taken out is seen
    from the round that began after it was taken out. Rounds skipped for want of a free thread are
    counted (`skipped`)."""

    MAX_IN_FLIGHT = 4

    def __init__(self, target: Target):
        super().__init__(daemon=True)
        self.target = target
        self._samples: list[tuple[float, str | None, bool]] = []  # (t, serving role, every region routable)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.MAX_IN_FLIGHT)
        self._halt = threading.Event()
        self.skipped = 0

    @property
    def samples(self) -> list[tuple[float, str | None, bool]]:
        """Every look so far, in the order they began (they may answer out of order)."""
        with self._lock:
            return sorted(self._samples)

    def _look(self) -> None:
        t = time.time()
        try:
            h = self.target.health()
        except Exception:  # the target mid-change: nothing to record this round
            return
        finally:
            self._slots.release()
        with self._lock:
            if not self._halt.is_set():
                self._samples.append((t, h.serving, all(r.routable for r in h.regions.values())))

    def run(self) -> None:
        while not self._halt.is_set():
            if self._slots.acquire(blocking=False):
                threading.Thread(target=self._look, daemon=True).start()
            else:
                self.skipped += 1
            self._halt.wait(POLL_S)

    def stop(self) -> None:
        """No look is recorded after this returns (one still in flight is dropped)."""
        with self._lock:
            self._halt.set()
        self.join(5)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def fault_window(journal: dict, label: str) -> Window | None:
    runs, rollbacks = journal.get("run") or [], journal.get("rollbacks") or []
    if not runs:
        return None
    end = max(_epoch(r["end"]) for r in (rollbacks or runs))
    return Window(_epoch(runs[0]["start"]), end, label)


def recovery_metrics(samples: list[Sample], window: Window, health: list[tuple[float, str | None, bool]]) -> dict:
    """Time to detect (the front door's health checks take a region out, or traffic moves off the
    primary), to the first error, and to recover (the first good response, by arrival, to a
    request made after the last error inside the window). A fault the health checks never see
    has no detection time."""
    inside = sorted((s for s in samples if window.overlaps(s)), key=lambda s: s.start)
    errors = [s for s in inside if s.outcome == ERROR]
    # "nothing answers" is what users see, not detection: the checks have not acted yet
    detect = next(
        (
            t - window.start
            for t, serving, routable in health
            if t >= window.start and (not routable or serving not in (None, "primary"))
        ),
        None,
    )
    metrics = {
        "injected_at": window.start,
        "restored_at": window.end,
        "mttr_s": round(window.end - window.start, 3),
        "detect_s": None if detect is None else round(detect, 3),
        "errors_in_window": len(errors),
        # an error in flight at the fault counts from the fault, not from before it
        "first_error_s": round(max(0.0, errors[0].start - window.start), 3) if errors else None,
        "recovery_s": 0.0,
    }
    if errors:
        # the earliest good answer to a request made after the last error: requests made earlier
        # may hang on the dead region for seconds while later ones are already served by the other
        last = errors[-1].start
        answered = [s.start + s.ms / 1000 for s in samples if s.start > last and s.outcome == OK]
        metrics["recovery_s"] = round(min(answered) - window.start, 3) if answered else None
    return metrics


def _progress(console, name: str, load: loadrun.LocustRun):
    status = Progress(console, f"chaos {name}: warming up ...").start()

    def show(phase: str) -> None:
        last = None
        for p in load.progress():
            last = p
        if last:
            p95 = "-" if last["window_p95_ms"] is None else f"{last['window_p95_ms']:.0f} ms"
            status.update(
                f"chaos {name}: {phase}  users {last['users']}  last s: {last['window_requests']} req, "
                f"{last['window_errors']} err, {last['window_throttled']} 429, p95 {p95}"
            )
        else:
            status.update(f"chaos {name}: {phase}")

    return status, show


def run_scenario(
    name: str,
    target: Target,
    project_dir: Path,
    slo: SloSpec,
    out_dir: Path,
    *,
    console,
    users: int = 20,
    warmup_s: float = 3.0,
    cooldown_s: float = 3.0,
    state_dir: Path | None = None,
    slo_path: Path | None = None,
) -> ChaosOutcome:
    exp_path, experiment, ext = load_experiment(name)
    if ext.get("needs_fault_proxies") and isinstance(target, FaultProxies) and not target.has_fault_proxies():
        raise BadInput(
            f"scenario {name} injects network faults: start the sandbox with fault proxies "
            f"(`meridian sandbox down --stack {target.stack} && meridian sandbox up --stack {target.stack} --fault-proxies`)"
        )
    from meridian.stackconfig import load_validated

    tenants = experiment_tenants(load_validated(project_dir, target.stack), target.stack)
    if ext.get("noisy_neighbour") and tenants.noisy is None:
        raise BadInput(f"scenario {name} needs two tenants on stack {target.stack}: one to be the noisy neighbour")
    before = target.health()
    if not (before.healthy and before.serving == "primary"):
        raise GateFailed(
            f"not in the steady state before the experiment ({before.detail}; serving {before.serving}): nothing was injected"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    load = loadrun.start(
        target, project_dir, loadrun.LoadSpec("flat", users, float(users), MAX_LOAD_S), out_dir, slo_path=slo_path
    )
    poller = HealthPoller(target)
    status, show = _progress(console, name, load)
    journal_path = out_dir / "journal.json"
    try:
        poller.start()
        deadline = time.monotonic() + warmup_s
        while time.monotonic() < deadline:
            if not load.running:
                raise loadrun.LoadFailed(f"Locust ended during warm-up:\n{loadrun.tail(out_dir / 'locust.log')}")
            show("warming up")
            time.sleep(0.25)
        env = {
            **os.environ,
            "MERIDIAN_STACK": target.stack,
            "MERIDIAN_TARGET": target.kind,
            "MERIDIAN_PROJECT_DIR": str(project_dir),
            "MERIDIAN_STATE_DIR": str(state_dir or ""),
            **tenants.env(),
        }
        with open(out_dir / "chaostoolkit.log", "wb") as log:
            chaos = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "chaostoolkit",
                    "--no-version-check",
                    "--no-log-file",
                    "run",
                    str(exp_path),
                    "--journal-path",
                    str(journal_path),
                    "--rollback-strategy",
                    "always",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=project_dir,
            )
            t0 = time.monotonic()
            while chaos.poll() is None:
                if time.monotonic() - t0 > EXPERIMENT_TIMEOUT_S:
                    chaos.kill()
                    raise GateFailed(
                        f"the experiment did not finish in {EXPERIMENT_TIMEOUT_S} s; see {out_dir / 'chaostoolkit.log'}"
                    )
                show(f"experiment running ({time.monotonic() - t0:.0f} s)")
                time.sleep(0.25)
        deadline = time.monotonic() + cooldown_s
        while time.monotonic() < deadline:
            show("cooling down")
            time.sleep(0.25)
        if not journal_path.exists():
            raise GateFailed(f"Chaos Toolkit wrote no journal; log tail:\n{loadrun.tail(out_dir / 'chaostoolkit.log')}")
        journal = json.loads(journal_path.read_text())
        window = fault_window(journal, name)
        if window is not None:  # the suite's own verdict (Locust's exit code) judges the same window
            (out_dir / "windows.json").write_text(json.dumps([dataclasses.asdict(window)]))
        locust_code = load.end_now()
        if locust_code not in (0, 1):
            raise loadrun.LoadFailed(f"Locust exited with {locust_code}; log tail:\n{loadrun.tail(out_dir / 'locust.log')}")
    finally:
        status.stop()
        poller.stop()
        if load.running:
            load.stop()
        loadrun.finish(load)
    samples = load.samples()
    after = target.health()
    return _judge(
        name, target, slo, ext, journal, window, samples, poller.samples, after, out_dir, experiment, locust_code, tenants
    )


def steady_state(journal: dict, phase: str) -> tuple[bool, str]:
    """Whether the hypothesis held `before` the method or `after` it (under the fault, before the
    rollbacks), from the journal's `steady_states` (its `status` says `completed` even when the
    hypothesis failed before the method), and which probes failed when it did not."""
    state = (journal.get("steady_states") or {}).get(phase)
    when = "before the fault" if phase == "before" else "under the fault"
    if not state:
        return False, f"the journal records no steady-state check {when}"
    if state.get("steady_state_met") is True:
        return True, f"hypothesis met {when}"
    failed = [
        f"{p['activity']['name']} ({(p.get('exception') or [p.get('status', '?')])[-1].strip()})"
        for p in state.get("probes") or []
        if not p.get("tolerance_met")
    ]
    consequence = ", so the method never ran and nothing was injected" if phase == "before" else ""
    return False, f"the steady state did not hold {when}{consequence}" + (f": {'; '.join(failed)}" if failed else "")


def method_ran(journal: dict, experiment: dict) -> tuple[bool, str]:
    """Whether every step of the experiment's method ran, in the journal's `run` list, and succeeded."""
    ran = {r["activity"]["name"]: r.get("status") for r in journal.get("run") or []}
    missing = [a["name"] for a in experiment.get("method", []) if a["name"] not in ran]
    failed = [f"{n} ({st})" for n, st in ran.items() if st != "succeeded"]
    if missing or failed:
        return False, "; ".join(
            ([f"never ran: {', '.join(missing)}"] if missing else []) + ([f"failed: {', '.join(failed)}"] if failed else [])
        )
    return True, f"{len(ran)} method steps ran and succeeded"


RESTORED_MIN_SAMPLES = 20  # successful requests before the fault and after it lifted, to compare their p50
RESTORED_SLACK_MS = 20.0  # p50 after may exceed p50 before by this (or by x2, whichever is more): noise


def _latency_restored(samples: list[Sample], window: Window) -> Check:
    """The latency the fault added is gone once it is lifted: the p50 of the successful requests made
    after the window against the p50 of those made before it. Recovery from errors alone says
    nothing of a latency fault, which makes no errors: one that never lifted would pass."""
    before = [s.ms for s in samples if s.outcome == OK and s.start + s.ms / 1000 < window.start]
    after = [s.ms for s in samples if s.outcome == OK and s.start >= window.end]
    if min(len(before), len(after)) < RESTORED_MIN_SAMPLES:
        return _condition(
            "latency_restored",
            False,
            f"not measured: {len(before)} successful requests before the fault, {len(after)} after it lifted "
            f"(needs {RESTORED_MIN_SAMPLES} each)",
        )
    p50_before, p50_after = percentile(sorted(before), 50), percentile(sorted(after), 50)
    bound = max(2 * p50_before, p50_before + RESTORED_SLACK_MS)
    return _condition(
        "latency_restored",
        p50_after <= bound,
        f"p50 {p50_after:.1f} ms after the fault lifted, {p50_before:.1f} ms before it (at most {bound:.1f} ms)",
    )


def _condition(objective: str, ok: bool, note: str) -> Check:
    return Check("chaos", objective, 1.0, 1.0 if ok else 0.0, ok, note, condition=True)


def _judge(
    name, target, slo, ext, journal, window, samples, health, after, out_dir, experiment, locust_code, tenants
) -> ChaosOutcome:
    windows = [window] if window else []
    budget = slo.chaos.budget_for(name)
    # the same judgement the Locust plugin made of the same samples and window (its exit code)
    verdict = judge(slo, samples, windows, budget)
    checks = list(verdict.checks)
    metrics: dict = {
        "journal_status": journal.get("status"),
        "deviated": journal.get("deviated"),
        "detection_bound_s": target.detection_bound_s(),
        "locust_exit_code": locust_code,
        "probe_tenant": tenants.probe,
    }
    notes = list(verdict.notes)

    held, why = steady_state(journal, "before")
    checks.append(_condition("steady_state_before_fault", held, why))
    ran, why = method_ran(journal, experiment)
    checks.append(_condition("method_ran", ran, why))
    failed_rollbacks = [
        f"{r['activity']['name']} ({r.get('exception', [''])[-1].strip() if r.get('exception') else r['status']})"
        for r in journal.get("rollbacks") or []
        if r.get("status") != "succeeded"
    ]
    if held:  # when it failed before, there was no fault to hold it under: one failure, not two
        under_fault, why = steady_state(journal, "after")
        checks.append(_condition("steady_state_under_fault", under_fault and not journal.get("deviated"), why))
    rolled_back = not failed_rollbacks
    checks.append(
        _condition(
            "rollbacks", rolled_back, "every rollback succeeded" if rolled_back else "failed: " + "; ".join(failed_rollbacks)
        )
    )
    restored = after.healthy and after.serving == "primary"
    checks.append(_condition("steady_state_restored", restored, after.detail))

    in_window = sum(1 for s in samples if window is not None and window.overlaps(s))
    recorded = window is not None and window.end > window.start and in_window > 0
    checks.append(
        _condition(
            "fault_window_recorded",
            recorded,
            "no fault window: the journal records no method step, so there is nothing to judge"
            if window is None
            else f"{in_window} requests made inside the {window.end - window.start:.2f} s fault window"
            + ("" if in_window else ": the load recorded nothing while the fault was on, which shows nothing"),
        )
    )
    # Locust judged the same samples and window through its quitting listener: a different answer
    # means the two readings of the run differ (samples lost, another SLO file), and neither is trusted
    agrees = locust_code == (0 if verdict.passed else 1)
    checks.append(
        _condition(
            "locust_exit_code_agrees",
            agrees,
            f"Locust exited {locust_code}, meridian's reading of the same samples {'passes' if verdict.passed else 'fails'}"
            + ("" if agrees else ": the two verdicts disagree"),
        )
    )
    if window is not None:
        metrics.update(recovery_metrics(samples, window, health))
        checks.append(Check("chaos", "mttr_s", slo.chaos.mttr_s, metrics["mttr_s"], metrics["mttr_s"] <= slo.chaos.mttr_s))
        seen_after = any(t >= window.end for t, _, _ in health)
        if metrics["recovery_s"] is None:
            why = "no good response to a request made after the last error in the window"
        elif not seen_after:
            why = "the health poller recorded nothing after the fault was lifted"
        else:
            why = f"recovered {metrics['recovery_s']:.2f} s after the fault, health seen after it was lifted"
        checks.append(_condition("recovery_measured", metrics["recovery_s"] is not None and seen_after, why))
        checks.append(_latency_restored(samples, window))
        if ext.get("recovery_within_detection_bound"):
            bound = target.detection_bound_s() + slo.chaos.recovery_slack_s
            r = metrics["recovery_s"]
            checks.append(
                Check(
                    "chaos",
                    "recovery_s",
                    bound,
                    r,
                    r is not None and r <= bound,
                    "no good response after the last error" if r is None else "",
                )
            )
        if ext.get("noisy_neighbour"):
            noisy = tenants.noisy
            metrics["noisy_neighbour"] = next(
                (r.get("output") for r in journal.get("run") or [] if r["activity"]["name"] == "starter-tenant-over-quota"), None
            )
            others = [s for s in samples if window.overlaps(s) and s.tenant != noisy]
            o = stats(others)
            metrics["other_tenants_in_window"] = dataclasses.asdict(o)
            for key in ("p95_ms", "p99_ms", "error_rate"):
                threshold = getattr(slo.objectives, key)
                if threshold is not None:
                    m = getattr(o, key)
                    checks.append(
                        Check("other tenants under the noisy neighbour", key, threshold, m, m is not None and m <= threshold)
                    )
    passed = verdict.passed and all(c.ok for c in checks)
    verdict = dataclasses.replace(verdict, checks=checks, passed=passed, notes=notes)
    events = []
    if window is not None:
        events.append({"t": window.start, "label": "fault injected"})
        if metrics.get("detect_s") is not None:
            events.append({"t": window.start + metrics["detect_s"], "label": "detected"})
        if metrics.get("recovery_s"):
            events.append({"t": window.start + metrics["recovery_s"], "label": "recovered"})
        events.append({"t": window.end, "label": "restored"})
    meta = {
        "stack": target.stack,
        "target": target.kind,
        "scenario": name,
        "experiment": experiment.get("title", name),
        "journal": str(out_dir / "journal.json"),
        "samples": str(out_dir / "raw.csv"),
    }
    paths = report.write(
        out_dir,
        title=f"Chaos {name}: {target.stack} on {target.kind}",
        meta={**meta, "chaos": metrics},
        spec=slo,
        verdict=verdict,
        samples=samples,
        windows=[window] if window else [],
        events=events,
        extra_md=_chaos_md(metrics, journal),
    )
    return ChaosOutcome(verdict, metrics, paths, journal)


def _chaos_md(metrics: dict, journal: dict) -> str:
    def s(v):
        return "-" if v is None else f"{v:.2f} s"

    lines = [
        "## Fault and recovery",
        "",
        "| injected -> detected (health checks) | -> first error | -> recovered (first good answer to a request made after the last error) "
        "| -> restored (MTTR) | errors in window | detection bound |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {s(metrics.get('detect_s'))} | {s(metrics.get('first_error_s'))} | {s(metrics.get('recovery_s'))} "
        f"| {s(metrics.get('mttr_s'))} | {metrics.get('errors_in_window', '-')} | {s(metrics.get('detection_bound_s'))} |",
        "",
    ]
    if metrics.get("noisy_neighbour"):
        n = metrics["noisy_neighbour"]
        lines += [
            f"Noisy neighbour `{n['tenant']}` ({n['plan']}, quota {n['quota_qps']} reads/s) offered {n['offered_qps']:g}/s: "
            f"{n['sent']} requests, {n['ok']} served, {n['throttled']} answered 429 with Retry-After "
            f"({n['retry_after_missing']} without), {n['other']} other.",
            "",
        ]
    lines += [
        "## Journal",
        "",
        f"Chaos Toolkit status **{journal.get('status')}**, deviated {journal.get('deviated')}.",
        "",
        "| phase | activity | status | seconds |",
        "|---|---|---|---:|",
    ]
    for phase in ("run", "rollbacks"):
        for r in journal.get(phase) or []:
            lines.append(
                f"| {'method' if phase == 'run' else 'rollback'} | {r['activity']['name']} | {r['status']} | {r.get('duration', 0):.2f} |"
            )
    return "\n".join(lines)
