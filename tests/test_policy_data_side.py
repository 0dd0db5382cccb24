"""The security review's data-side bypasses (tests/policydata/dataside.py), each replayed through
the pack's analyzer protocol as the engine drives it against the whole pack: every attack draws
its rule's mandatory violation, every legitimate twin passes every rule."""

from __future__ import annotations

import pytest

from meridian.engine.policy import Analyzer, effective_config

from .helpers import ROOT, assert_mandatory, judge_mutated_valid_stack
from .policydata import CONFIG
from .policydata.dataside import ADMITTED, CAUGHT


@pytest.fixture(scope="module")
def analyzer():
    with Analyzer(ROOT / "policies") as a:
        a.configure(effective_config(a.wait_ready(), CONFIG, "test config"))
        yield a


@pytest.mark.parametrize("rule,what,mutation", CAUGHT, ids=[f"{r}:{w}" for r, w, _ in CAUGHT])
def test_each_bypass_is_a_mandatory_violation_of_its_rule(analyzer, rule, what, mutation):
    assert_mandatory(judge_mutated_valid_stack(analyzer, mutation), rule, what)


@pytest.mark.parametrize("what,mutation", ADMITTED, ids=[w for w, _ in ADMITTED])
def test_each_legitimate_twin_passes_the_whole_pack(analyzer, what, mutation):
    violations = judge_mutated_valid_stack(analyzer, mutation)
    assert violations == [], f"{what} blocked: {[(v.policy, v.level, v.urn, v.message) for v in violations]}"


def test_a_hard_cap_whose_roles_are_unknown_is_reported_on_its_action(analyzer):
    from .policydata.dataside import UNKNOWN_ROLES

    violations = judge_mutated_valid_stack(analyzer, UNKNOWN_ROLES)
    assert [(v.policy, v.level, v.urn.rsplit("::", 1)[-1]) for v in violations] == [
        ("budgets-limit-and-cap-enforced", "advisory", "budget-tenant-acme-cap")
    ], violations
    assert violations[0].message.startswith("unverifiable at preview: definition.iamActionDefinition.roles")
