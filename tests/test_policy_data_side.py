"""The security review's data-side bypasses (tests/policydata/dataside.py), each replayed through
the pack's analyzer protocol as the engine drives it against the whole pack: every attack draws
its rule's mandatory violation, every legitimate twin passes every rule."""

from __future__ import annotations

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate

from .helpers import ROOT
from .policydata import CONFIG, valid_stack
from .policydata.dataside import ADMITTED, CAUGHT


@pytest.fixture(scope="module")
def analyzer():
    with Analyzer(ROOT / "policies") as a:
        a.configure(effective_config(a.wait_ready(), CONFIG, "test config"))
        yield a


def _run(analyzer, mutation):
    resources = valid_stack()
    mutation(resources)
    return evaluate(analyzer, [Subject.from_dict(r) for r in resources])


@pytest.mark.parametrize("rule,what,mutation", CAUGHT, ids=[f"{r}:{w}" for r, w, _ in CAUGHT])
def test_each_bypass_is_a_mandatory_violation_of_its_rule(analyzer, rule, what, mutation):
    violations = _run(analyzer, mutation)
    hits = [v for v in violations if v.policy == rule and v.level == "mandatory"]
    assert hits, f"{rule} missed: {what}; got {[(v.policy, v.level, v.message) for v in violations]}"
    assert all(" must " in v.message for v in hits), hits


@pytest.mark.parametrize("what,mutation", ADMITTED, ids=[w for w, _ in ADMITTED])
def test_each_legitimate_twin_passes_the_whole_pack(analyzer, what, mutation):
    violations = _run(analyzer, mutation)
    assert violations == [], f"{what} blocked: {[(v.policy, v.level, v.urn, v.message) for v in violations]}"


def test_a_hard_cap_whose_roles_are_unknown_is_reported_on_its_action(analyzer):
    from .policydata.dataside import UNKNOWN_ROLES

    violations = _run(analyzer, UNKNOWN_ROLES)
    assert [(v.policy, v.level, v.urn.rsplit("::", 1)[-1]) for v in violations] == [
        ("budgets-limit-and-cap-enforced", "advisory", "budget-tenant-acme-cap")
    ], violations
    assert violations[0].message.startswith("unverifiable at preview: definition.iamActionDefinition.roles")
