"""Where a failed drill leaves the front door: serving from the region that holds the data.

A failure half-way through the planned switchover home (dr already stopped cleanly, primary not
promoted) used to roll forward to "traffic on dr" with dr's database still stopped: the front door
answered 503. The rollback now undoes what ran after the last irreversible step (dr restarted) before
its safe state, and a failure after the promotion home sends traffic home."""

from __future__ import annotations

import dataclasses

from meridian.drills import catalog
from meridian.drills.machine import execute

from .test_drill_machine import Recorder, start


def without_checks(drill):
    return dataclasses.replace(drill, steps=tuple(dataclasses.replace(s, check=None) for s in drill.steps))


def test_a_failed_promotion_home_restarts_dr_where_traffic_still_is(tmp_path):
    target = Recorder(failing={"promote"})
    drill = without_checks(catalog.build("failback"))  # starts on dr: nothing irreversible done yet
    _, run = start(tmp_path, target, drill)
    state = execute(run)
    assert state["status"] == "failed" and "failback-promote" in state["error"]
    assert state["rollback"]["operations"] == ["restore_database('dr')", "clear_faults()"]
    assert target.calls[-2:] == ["restore_database('dr')", "clear_faults()"]
    assert "flip_traffic('primary')" not in target.calls, "traffic never left dr, which holds the data"


def test_the_same_failure_in_a_region_failover_restarts_dr_before_traffic_goes_there(tmp_path):
    class FailsHome(Recorder):
        def promote(self, role):
            if role == "primary":
                raise RuntimeError("promote primary broke")
            return Recorder.__getattr__(self, "promote")(role)

    target = FailsHome()
    _, run = start(tmp_path, target, without_checks(catalog.build("region-failover")))
    state = execute(run)
    assert state["status"] == "failed"
    assert state["rollback"]["mode"] == "roll forward (after irreversible promote)"
    assert state["rollback"]["operations"] == ["restore_database('dr')", "flip_traffic('dr')", "clear_faults()"]


def test_a_failure_after_the_promotion_home_sends_traffic_home(tmp_path):
    target = Recorder(failing={"flip_traffic"})
    drill = without_checks(catalog.build("failback"))
    _, run = start(tmp_path, target, drill)
    state = execute(run)
    assert state["rollback"]["mode"] == "roll forward (after irreversible failback-promote)"
    assert state["rollback"]["operations"] == ["flip_traffic('primary')", "clear_faults()"]


def test_steps_that_promote_or_rebuild_outwait_the_aws_targets_own_bound():
    """A step timing out while AWS still promotes would roll back during the promotion: every step
    (and rollback operation) that promotes or restores a database waits longer than the AWS target
    polls (its WAIT_S), so the target's own bound is what fails it."""
    from meridian.drills.machine import TARGET_BOUNDED_S
    from meridian.targets.aws import WAIT_S

    assert TARGET_BOUNDED_S > WAIT_S
    short = [
        f"{name}: {step.name} ({step.timeout_s:g} s)"
        for name in catalog.DRILLS
        for step in catalog.build(name).steps
        if {o.action for o in step.ops} & {"promote", "restore_database"} and step.timeout_s <= WAIT_S
    ]
    assert short == []
