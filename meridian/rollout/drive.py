"""The rollout run: the plan's steps against a Target, under load, judged, recorded.

Per region in order: start the load against the region's own door (the sandbox's `door-<role>`;
a target without one is loaded through its front door), then each step: set the weight, read it
back, record it (state file), hold while the judge looks at the fresh samples every
`LOOK_EVERY_S`, then promote (next step) or roll back (every region to 0 %) and stop.
"""

from __future__ import annotations

import getpass
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from meridian.errors import GateFailed
from meridian.rollout import judge as judgelib
from meridian.rollout.plan import ROLES, RolloutPlan, Step
from meridian.rollout.state import Decision, RolloutState, reconcile, save
from meridian.slo.evaluate import Sample
from meridian.slo.objectives import SloSpec
from meridian.slo.raw import LiveReader
from meridian.targets import ActionFailed, CanaryTraffic, Target, require

LOOK_EVERY_S = 0.2
LOAD_START_TIMEOUT_S = 60.0
CI_VARS = (
    "CI",
    "GITHUB_ACTIONS",
    "GITHUB_RUN_ID",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITHUB_ACTOR",
    "GITLAB_CI",
    "CI_PIPELINE_ID",
    "BUILDKITE_BUILD_ID",
)


class RolledBack(GateFailed):
    """The canary missed an objective (or gave too little evidence): rolled back to 0 %, exit 1."""


@dataclass
class StepRecord:
    index: int
    role: str
    percent: int
    window_s: float
    started_at: float  # epoch: the weight was set (read back) at this moment
    ended_at: float
    decision: str
    reason: str
    canary: dict
    stable: dict
    unattributed: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Outcome:
    decision: str  # promoted | rolled_back | done
    steps: list[StepRecord] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    rollback: dict = field(default_factory=dict)  # when, how long to 0 %, canary requests served
    reason: str = ""
    moves: list[dict] = field(default_factory=list)  # every canary weight this run changed: see `move`


def move(role: str, before: int, after: int, version: str, why: str, at: float | None = None) -> dict:
    """One traffic move as the report keeps it: which region's canary share went from what to what,
    carrying which version, when (epoch and UTC) and why."""
    at = time.time() if at is None else at
    return {
        "role": role,
        "from_percent": before,
        "to_percent": after,
        "version": version,
        "at": at,
        "at_utc": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
        "why": why,
    }


def fmt_weights(weights: dict[str, int]) -> str:
    """Canary weights as a person reads them: `dr 0 %, primary 100 %` (never a Python dict)."""
    return ", ".join(f"{role} {w} %" for role, w in sorted(weights.items())) or "none"


def require_canary_api(target: Target) -> None:
    require(target, CanaryTraffic, "it cannot shift canary traffic")


def actor() -> dict:
    """Who or what ran it: user, host, and the CI's own variables when there are any."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "host": platform.node(), "ci": {k: os.environ[k] for k in CI_VARS if k in os.environ}}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def rollback_all(target: Target, first: str | None = None) -> tuple[float, dict[str, int]]:
    """Every region's canary to 0 % (the region that failed first); returns (seconds, live weights read back)."""
    t0 = time.monotonic()
    live = target.canary_weights()
    order = sorted(ROLES, key=lambda r: r != first)
    for role in order:
        if live.get(role, 0) or role == first:
            target.set_canary_weight(role, 0)
    seconds = time.monotonic() - t0
    after = target.canary_weights()
    if any(after.values()):
        raise ActionFailed(f"rollback did not take: canary weights read back {after}")
    return seconds, after


