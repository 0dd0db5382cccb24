"""One Target protocol: what load, chaos, SLO gates and DR drills may do to a running stack.

slo, chaos, drills and rollout never touch the sandbox's processes or boto3 themselves: they ask a
`Target`, so each is written once and runs on the sandbox (`meridian.targets.sandbox`) and on AWS
(`meridian.targets.aws`) alike. Regions are named by their role in the stack's pair, `"primary"`
or `"dr"`, never by AWS region name, so a drill reads the same in every residency zone.

The operations, and the drills and chaos scenarios they compose into:

- region failover (unplanned): `kill_region("primary")` -> the health checks fail over by
  themselves (measure with `health()`/the load) -> `restore_region("primary")`;
- region failover (planned): `flip_traffic("dr")` ... `flip_traffic("primary")`;
- database failover, unplanned: `stop_database("primary")` -> `promote("dr")` ->
  `flip_traffic("dr")`; failback: `restore_database("primary")` (rebuilt as a replica of dr) ->
  `stop_database("dr", planned=True)` -> `promote("primary")` -> `restore_database("dr")` ->
  `flip_traffic("primary")`;
- database failover, planned (switchover, RPO 0): `stop_database("primary", planned=True)`
  (a clean shutdown ships every committed WAL record first) -> `promote("dr")` -> ...;
- replica loss: `stop_database("dr")` -> `restore_database("dr")`;
- latency, jitter, packet drops, partitions: `inject(Fault(...))` -> `clear_faults()`;
- progressive delivery (`meridian rollout`): `set_canary_weight(role, p)` step by step, judged on
  the canary's own requests, `canary_weights()` read back from the live system (never a cache).

Abilities only some targets have are protocols of their own, which a caller names instead of
probing for methods: `RegionDoors` (a region's own entry point), `CanaryHost` (the target runs the
canary version itself: the sandbox; on AWS `pulumi up` deployed it), `Explains` (a dry run names
the calls an operation makes), `Backups` (recovery points and restores beside the running pair),
`FaultProxies` (fault injection that the target may have been started without). Ask with
`isinstance(target, CanaryHost)`, or `require(target, Backups)` where the scenario cannot go on
without it; a drill or chaos step runs its operation through `perform()`, whose table names every
operation a scenario may call.

Every operation returns an `ActionResult` (what, where, when, how long, what it changed) so drills
and chaos journals get a timeline for free. A target that cannot do something says so with
`Unsupported` (exit 2: it is the caller's choice of scenario that is wrong), a target that is not
there with `TargetUnavailable` (exit 2), an operation that was tried and failed with `ActionFailed`
(exit 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol, TypeVar, runtime_checkable

from meridian.errors import BadInput, GateFailed
from meridian.targets.lock import LockOwner

Role = Literal["primary", "dr"]
ROLES: tuple[Role, ...] = ("primary", "dr")
TARGET_KINDS = ("sandbox", "aws")


class TargetUnavailable(BadInput):
    """The target is not there (no sandbox up, no stack outputs): the message says how to get one."""


class Unsupported(BadInput):
    """This target cannot perform the operation asked for (the message says what it can do)."""


class ActionFailed(GateFailed):
    """An operation was attempted and did not take effect."""


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise BadInput(f"unknown region role {role!r} (allowed: {', '.join(ROLES)})")
    return role  # type: ignore[return-value]


@dataclass(frozen=True)
class TenantCredential:
    """A tenant as a load generator needs it: who, which plan, its key and the quotas it was sold."""

    id: str
    plan: str
    api_key: str = field(repr=False)  # never printed
    gql_qps: int
    ingest_eps: int


@dataclass(frozen=True)
class RegionHealth:
    role: Role
    region: str
    service_up: bool  # the region's service answers its deep health check
    database: Literal["primary", "replica", "down", "unknown"]
    routable: bool  # the front door would send traffic here (health check passing, not drained)


@dataclass(frozen=True)
class Health:
    """One look at the stack through its front door and at each region behind it."""

    healthy: bool  # the front door answers and every region is as it should be
    serving: Role | None  # the region the front door sends traffic to now (None: nothing answers)
    regions: dict[str, RegionHealth]
    replication_lag_ms: float | None = None
    """How far the dr replica is behind in time while the primary writes (0: nothing to replay);
    None: no replica streams. Never a stale last-known value: a stalled stream must show."""
    detail: str = ""
    replication_bytes_behind: int | None = None  # WAL not yet replayed, where the target can tell

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ActionResult:
    """What an operation did: journal and timeline entry for chaos runs and drills."""

    action: str  # e.g. "kill_region"
    role: str | None  # the region acted on ("primary"/"dr"), None for stack-wide actions
    started_at: float  # epoch seconds
    seconds: float
    changed: bool  # False: it was already so (operations are safe to repeat)
    detail: str = ""
    forced: bool = False  # a clean (planned) stop that did not finish and was forced

    def to_dict(self) -> dict:
        return asdict(self)


FaultKind = Literal["latency", "drop", "blackhole"]
FaultLayer = Literal["database", "service"]


@dataclass(frozen=True)
class Fault:
    """A network fault between the front door and a region's service (`layer="service"`), or
    between the services and a region's database (`layer="database"`).

    kind `latency`: every chunk delayed by `latency_ms` +/- `jitter_ms`; `drop`: each new connection
    reset with probability `probability`; `blackhole`: nothing answers (a partition).
    """

    kind: FaultKind
    layer: FaultLayer
    role: Role
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    probability: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("latency", "drop", "blackhole"):
            raise BadInput(f"unknown fault kind {self.kind!r} (allowed: latency, drop, blackhole)")
        if self.layer not in ("database", "service"):
            raise BadInput(f"unknown fault layer {self.layer!r} (allowed: database, service)")
        check_role(self.role)
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise BadInput("latency_ms and jitter_ms must be >= 0")
        if self.kind == "latency" and self.latency_ms == 0 and self.jitter_ms == 0:
            raise BadInput("a latency fault needs latency_ms or jitter_ms > 0")
        if self.kind == "drop" and not 0 < self.probability <= 1:
            raise BadInput(f"a drop fault needs 0 < probability <= 1 (got {self.probability})")


@runtime_checkable
class CanaryTraffic(Protocol):
    """Traffic shares between a region's stable and canary versions (part of every Target)."""

    def set_canary_weight(self, role: Role, percent: int) -> ActionResult:
        """Send `percent` (0..100) of the region's traffic to its canary version, the rest to stable.
        0 is a full rollback of that region; how the canary got there (sandbox: a process the target
        starts; AWS: the canary target group `pulumi up` deployed) is the target's business."""

    def canary_weights(self) -> dict[str, int]:
        """Role -> the canary's current share (0..100), read back from the live system (HAProxy's
        admin socket, the ALB listener rule), never from a cache: what a resumed rollout trusts."""


