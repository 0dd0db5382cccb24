"""Issue 23's misses and false positives (semantics over presence, exposure, encryption, Kubernetes
workloads), each replayed through the pack's analyzer protocol as the engine drives it: every miss
is caught by the rule that should catch it, every legitimate setup passes the whole pack."""

from __future__ import annotations

import pytest

from meridian.engine.policy import Analyzer, effective_config

from .helpers import ROOT, assert_mandatory, judge_mutated_valid_stack
from .policydata import CONFIG
from .policydata.regressions import ADMITTED, CAUGHT


@pytest.fixture(scope="module")
def analyzer():
    with Analyzer(ROOT / "policies") as a:
        info = a.wait_ready()
        a.configure(effective_config(info, CONFIG, "test config"))
        a.info = info
        yield a


@pytest.mark.parametrize("rule,what,mutation", CAUGHT, ids=[f"{r}:{w}" for r, w, _ in CAUGHT])
def test_each_miss_is_caught_by_its_rule(analyzer, rule, what, mutation):
    assert_mandatory(judge_mutated_valid_stack(analyzer, mutation), rule, what)


@pytest.mark.parametrize("what,mutation", ADMITTED, ids=[w for w, _ in ADMITTED])
def test_each_legitimate_setup_passes_the_whole_pack(analyzer, what, mutation):
    violations = judge_mutated_valid_stack(analyzer, mutation)
    assert violations == [], f"{what} blocked: {[(v.policy, v.level, v.urn, v.message) for v in violations]}"


def test_the_cases_cover_the_issue_list():
    """One place to see that each named case of the issue is here (not a stand-in for the tests above)."""
    whats = " | ".join(w for _, w, _ in CAUGHT) + " | " + " | ".join(w for w, _ in ADMITTED)
    for needle in (
        "metadata.name Exists",
        "0.0.0.0/1 + 128.0.0.0/1",
        "secret without kmsKeyId",
        "ECR AES256",
        "SQS with managed SSE",
        "prefix list of 0.0.0.0/0",
        "mapPublicIpOnLaunch",
        "spot request",
        "launch configuration",
        "classic ELB",
        "function URL",
        "disabled health check",
        "another bucket",
        "notResources",
        "copy kept 1 day",
        "budget of 1e9",
        "expiring data after a day",
        "without `changeableForDays`",
        "DeploymentPatch",
        "ReplicationController",
        "SSE-S3",
        "own IPv6 /56",
        "BucketV2 with inline KMS",
        "evaluateTargetHealth",
    ):
        assert needle in whats, needle


AREAS_OF_THIS_WORK = ("resilience", "cost", "encryption", "exposure", "workloads", "operations")


def test_every_rule_of_these_areas_says_what_it_does_not_prove(analyzer):
    """The catalog's "What it does not prove" is each rule's own statement, not only the shared
    sentence about values known at `up`."""
    for area in AREAS_OF_THIS_WORK:
        names = {p.name for p in _policies(area)}
        for policy in analyzer.info.policies:
            if policy.name in names:
                _, _, limits = policy.description.partition(" Limits: ")
                own = limits.split("`pulumi up` judges it with the value known.", 1)[-1].strip()
                assert len(own) > 30, f"{policy.name} does not say what it does not prove"


def _policies(area: str):
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "policies"))
    try:
        return importlib.import_module(area).POLICIES
    finally:
        sys.path.remove(str(ROOT / "policies"))