@dataclass
class Runner:
    """One rollout run. `load_for(role)` starts load aimed at that region and returns
    (live samples path, stop function); the command wires it to the Locust suite."""

    target: Target
    plan: RolloutPlan
    slo: SloSpec
    state_path: Path
    load_for: Callable[[str], tuple[Path, Callable[[], None]]]
    prepare_region: Callable[[str], None] = lambda role: None  # sandbox: start the canary process
    on_event: Callable[[str, dict], None] = lambda kind, data: None
    max_hold_s: float | None = None

    def decide(self) -> tuple[Decision, RolloutState | None]:
        from meridian.rollout.state import load

        state = load(self.state_path)
        return reconcile(state, self.target.canary_weights(), self.plan.version, len(self.plan.steps_list())), state

    def run(self) -> Outcome:
        decision, state = self.decide()
        self.on_event("reconcile", {"decision": decision.kind, "reason": decision.reason})
        if decision.kind == "done":
            return Outcome("done", reason=decision.reason)
        moves: list[dict] = []
        # the canary track's share before this run is the last recorded version's (or nobody's)
        carried = state.version if state is not None else "an unrecorded version"
        before = self.target.canary_weights()
        if decision.kind == "rollback" or (decision.kind == "fresh" and any(before.values())):
            # a share this run did not set (an unknown split, or a version promoted on the canary
            # track): back to the stable image before step 1, said and recorded, so no region keeps
            # another version's canary traffic while this one is judged
            seconds, live = rollback_all(self.target)
            why = f"reconcile before step 1: {decision.reason}"
            moves += [
                move(role, before[role], live.get(role, 0), carried, why)
                for role in sorted(before)
                if before[role] != live.get(role, 0)
            ]
            if state is not None:
                state.phase, state.applied, state.reason = "rolled_back", live, f"reconciled: {decision.reason}"
                state.updated_at = now_iso()
                save(self.state_path, state)
            self.on_event("reconciled", {"seconds": seconds, "live": live, "moves": list(moves), "version": carried})
            position = 0
        else:
            position = decision.position
        if decision.kind != "resume" or state is None:
            state = RolloutState(
                self.plan.stack,
                self.plan.target,
                self.plan.version,
                self.plan.digest,
                self.plan.sha256,
                list(self.plan.steps),
                list(self.plan.region_order),
                applied=self.target.canary_weights(),
                started_at=now_iso(),
            )
        try:
            return self._steps(state, position, moves)
        except Exception as exc:
            # the run broke (load died, a weight did not read back, ...): no split is left to chance.
            # (An interrupt, Ctrl-C, is not caught: its split stays recorded for the next run.)
            try:
                _, live = rollback_all(self.target)
            except Exception as again:
                raise ActionFailed(f"{exc}; and rolling back failed too ({again}): run `meridian rollout --rollback`") from exc
            state.phase, state.applied, state.updated_at = "rolled_back", live, now_iso()
            state.reason = f"rolled back after an error: {exc}"
            save(self.state_path, state)
            raise

    def _steps(self, state: RolloutState, position: int, moves: list[dict]) -> Outcome:
        plan = self.plan.steps_list()
        outcome = Outcome("promoted", moves=moves)
        window = self.plan.window_s
        max_hold = self.max_hold_s if self.max_hold_s is not None else window * judgelib.HOLD_FACTOR
        by_region: dict[str, list[Step]] = {}
        for step in plan[position:]:
            by_region.setdefault(step.role, []).append(step)
        for role, steps in by_region.items():
            self.prepare_region(role)
            live_path, stop_load = self.load_for(role)
            try:
                reader = LiveReader(live_path)
                self._await_load(reader, live_path)
                for step in steps:
                    record = self._hold(step, state, reader, window, max_hold, outcome)
                    self.on_event("judged", {"record": record})
                    outcome.steps.append(record)
                    state.history.append(record.to_dict())
                    if record.decision == "rollback":
                        return self._roll_back(state, step, record, outcome, reader)
                    state.position = step.index + 1
                    state.updated_at = now_iso()
                    save(self.state_path, state)
                outcome.samples.extend(reader.new())
            finally:
                stop_load()
        state.phase, state.position, state.updated_at = "promoted", len(plan), now_iso()
        state.reason = "every step met the objectives"
        save(self.state_path, state)
        outcome.reason = state.reason
        return outcome

    def _await_load(self, reader: LiveReader, live_path: Path) -> None:
        deadline = time.monotonic() + LOAD_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if reader.new():
                return
            time.sleep(LOOK_EVERY_S)
        raise ActionFailed(f"the load produced no request within {LOAD_START_TIMEOUT_S:g} s ({live_path})")

    def _hold(
        self, step: Step, state: RolloutState, reader: LiveReader, window: float, max_hold: float, outcome: Outcome
    ) -> StepRecord:
        before = self.target.canary_weights().get(step.role, 0)
        self.target.set_canary_weight(step.role, step.percent)
        live = self.target.canary_weights()
        if live.get(step.role) != step.percent:
            raise ActionFailed(f"{step.label}: the weight read back is {live.get(step.role)} %, not {step.percent} %")
        started = time.time()
        state.applied, state.position, state.updated_at = live, step.index, now_iso()
        save(self.state_path, state)  # recorded before judging: an interrupted step is known
        why = f"step {step.index + 1} of the plan ({step.label})"
        outcome.moves.append(move(step.role, before, step.percent, self.plan.version, why, at=started))
        self.on_event("step", {"step": step, "live": live, "before": before})
        backlog = reader.new()  # up to now: the report keeps them all, the step judges those since its weight
        outcome.samples.extend(backlog)
        mine: list[Sample] = [s for s in backlog if s.start >= started]
        while True:
            time.sleep(LOOK_EVERY_S)
            fresh = reader.new()
            outcome.samples.extend(fresh)
            mine.extend(s for s in fresh if s.start >= started)
            elapsed = time.time() - started
            split = judgelib.split_by_version(mine, self.plan.version)
            verdict = judgelib.judge(
                split, self.slo, min_samples=self.plan.min_samples, elapsed_s=elapsed, window_s=window, max_hold_s=max_hold
            )
            self.on_event("look", {"step": step, "elapsed": elapsed, "judgement": verdict, "max_hold": max_hold})
            if verdict.decision != "hold":
                break
        return StepRecord(
            step.index,
            step.role,
            step.percent,
            window,
            started,
            time.time(),
            verdict.decision,
            verdict.reason,
            judgelib.summary(verdict.canary)
            if verdict.canary
            else {"requests": len(split.canary), "judged": verdict.canary_judged},
            judgelib.summary(verdict.stable),
            len(split.unattributed),
        )

    def _roll_back(self, state: RolloutState, step: Step, record: StepRecord, outcome: Outcome, reader: LiveReader) -> Outcome:
        decided = time.time()
        before = self.target.canary_weights()
        seconds, live = rollback_all(self.target, first=step.role)
        at_zero = time.time()
        why = f"step {step.index + 1} judged: {record.reason}"
        outcome.moves += [
            move(role, before[role], live.get(role, 0), self.plan.version, why, at_zero)
            for role in sorted(before, key=lambda r: r != step.role)
            if before[role] != live.get(role, 0)
        ]
        state.phase, state.applied, state.updated_at = "rolled_back", live, now_iso()
        state.reason = f"step {step.index + 1} ({step.label}): {record.reason}"
        save(self.state_path, state)
        time.sleep(2 * LOOK_EVERY_S)  # the requests in flight at the switch, for the count below
        outcome.samples.extend(reader.new())
        in_step = [s for s in outcome.samples if record.started_at <= s.start <= at_zero]
        served = [s for s in in_step if s.version == self.plan.version]
        outcome.decision, outcome.reason = "rolled_back", state.reason
        outcome.rollback = {
            "step": step.index + 1,
            "role": step.role,
            "percent": step.percent,
            "onset": record.started_at,
            "decided_at": decided,
            "at_zero": at_zero,
            "set_seconds": round(seconds, 4),
            "onset_to_zero_s": round(at_zero - record.started_at, 3),
            "decision_to_zero_s": round(at_zero - decided, 3),
            "window_s": record.window_s,
            "requests": len(in_step),
            "canary_requests": len(served),
            "canary_fraction": (len(served) / len(in_step)) if in_step else None,
        }
        return outcome
