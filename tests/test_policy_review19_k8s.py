"""Security review 19's Kubernetes misses, replayed on real plans through the analyzer, one mutation
each: a tenant cluster pair's guards that no stack judged (P01, P08: its admission backstops; P11,
P11c: the VPC CNI add-on that enforces NetworkPolicies), RBAC to the PR preview role's Kubernetes
identity (H14), a stack's `reviewedTypes` listing the Patch form of a judged kind (R01, R02), and a
tenant's pod identity whose namespace cannot be decided at preview (silent before). Each attack is a
mandatory violation (an unknown an advisory); each legitimate twin passes."""

from __future__ import annotations

import copy
import json

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate
from meridian.engine.policy.generated import with_platform

from .helpers import ROOT, assert_mandatory, both, run_meridian
from .test_policy_review16 import ACCOUNT, TENANT_ROLE, one, role_arn
from .test_policy_review18_controls import added
from .test_policy_review18_keys import association
from .test_program_cells import _previews
from .test_program_pairs import CELL, _zone_with_a_pair

pytestmark = pytest.mark.slow  # the pair project and the `judge` fixture preview real stacks

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an output unknown at preview
BACKSTOPS, ADDONS, RBAC, REVIEWED = (
    "runtime-backstops-enforced",
    "eks-addon-reviewed",
    "k8s-rbac-binding-scoped",
    "pack-resource-type-reviewed",
)
PR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/meridian-preview"  # policies/config/us.json prCodePrincipals


def mandatory(violations, rule: str | None = None) -> list:
    return [v for v in violations if v.level == "mandatory" and rule in (None, v.policy)]


def shown(violations) -> list:
    return [(v.policy, v.level, v.message) for v in violations]


def without(predicate):
    return lambda resources: resources.__setitem__(slice(None), [r for r in resources if not predicate(r)])


# --- a platform with a tenant cluster pair, and its cell ---------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> dict:
    """The pair project's plans (`us` with pair 1, `us-cell-002` on it) and each stack's policy config."""
    project = _zone_with_a_pair(tmp_path_factory.mktemp("pairs"))
    plans = _previews(project, "us", CELL)
    res = run_meridian("policy", "--stack", CELL, "--write-config", cwd=project)
    assert res.code == 0, res
    configs = {s: json.loads((project / "policies" / "config" / f"{s}.json").read_text()) for s in ("us", CELL)}
    return {"plans": plans, "configs": configs}


@pytest.fixture(scope="module")
def pair_judge(pair):
    """`run(mutation, stack, settings)`: `us` (the pair platform alone), `cell` (the cell alone) or `zone` (the
    cell beside its platform, as its preview judges it: the platform's resources as stack context, findings on
    them dropped, the config `with_platform`), with `mutation` applied to the platform's resources."""
    with Analyzer(ROOT / "policies") as analyzer:
        info = analyzer.wait_ready()

        def run(mutation=None, stack: str = "us", settings: dict | None = None) -> list:
            platform = copy.deepcopy(pair["plans"]["us"]["resources"])
            if mutation:
                mutation(platform)
            name = "us" if stack == "us" else CELL
            config = copy.deepcopy(pair["configs"][name])
            if stack == "zone":
                config = with_platform(config)
            for rule, values in (settings or {}).items():
                config[rule] = {**config.get(rule, {}), **values}
            analyzer.configure(effective_config(info, config, name))
            if stack == "us":
                return evaluate(analyzer, [Subject.from_dict(r) for r in platform])
            cell = [Subject.from_dict(r) for r in pair["plans"][CELL]["resources"]]
            if stack == "cell":
                return evaluate(analyzer, cell)
            context = [Subject.from_dict(r) for r in platform]
            providers = {s.urn: s for s in [*cell, *context] if s.type.startswith("pulumi:providers:")}
            found = [v for s in cell if s.type != "pulumi:pulumi:Stack" for v in analyzer.analyze(s, providers)]
            found += analyzer.analyze_stack([*cell, *context], providers)
            return [v for v in found if v.urn not in {s.urn for s in context}]

        yield run


PAIR_BACKSTOPS = lambda r: "us-us-east-1-admission-1" in r["name"]  # noqa: E731  (pair 1's, us-east-1)


def test_the_pair_zone_passes_with_nothing_to_report(pair_judge):
    """The twins: the pair platform, its cell alone, and the cell beside its platform (no advisory either: the
    pair cluster's guards are judged on the platform's real resources)."""
    assert shown(pair_judge()) == []
    assert shown(mandatory(pair_judge(stack="cell"))) == []
    assert shown(pair_judge(stack="zone")) == []


def test_p01_a_pair_clusters_admission_backstops_removed(pair_judge):
    violations = pair_judge(without(PAIR_BACKSTOPS))
    assert_mandatory(violations, BACKSTOPS, "P01: the pair cluster's backstops removed")
    assert any("us-us-east-1-eks-1 runs tenants" in v.message for v in mandatory(violations, BACKSTOPS)), shown(violations)


