"""The rollout's state on disk and the decisions taken from it on the next run.

`.meridian/rollout/<stack>.json` is rewritten atomically (temp file + fsync + rename) after every
weight change, *before* the step is judged: a rollout killed at any point leaves a record of the
split it last set. The next run compares that record with the weights read back from the live
system (`Target.canary_weights()`) and decides (`reconcile`, a pure function):

- no record, every canary at 0 %              -> start fresh;
- no record but a canary has traffic         -> roll back (nobody knows who set that split);
- a running rollout of the same version whose
  recorded split is the live one              -> resume at the interrupted step (held again in full);
- a running rollout whose split differs from
  the live one, or of another version         -> roll back to 0 % first (an unknown split is never
                                                 continued), then start afresh;
- promoted, same version, live at 100 %       -> nothing to do;
- finished otherwise                          -> start fresh.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from meridian.errors import BadInput

Phase = Literal["running", "promoted", "rolled_back"]
STATE_DIR = Path(".meridian") / "rollout"


@dataclass
class RolloutState:
    stack: str
    target: str
    version: str
    digest: str
    plan_sha256: str
    steps: list[int]
    region_order: list[str]
    phase: Phase = "running"
    position: int = 0  # the step in progress (index into the plan); len(plan) once promoted
    applied: dict[str, int] = field(default_factory=dict)  # the split last set: role -> canary %
    history: list[dict] = field(default_factory=list)  # one record per judged step
    reason: str = ""
    started_at: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RolloutState:
        return cls(**d)


def state_path(project_dir: Path, stack: str, sandbox_state_dir: Path | None = None) -> Path:
    """`<project>/.meridian/rollout/<stack>.json`; a sandbox with its own state dir keeps the record
    there (`<state dir>/rollout/<stack>.json`): it describes that sandbox's split."""
    if sandbox_state_dir is not None:
        return sandbox_state_dir / "rollout" / f"{stack}.json"
    return project_dir / STATE_DIR / f"{stack}.json"


def save(path: Path, state: RolloutState) -> None:
    """Atomically: a reader (or a crash) sees the old record or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(state.to_dict(), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path) -> RolloutState | None:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BadInput(
            f"rollout state {path} is unreadable ({exc}); run `meridian rollout --rollback` to restore 100 % stable, "
            "or delete it once the split is known"
        ) from None
    try:
        return RolloutState.from_dict(doc)
    except TypeError as exc:
        raise BadInput(
            f"rollout state {path} is not a rollout record ({exc}); `meridian rollout --rollback` restores stable"
        ) from None


@dataclass(frozen=True)
class Decision:
    kind: Literal["fresh", "resume", "rollback", "done"]
    position: int = 0
    reason: str = ""
    then_fresh: bool = False  # after the rollback, start this version from its first step


def _nonzero(weights: dict[str, int]) -> dict[str, int]:
    return {r: w for r, w in sorted(weights.items()) if w}


def reconcile(state: RolloutState | None, live: dict[str, int], version: str, plan_length: int) -> Decision:
    """What the next run does, given the record and the live split (see the module docstring)."""
    live_set = _nonzero(live)
    if state is None:
        if live_set:
            return Decision("rollback", reason=f"no rollout record, yet the canary has traffic {live_set}", then_fresh=True)
        return Decision("fresh", reason="no rollout in progress")
    recorded = _nonzero(state.applied)
    if state.phase == "running":
        if state.version != version:
            return Decision(
                "rollback", reason=f"a rollout of {state.version} was interrupted at step {state.position + 1}", then_fresh=True
            )
        if recorded != live_set:
            return Decision(
                "rollback",
                reason=f"the live split {live_set or 'all stable'} is not the one recorded {recorded or 'all stable'}",
                then_fresh=True,
            )
        return Decision("resume", position=min(state.position, plan_length - 1), reason=f"resuming at step {state.position + 1}")
    if state.phase == "promoted" and state.version == version and recorded == live_set:
        return Decision("done", position=plan_length, reason=f"{version} is already promoted")
    if live_set and recorded != live_set:
        return Decision(
            "rollback", reason=f"the live split {live_set} is not the recorded {recorded or 'all stable'}", then_fresh=True
        )
    if state.phase == "promoted" and live_set:
        # promoted on the canary track is not stable yet: the new version takes that track over
        return Decision(
            "fresh",
            reason=f"{state.version} was promoted on the canary track ({_percent(live_set)}) but is not the stable image: "
            f"step 1 puts {version} on that track, so {state.version}'s traffic goes back to the stable image first "
            f"(to keep {state.version}, make it stable with `pulumi up` and workload.image_tag: {state.version} before rolling out)",
        )
    return Decision("fresh", reason=f"the last rollout ({state.version}) {state.phase.replace('_', ' ')}")


def _percent(weights: dict[str, int]) -> str:
    return ", ".join(f"{role} {w} %" for role, w in sorted(weights.items()))
