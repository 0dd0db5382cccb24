"""The pack judges a cell stack on its own plan: what lives in its platform (stack budget, cap
enforcer, tenant role, admission policies, backup selection) is an advisory naming the platform,
never a silent pass; judged without the cell's `platformStack` setting, the same absences are
violations (the twin that shows the advisories are not a blanket pass)."""

from __future__ import annotations

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate, load_policy_config
from meridian.engine.policy.generated import IN_PLATFORM

from .helpers import ROOT

CELL = "us-cell-001"


@pytest.fixture(scope="module")
def judged(registrations):
    """The cell's registrations (its platform previewed first for its outputs), judged by the pack
    with the cell's policy config and with the same config minus `platformStack`."""
    resources = [Subject.from_dict(r) for r in registrations(CELL)]
    path = ROOT / "policies" / "config" / f"{CELL}.json"
    config = load_policy_config(path)
    alone = {
        k: ({kk: vv for kk, vv in v.items() if kk != "platformStack"} if isinstance(v, dict) else v) for k, v in config.items()
    }
    out = {}
    with Analyzer(ROOT / "policies") as analyzer:
        info = analyzer.wait_ready()
        for view, cfg in (("cell", config), ("alone", alone)):
            analyzer.configure(effective_config(info, cfg, path))
            out[view] = evaluate(analyzer, resources)
    return out


def test_the_example_cell_has_no_mandatory_violation(judged):
    mandatory = [(v.policy, v.message) for v in judged["cell"] if v.level == "mandatory"]
    assert mandatory == [], mandatory


def test_what_lives_in_the_platform_is_said_not_passed(judged):
    said = {v.policy for v in judged["cell"] if v.level == "advisory" and "in platform stack 'us'" in v.message}
    assert said == set(IN_PLATFORM), said


def test_judged_as_a_stack_of_its_own_the_same_absences_fail(judged):
    failed = {v.policy for v in judged["alone"] if v.level == "mandatory"}
    assert set(IN_PLATFORM) <= failed, failed
    assert not any("in platform stack" in v.message for v in judged["alone"])
