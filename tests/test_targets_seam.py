"""The Target seam: which optional abilities each target declares, and how callers are refused when
a target lacks one (no probing for methods: the protocols are the contract)."""

from __future__ import annotations

import pytest

from meridian.drills.catalog import DRILLS, build
from meridian.drills.machine import op
from meridian.errors import BadInput
from meridian.targets import (
    OPERATIONS,
    ActionResult,
    Backups,
    CanaryHost,
    CanaryTraffic,
    ExecutionGuard,
    Explains,
    FaultProxies,
    RegionDoors,
    StackLock,
    Target,
    Unsupported,
    perform,
    require,
)
from meridian.targets.aws import AwsTarget
from meridian.targets.sandbox import SandboxTarget


@pytest.mark.parametrize(
    ("cls", "has", "lacks"),
    [
        (SandboxTarget, (CanaryTraffic, RegionDoors, CanaryHost, Explains, Backups, FaultProxies, StackLock), (ExecutionGuard,)),
        (AwsTarget, (CanaryTraffic, RegionDoors, Explains, StackLock, ExecutionGuard), (CanaryHost, Backups, FaultProxies)),
    ],
)
def test_each_target_declares_the_abilities_it_has(cls, has, lacks):
    assert [a.__name__ for a in has if not issubclass(cls, a)] == []
    assert [a.__name__ for a in lacks if issubclass(cls, a)] == []


class Bare:
    """A target with only the protocol's core: nothing optional."""

    kind, stack = "bare", "us"

    def __init__(self):
        self.calls: list[tuple] = []

    def promote(self, role):
        self.calls.append(("promote", role))
        return ActionResult("promote", role, 0.0, 0.0, True)


def test_require_names_the_missing_ability_and_what_it_needs():
    with pytest.raises(Unsupported) as err:
        require(Bare(), Backups, "drill restore-backup needs it")
    msg = str(err.value)
    assert "the bare target has no Backups ability" in msg
    assert "backup(), restore_backup(), restored_ids(), discard_restore()" in msg and "drill restore-backup" in msg


def test_require_hands_back_a_target_that_has_the_ability():
    class Doors(Bare):
        def region_endpoint(self, role):
            return f"http://{role}"

    target = Doors()
    assert require(target, RegionDoors).region_endpoint("dr") == "http://dr"


def test_perform_runs_only_listed_operations():
    target = Bare()
    assert perform(target, "promote", "dr").action == "promote" and target.calls == [("promote", "dr")]
    with pytest.raises(BadInput, match="unknown target operation '__class__'"):
        perform(target, "__class__")
    with pytest.raises(Unsupported, match="no Backups ability"):
        perform(target, "backup", "primary")


def test_every_listed_operation_is_a_target_or_ability_method():
    declared = {n for proto in (Target, CanaryTraffic, Backups) for n in vars(proto) if not n.startswith("_")}
    assert set(OPERATIONS) <= declared


def test_a_drill_step_naming_an_unlisted_operation_is_refused_when_written():
    with pytest.raises(BadInput, match="unknown target operation 'reboot_everything'"):
        op("reboot_everything")


def test_only_the_restore_drill_requires_an_ability():
    assert {name: build(name).requires for name in DRILLS} == {
        "region-failover": (),
        "database-failover": (),
        "failback": (),
        "restore-from-backup": (Backups,),
    }