def test_p01_beside_the_cell_is_the_cells_own_violation_too(pair_judge):
    """Z01: the cell judged beside its platform (its preview) refuses the pair cluster its tenants run on without
    the backstops, no longer an advisory deferring to the platform (whose own run refuses it on the cluster)."""
    violations = pair_judge(without(PAIR_BACKSTOPS), stack="zone")
    assert_mandatory(violations, BACKSTOPS, "Z01: P01 beside the cell")


def test_p08_a_pair_clusters_binding_set_to_audit(pair_judge):
    def audit(resources):
        one(resources, "us-us-east-1-admission-1-meridian-tenant-workloads-binding")["inputs"]["spec"]["validationActions"] = [
            "Audit"
        ]

    assert_mandatory(pair_judge(audit), BACKSTOPS, "P08: the pair's tenant-workloads binding on Audit")


@pytest.mark.parametrize("cluster", ["us-us-east-1-eks-1", "us-us-east-1-eks"], ids=["P11-pair", "P11c-pair-0"])
def test_p11_a_tenant_clusters_vpc_cni_add_on_removed(pair_judge, cluster):
    violations = pair_judge(without(lambda r: r["name"] == f"{cluster}-vpc-cni"))
    assert_mandatory(violations, ADDONS, f"{cluster}'s vpc-cni removed")
    assert any(f"EKS cluster {cluster} runs tenants" in v.message for v in mandatory(violations, ADDONS)), shown(violations)


def test_a_cluster_declared_tenant_free_needs_neither(pair_judge):
    """`clustersWithoutTenants` is how a stack says a cluster runs no tenant: then neither the backstops nor the
    vpc-cni add-on is required there (and only there: pair 0's removal is still refused)."""
    free = {"clustersWithoutTenants": ["us-us-east-1-eks-1"]}
    gone = without(lambda r: PAIR_BACKSTOPS(r) or r["name"] == "us-us-east-1-eks-1-vpc-cni")
    assert shown(mandatory(pair_judge(gone, settings={BACKSTOPS: free, ADDONS: free}))) == []
    pair0 = without(lambda r: r["name"] == "us-us-east-1-eks-vpc-cni")
    assert_mandatory(pair_judge(pair0, settings={ADDONS: free}), ADDONS, "pair 0 is not declared tenant-free")


def test_a_tenant_cluster_no_provider_is_built_from(pair_judge):
    """The backstops of a cluster reach it only through a provider built from it: with the pair provider's link
    to its cluster cut, nothing of the plan installs them there."""

    def cut(resources):
        one(resources, "us-us-east-1-eks-1-k8s", "providers:kubernetes")["propertyDependencies"]["kubeconfig"] = []

    violations = pair_judge(cut)
    assert any(
        "us-us-east-1-eks-1 runs tenants" in v.message and "no provider of the plan is" in v.message
        for v in mandatory(violations, BACKSTOPS)
    ), shown(violations)


# --- the shipped stacks --------------------------------------------------------------------------------


def test_shipped_us_plan_passes_with_nothing_to_report(judge):
    assert shown(judge()) == []


@pytest.mark.parametrize("stack", ["eu", "apac"])
def test_shipped_plans_pass_with_nothing_to_report(judge, stack):
    assert shown(judge(stack=stack)) == []


# H14: the PR preview role's Kubernetes identity given RBAC beyond `view`

SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/meridian-preview/pr-preview"
SECRETS_ROLE = {
    "metadata": {"name": "pr-secrets", "namespace": "platform"},
    "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
}


