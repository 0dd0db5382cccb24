"""Types the pack used to pass whatever their values (REVIEWED in policies/inventory.py), now judged
by value: review 15's misses replayed on a real stack's plan through the analyzer protocol (each a
mandatory violation of the rule named), their legitimate twins (each passes the whole pack), and
what stays unknown at preview (an advisory naming the value, never a pass)."""

from __future__ import annotations

import copy
import sys

import pytest

from .helpers import ROOT, STACKS
from .policydata import UNKNOWN
from .policydata.reviewed import ATTACKS, TWINS, addon, binding_copy, dead_letter, one, permission

pytestmark = pytest.mark.slow  # the plans come from the previews fixture


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_plans_draw_no_violation(judge, stack):
    assert [(v.policy, v.message) for v in judge(stack=stack)] == []


@pytest.mark.parametrize("what,stack,mutation,rule", ATTACKS, ids=[a[0].split(" ", 1)[0] for a in ATTACKS])
def test_each_miss_is_a_mandatory_violation_of_its_rule(judge, what, stack, mutation, rule):
    found = judge(mutation, stack)
    hits = [v for v in found if v.policy == rule]
    assert hits and all(v.level == "mandatory" and " must " in v.message for v in hits), (
        what,
        [(v.policy, v.level, v.message) for v in found],
    )


@pytest.mark.parametrize("what,stack,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_twin_passes_the_whole_pack(judge, what, stack, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation, stack)] == [], what


def test_an_add_on_the_stack_config_allows_passes_and_only_that_one(judge):
    """The R02 twin: an add-on reviewed for one stack (`allowedAddons`) passes; another still does not."""
    allowed = {"eks-addon-reviewed": {"allowedAddons": ["aws-efs-csi-driver"]}}
    assert judge(addon("aws-efs-csi-driver"), settings=allowed) == []
    found = judge(addon("datadog_operator"), settings=allowed)
    assert [(v.policy, v.level) for v in found] == [("eks-addon-reviewed", "mandatory")] * len(found) and found


def _advisories_only(found, rule: str, needle: str) -> None:
    hits = [v for v in found if v.policy == rule]
    assert hits and all(v.level == "advisory" for v in hits), [(v.policy, v.level, v.message) for v in found]
    assert any(needle in v.message and "unverifiable at preview" in v.message for v in hits), hits


def test_a_lambda_permission_whose_source_is_unknown_is_an_advisory(judge):
    found = judge(permission(principal="sns.amazonaws.com", sourceArn=UNKNOWN))
    _advisories_only(found, "resource-policy-principals-in-account", "Condition")


def test_a_dead_letter_target_unknown_at_preview_is_an_advisory_naming_it(judge):
    _advisories_only(judge(dead_letter(UNKNOWN)), "aws-data-path-destination-in-zone", "deadLetterConfig.targetArn")


def test_a_target_group_binding_whose_arn_is_unknown_is_an_advisory(judge):
    def mutation(resources):
        binding_copy()(resources)
        one(resources, "extra-binding")["inputs"]["spec"]["targetGroupARN"] = UNKNOWN

    _advisories_only(judge(mutation), "k8s-target-group-binding-platform-only", "spec.targetGroupARN")


def test_a_secret_in_a_namespace_whose_labels_are_unknown_is_an_advisory(judge):
    def mutation(resources):
        one(resources, "us-us-east-1-t-acme-ns")["inputs"]["metadata"]["labels"] = UNKNOWN
        copy_ = copy.deepcopy(one(resources, "us-us-east-1-api-settings"))
        copy_["name"], copy_["urn"] = "acme-copy", copy_["urn"].rsplit("::", 1)[0] + "::acme-copy"
        copy_["inputs"]["metadata"]["namespace"] = "t-acme"
        resources.append(copy_)

    found = [v for v in judge(mutation) if v.policy == "k8s-tenant-secret-own-data-only"]
    assert found and all(v.level == "advisory" and "t-acme" in v.message for v in found), found


def test_no_type_these_rules_judge_is_left_in_reviewed():
    """eks/addon, lambda/permission, Kubernetes Secrets and TargetGroupBindings left REVIEWED for rules
    that judge their values; RBAC bindings are judged, not reviewed."""
    sys.path.insert(0, str(ROOT / "policies"))
    try:
        import inventory
    finally:
        sys.path.remove(str(ROOT / "policies"))
    for type_ in (
        "aws:eks/addon:Addon",
        "aws:lambda/permission:Permission",
        "kubernetes:core/v1:Secret",
        "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    ):
        assert type_ not in inventory.REVIEWED, type_
