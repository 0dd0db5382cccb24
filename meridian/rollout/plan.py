"""The rollout plan: steps, region order, the weights in force at each step. Pure functions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from meridian.errors import BadInput

ROLES = ("primary", "dr")
DEFAULT_REGION_ORDER = ("dr", "primary")  # the idle (dr) region first: a bad version meets less traffic there


@dataclass(frozen=True)
class Step:
    index: int  # position in the whole plan (0-based)
    role: str
    percent: int  # the canary's share of this region's traffic while the step holds

    @property
    def label(self) -> str:
        return f"{self.role} {self.percent} %"


def check_steps(steps: tuple[int, ...] | list[int], where: str = "--steps") -> tuple[int, ...]:
    """Integer percentages 1..100, strictly increasing, ending at 100 (full promotion)."""
    steps = tuple(steps)
    problems = []
    if not steps:
        problems.append("no steps")
    for s in steps:
        if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 100:
            problems.append(f"{s!r} is not an integer percentage 1..100")
    if not problems:
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            problems.append(f"steps must be strictly increasing (got {list(steps)})")
        if steps[-1] != 100:
            problems.append(f"the last step must be 100 (full promotion), got {steps[-1]}")
    if problems:
        raise BadInput(f"{where}: " + "; ".join(problems) + " (e.g. 1,5,25,100)")
    return steps


def parse_steps(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise BadInput(f"--steps {text!r}: comma-separated integer percentages, e.g. 1,5,25,100") from None
    return check_steps(values)


def parse_region_order(text: str) -> tuple[str, ...]:
    roles = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [r for r in roles if r not in ROLES]
    if not roles or unknown or len(set(roles)) != len(roles):
        raise BadInput(
            f"--region-order {text!r}: each of {', '.join(ROLES)} at most once, comma-separated (e.g. dr,primary)"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    return roles


def plan_steps(order: tuple[str, ...], steps: tuple[int, ...]) -> list[Step]:
    """Every region in order through every step: [dr 1, dr 5, ..., dr 100, primary 1, ...]."""
    out = []
    for role in order:
        for percent in steps:
            out.append(Step(len(out), role, percent))
    return out


def weights_at(plan: list[Step], position: int) -> dict[str, int]:
    """Each role's canary share while step `position` holds (regions done before it stay at 100,
    later ones at 0); `position == len(plan)`: everything the plan covers at 100."""
    out = {role: 0 for role in ROLES}
    for step in plan[: position + 1]:
        out[step.role] = step.percent
    return out


def split(percent: int) -> tuple[int, int]:
    """(stable weight, canary weight) for a canary share: the pair's weights sum to 100, so the
    share read back from the balancer is the percentage itself."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise BadInput(f"a canary weight is an integer percentage 0..100 (got {percent!r})")
    return 100 - percent, percent


def share(stable_weight: int, canary_weight: int) -> int:
    """The canary's share (percent, rounded) from the two weights; a pair at 0/0 serves nothing: 0."""
    if stable_weight < 0 or canary_weight < 0:
        raise ValueError("weights are >= 0")
    total = stable_weight + canary_weight
    return round(100 * canary_weight / total) if total else 0


@dataclass(frozen=True)
class RolloutPlan:
    stack: str
    target: str
    version: str
    digest: str
    steps: tuple[int, ...]
    region_order: tuple[str, ...]
    window_s: float
    min_samples: int

    def steps_list(self) -> list[Step]:
        return plan_steps(self.region_order, self.steps)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def sha256(self) -> str:
        """What this rollout was asked to do, hashed: the same request gives the same hash."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