def rbac_binding(subject: dict, role: tuple[str, str] = ("Role", "pr-secrets"), namespace: str | None = "platform"):
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    metadata = {"name": f"pr-{subject['name'][-12:].strip('/{}')}", **({"namespace": namespace} if namespace else {})}
    return added(
        "us-us-east-1-t-acme-ns",
        f"kubernetes:rbac.authorization.k8s.io/v1:{kind}",
        f"h14-{kind}-{subject['name'][-12:]}",
        {
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role[0], "name": role[1]},
            "subjects": [{**subject, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )


SECRETS = added("us-us-east-1-t-acme-ns", "kubernetes:rbac.authorization.k8s.io/v1:Role", "pr-secrets", SECRETS_ROLE)


def with_pr_entry(**settings):
    """Every access entry of the PR role with `settings` (a username, Kubernetes groups)."""

    def mutate(resources):
        for r in resources:
            if r["type"] == "aws:eks/accessEntry:AccessEntry" and r["inputs"].get("principalArn") == PR_ROLE:
                r["inputs"].update(settings)

    return mutate


H14_ATTACKS = [
    ("H14 session username", both(SECRETS, rbac_binding({"kind": "User", "name": SESSION}))),
    (
        "H14 EKS's username template",
        both(
            SECRETS,
            rbac_binding({"kind": "User", "name": f"arn:aws:sts::{ACCOUNT}:assumed-role/meridian-preview/{{{{SessionName}}}}"}),
        ),
    ),
    ("H14 the role ARN", both(SECRETS, rbac_binding({"kind": "User", "name": PR_ROLE}))),
    (
        "H14 cluster-wide admin to a session",
        rbac_binding({"kind": "User", "name": SESSION}, role=("ClusterRole", "admin"), namespace=None),
    ),
    (
        "H14 edit in a namespace",
        rbac_binding({"kind": "User", "name": SESSION}, role=("ClusterRole", "edit")),
    ),
    (
        "H14 the entry's own username",
        both(SECRETS, with_pr_entry(userName="pr-bot"), rbac_binding({"kind": "User", "name": "pr-bot"})),
    ),
    (
        "H14 the entry's username template",
        both(SECRETS, with_pr_entry(userName="ci:{{SessionName}}"), rbac_binding({"kind": "User", "name": "ci:run-17"})),
    ),
    (
        "H14 a group the entry puts the role in",
        both(SECRETS, with_pr_entry(kubernetesGroups=["pr-readers"]), rbac_binding({"kind": "Group", "name": "pr-readers"})),
    ),
]


@pytest.mark.parametrize("mutation", [a[1] for a in H14_ATTACKS], ids=[a[0] for a in H14_ATTACKS])
def test_h14_rbac_to_the_pr_roles_identity_beyond_view(judge, mutation):
    violations = judge(mutation)
    assert_mandatory(violations, RBAC, "RBAC to the PR role's Kubernetes identity")
    assert any("prCodePrincipals" in v.message for v in mandatory(violations, RBAC)), shown(violations)


def test_h14_twins_view_to_the_pr_session_and_secrets_to_an_operator_pass(judge):
    """`view` (no Secrets) to the PR role's session is what its access policy gives anyway; the Secrets role bound
    to an operator's session is the operators' (outside tenant namespaces, as before)."""
    view = rbac_binding({"kind": "User", "name": SESSION}, role=("ClusterRole", "view"))
    operator = rbac_binding({"kind": "User", "name": f"arn:aws:sts::{ACCOUNT}:assumed-role/meridian-oncall/alice"})
    assert shown(mandatory(judge(view))) == []
    assert shown(mandatory(judge(both(SECRETS, operator)))) == []


# R01 / R02: reviewedTypes listing the Patch form of a judged kind


def patch(type_: str, name: str, inputs: dict):
    return added("us-us-east-1-t-acme-ns", type_, name, inputs)


def reviewing(type_: str) -> dict:
    return {REVIEWED: {"reviewedTypes": [{"type": type_, "reason": "patched by the platform team, reviewed by hand"}]}}


NAMESPACE_PATCH = "kubernetes:core/v1:NamespacePatch"
BINDING_PATCH = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBindingPatch"


@pytest.mark.parametrize(
    "type_,mutation",
    [
        (
            NAMESPACE_PATCH,
            patch(
                NAMESPACE_PATCH,
                "acme-privileged",
                {"metadata": {"name": "t-acme", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
            ),
        ),
        (
            BINDING_PATCH,
            patch(
                BINDING_PATCH,
                "workloads-audit",
                {"metadata": {"name": "meridian-tenant-workloads"}, "spec": {"validationActions": ["Audit"]}},
            ),
        ),
    ],
    ids=["R01", "R02"],
)
def test_r01_reviewed_types_may_not_list_the_patch_of_a_judged_kind(judge, type_, mutation):
    violations = judge(mutation, settings=reviewing(type_))
    hits = mandatory(violations, REVIEWED)
    assert any("reviewedTypes" in v.message and type_ in v.message for v in hits), shown(violations)


def test_r01_twin_the_patch_of_a_kind_no_rule_judges_may_be_reviewed(judge):
    type_ = "kubernetes:core/v1:LimitRangePatch"
    found = judge(patch(type_, "limits", {"metadata": {"name": "limits", "namespace": "platform"}}), settings=reviewing(type_))
    assert shown(mandatory(found)) == []


# unknowns are never silent: a tenant's pod identity whose namespace the plan may or may not create


def unknown_namespace(resources):
    like = copy.deepcopy(one(resources, "us-us-east-1-t-acme-ns", "core/v1:Namespace"))
    like["name"], like["urn"] = "later-ns", like["urn"].rsplit("::", 1)[0] + "::later-ns"
    like["inputs"]["metadata"] = {**like["inputs"]["metadata"], "name": UNKNOWN}
    resources.append(like)


def test_a_tenant_pod_identity_beside_a_namespace_named_only_after_apply_is_an_advisory(judge):
    shadow = association("shadow", "t-acme-shadow", "acme-app", role=lambda rs: role_arn(rs, TENANT_ROLE))
    violations = judge(both(unknown_namespace, shadow))
    hits = [v for v in violations if v.policy == "tenant-namespace-guarded" and "shadow" in v.message]
    assert hits and all(v.level == "advisory" for v in hits), shown(violations)
    assert any("unverifiable at preview" in v.message and "t-acme-shadow" in v.message for v in hits), shown(hits)


def test_the_shipped_plan_with_a_namespace_named_only_after_apply_reports_no_association(judge):
    """The twin: the tenants' own associations are in namespaces the plan creates by name: nothing to report on them."""
    violations = judge(unknown_namespace)
    assert not [v for v in violations if v.policy == "tenant-namespace-guarded" and "association" in v.message.lower()]
