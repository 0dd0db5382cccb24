"""The Target seam: what load, chaos, SLO gates, drills and rollouts may do to a running stack.

The protocol, the optional abilities and the value types are in `meridian.targets.protocol`
(re-exported here, where callers import them from); the implementations, `sandbox` and `aws`, import
that module, and only `open_target` below reaches down to them, so the seam has no circle.
"""

from __future__ import annotations

from pathlib import Path

from meridian.errors import BadInput
from meridian.targets.lock import LockHeld, LockOwner
from meridian.targets.protocol import (
    OPERATIONS,
    ROLES,
    TARGET_KINDS,
    ActionFailed,
    ActionResult,
    Backups,
    CanaryHost,
    CanaryTraffic,
    ExecutionGuard,
    Explains,
    Fault,
    FaultKind,
    FaultLayer,
    FaultProxies,
    Health,
    RegionDoors,
    RegionHealth,
    Role,
    StackLock,
    Target,
    TargetUnavailable,
    TenantCredential,
    Unsupported,
    check_operation,
    check_percent,
    check_role,
    perform,
    require,
    timed,
)

__all__ = [
    "Role",
    "ROLES",
    "TARGET_KINDS",
    "TargetUnavailable",
    "Unsupported",
    "ActionFailed",
    "check_role",
    "TenantCredential",
    "RegionHealth",
    "Health",
    "ActionResult",
    "FaultKind",
    "FaultLayer",
    "Fault",
    "CanaryTraffic",
    "Target",
    "RegionDoors",
    "CanaryHost",
    "Explains",
    "Backups",
    "FaultProxies",
    "StackLock",
    "ExecutionGuard",
    "LockOwner",
    "LockHeld",
    "require",
    "OPERATIONS",
    "check_operation",
    "perform",
    "check_percent",
    "timed",
    "open_target",
]


def open_target(kind: str, stack: str, project_dir: Path, **options) -> Target:
    """The Target of `kind` for `stack`.

    Each implementation module exposes `from_stack(stack, project_dir, **options) -> Target`:
    `sandbox` takes `state_dir=` (default <project>/.meridian/sandbox); `aws` its own options.
    """
    if kind == "sandbox":
        from meridian.targets import sandbox as impl
    elif kind == "aws":
        try:
            from meridian.targets import aws as impl  # type: ignore[no-redef]
        except ImportError as exc:
            raise TargetUnavailable(f"the aws target is not available in this build ({exc})") from None
    else:
        raise BadInput(f"unknown target {kind!r} (allowed: {', '.join(TARGET_KINDS)})")
    return impl.from_stack(stack, project_dir, **options)