@runtime_checkable
class Target(CanaryTraffic, Protocol):
    """A running stack that load, chaos and drills act on. Implementations: sandbox, aws."""

    kind: str  # "sandbox" | "aws"
    stack: str

    def endpoint(self) -> str:
        """The front door's base URL (the API record on AWS, HAProxy in the sandbox)."""

    def plan_sha256(self) -> str | None:
        """The sha256 of the previewed plan the running stack was started from, None when not
        recorded: what an SLO report says it tested."""

    def tenants(self) -> list[TenantCredential]:
        """Every tenant with its API key and quotas, for tenant-aware load."""

    def health(self) -> Health:
        """Which region serves, whether each region's service and database are up."""

    def detection_bound_s(self) -> float:
        """Worst case from a region's failure to clients on the other region (interval x
        threshold + TTL, scaled by the sandbox's time scale): what recovery is judged against."""

    def time_scale(self) -> float:
        """How many times faster than the stack's configured timings this target runs its failover
        (the sandbox's `--time-scale`; 1.0 on AWS): wall-clock windows and objectives divide by it."""

    def kill_region(self, role: Role) -> ActionResult:
        """Take the region's service away abruptly (region loss); health checks fail it over."""

    def restore_region(self, role: Role) -> ActionResult:
        """Bring a killed region's service back as it was."""

    def stop_database(self, role: Role, *, planned: bool = False) -> ActionResult:
        """Stop the region's database: `planned` = clean shutdown (every committed transaction
        reaches the replica first: switchover, RPO 0), else a crash (unplanned failover)."""

    def restore_database(self, role: Role) -> ActionResult:
        """Bring a stopped database back: as it was if nothing was promoted meanwhile, else rebuilt
        as a replica of the region now primary (failback's first step)."""

    def promote(self, role: Role) -> ActionResult:
        """Make the region's replica the primary (writes follow it)."""

    def flip_traffic(self, to_role: Role) -> ActionResult:
        """Send all traffic to `to_role` (drain the other region) or, for the primary, undo a flip."""

    def set_weights(self, weights: dict[str, int]) -> ActionResult:
        """Share traffic by weight per role, e.g. {"primary": 90, "dr": 10}; 0 drains a region."""

    def inject(self, fault: Fault) -> ActionResult:
        """Start a network fault (latency/jitter, drops, partition)."""

    def clear_faults(self) -> ActionResult:
        """Lift every fault this target can inject (safe when none is active)."""


# --- abilities only some targets have ----------------------------------------------------------


@runtime_checkable
class RegionDoors(Protocol):
    """Each region has its own entry point beside the front door."""

    def region_endpoint(self, role: Role) -> str:
        """The region's own base URL: load for judging a region the front door keeps idle."""


@runtime_checkable
class CanaryHost(Protocol):
    """The target runs a canary version itself (the sandbox); on AWS the canary is what `pulumi up`
    deployed, so there is nothing to start or stop."""

    def start_canary(self, role: Role, version: str, fault: dict | None = None) -> ActionResult:
        """Run `version` beside the region's stable service, at weight 0 until set."""

    def stop_canary(self, role: Role) -> ActionResult:
        """Stable back to all of the region's traffic, the canary gone."""

    def canary_digest(self, version: str, fault: dict | None) -> str:
        """The digest that identifies what `start_canary(role, version, fault)` runs (provenance)."""


@runtime_checkable
class Explains(Protocol):
    """Dry runs name the calls an operation would make on this target."""

    def explain(self, action: str, *args, **kwargs) -> list[str]:
        """What `action(*args, **kwargs)` would do, without doing it: one line per call."""


@runtime_checkable
class Backups(Protocol):
    """Recovery points of a region's database and restores into a new server beside the pair."""

    def backup(self, role: Role) -> ActionResult:
        """Take a recovery point of the region's database."""

    def restore_backup(self, role: Role) -> ActionResult:
        """Start a new database from the latest recovery point; the running pair is untouched."""

    def restored_ids(self, tenant: str, ids: list[int]) -> set[int]:
        """Which of the tenant's event `ids` the restored database holds."""

    def discard_restore(self) -> ActionResult:
        """Stop the restored database and delete its data."""


@runtime_checkable
class FaultProxies(Protocol):
    """The target injects faults through proxies it may have been started without (the sandbox's
    `--fault-proxies`); a target that is not a FaultProxies injects whenever asked (AWS FIS)."""

    def has_fault_proxies(self) -> bool:
        """True when `inject()` can work: the proxies are running."""


@runtime_checkable
class StackLock(Protocol):
    """One drill at a time per stack, held where every operator of the stack sees it (the sandbox:
    its state folder; AWS: an SSM parameter), whatever folder the drill records go to."""

    def acquire_drill_lock(self, claimant: LockOwner, *, resume: bool = False, break_lock: bool = False) -> str:
        """Take the stack's drill lock for `claimant`, or raise `LockHeld` (exit 2) naming the owner
        and its expiry; returns what was taken over ("" when the lock was free)."""

    def release_drill_lock(self, claimant: LockOwner) -> None:
        """Give the lock back if it is still `claimant`'s."""


@runtime_checkable
class ExecutionGuard(Protocol):
    """Checks the target makes before a scenario changes anything (AWS: the account it would act
    on, what its database engine can undo)."""

    def refuse_unsafe(self, scenario: str, *, promotes: bool) -> None:
        """Raise (exit 2) when `scenario` must not run on this target, saying what to do instead;
        `promotes`: the scenario promotes a replica."""


_Ability = TypeVar("_Ability")


def require(target: Target, ability: type[_Ability], why: str = "") -> _Ability:
    """`target` as the `ability` protocol, or Unsupported naming the ability and what it needs."""
    if not isinstance(target, ability):
        needs = ", ".join(f"{name}()" for name, member in vars(ability).items() if _is_operation(name, member))
        raise Unsupported(f"the {target.kind} target has no {ability.__name__} ability ({needs}){': ' + why if why else ''}")
    return target


def _is_operation(name: str, member: object) -> bool:
    return not name.startswith("_") and callable(member)


# Every operation a drill step or chaos action may name, and how it is performed: a scenario file
# or step table can only reach what is listed here, never an arbitrary attribute of the target.
OPERATIONS: dict[str, Callable[..., ActionResult]] = {
    "kill_region": lambda t, role: t.kill_region(role),
    "restore_region": lambda t, role: t.restore_region(role),
    "stop_database": lambda t, role, planned=False: t.stop_database(role, planned=planned),
    "restore_database": lambda t, role: t.restore_database(role),
    "promote": lambda t, role: t.promote(role),
    "flip_traffic": lambda t, to_role: t.flip_traffic(to_role),
    "set_weights": lambda t, weights: t.set_weights(weights),
    "set_canary_weight": lambda t, role, percent: t.set_canary_weight(role, percent),
    "inject": lambda t, fault: t.inject(fault),
    "clear_faults": lambda t: t.clear_faults(),
    "backup": lambda t, role: require(t, Backups).backup(role),
    "restore_backup": lambda t, role: require(t, Backups).restore_backup(role),
    "discard_restore": lambda t: require(t, Backups).discard_restore(),
}


def check_operation(action: str) -> str:
    if action not in OPERATIONS:
        raise BadInput(f"unknown target operation {action!r} (allowed: {', '.join(OPERATIONS)})")
    return action


def perform(target: Target, action: str, *args, **kwargs) -> ActionResult:
    """Run the operation named `action` on `target` (a drill step's or a chaos action's)."""
    return OPERATIONS[check_operation(action)](target, *args, **kwargs)


def check_percent(percent: object) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise BadInput(f"a canary weight is an integer percentage 0..100 (got {percent!r})")
    return percent


def timed(action: str, role: str | None, fn) -> ActionResult:
    """Run `fn() -> (changed, detail)` and time it into an ActionResult."""
    started, t0 = time.time(), time.monotonic()
    changed, detail = fn()
    return ActionResult(action, role, started, round(time.monotonic() - t0, 4), changed, detail)
