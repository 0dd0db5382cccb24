"""Misses of security review 15 (/work/wt/review-security-15.md) in the cluster half of the pack,
replayed on the us stack's real plan through the analyzer: admission backstops present but scoped to
nothing (E22/E23), a tenant namespace without its label (E29), EKS access outside the entries
(E09/E10), roles held through add-ons (O01/O11), exempt-namespace workloads (T15), Pod Security
"restricted" fields (E16-E19, E21), a tenant role able to grant its key (T14), and references the
pack cannot resolve (E12, L04). Each attack must draw the named rule's mandatory violation; each
legitimate twin draws nothing."""

from __future__ import annotations

import copy
import json

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate

from .helpers import ROOT
from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

PRIMARY = "us-us-east-1"
VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def _vap_spec(resources, policy: str) -> dict:
    return one(resources, f"{PRIMARY}-admission-{policy}", VAP)["inputs"]["spec"]


def match_condition(expression: str):
    def mutate(resources):
        _vap_spec(resources, "meridian-tenant-workloads")["matchConditions"] = [{"name": "c", "expression": expression}]

    return mutate


def workload_operations(*operations: str):
    def mutate(resources):
        for rule in _vap_spec(resources, "meridian-tenant-workloads")["matchConstraints"]["resourceRules"]:
            rule["operations"] = list(operations)

    return mutate


def workload_resources_narrowed(resources):
    rules = _vap_spec(resources, "meridian-tenant-workloads")["matchConstraints"]["resourceRules"]
    next(r for r in rules if r["apiGroups"] == ["apps"])["resources"] = ["deployments"]


def daemonsets_excluded(resources):
    _vap_spec(resources, "meridian-tenant-workloads")["matchConstraints"]["excludeResourceRules"] = [
        {"apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["daemonsets"], "operations": ["*"]}
    ]


def role_bindings_create_only(resources):
    _vap_spec(resources, "meridian-tenant-role-bindings")["matchConstraints"]["resourceRules"][0]["operations"] = ["CREATE"]


def binding_actions(*actions: str):
    def mutate(resources):
        binding = one(resources, f"{PRIMARY}-admission-meridian-tenant-cluster-bindings-binding")
        binding["inputs"]["spec"]["validationActions"] = list(actions)

    return mutate


def binding_rules_narrowed(resources):
    spec = one(resources, f"{PRIMARY}-admission-meridian-tenant-workloads-binding")["inputs"]["spec"]
    spec["matchResources"]["resourceRules"] = [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE", "UPDATE"]}
    ]


def copied(resources, name: str, new_name: str, **inputs) -> dict:
    """A copy of resource `name` under `new_name`, its inputs updated (appended to the plan)."""
    r = copy.deepcopy(one(resources, name))
    r["name"], r["urn"] = new_name, r["urn"].rsplit("::", 1)[0] + "::" + new_name
    r["inputs"].update(inputs)
    resources.append(r)
    return r


def acme_unlabelled(resources):
    one(resources, f"{PRIMARY}-t-acme-ns")["inputs"]["metadata"]["labels"].pop("meridian.io/tenant")


def acme_renamed_unlabelled(resources):
    metadata = one(resources, f"{PRIMARY}-t-acme-ns")["inputs"]["metadata"]
    metadata["labels"].pop("meridian.io/tenant")
    metadata["name"] = "acme"
    one(resources, f"{PRIMARY}-t-acme-identity")["inputs"]["namespace"] = "acme"


def namespace(name: str):
    def mutate(resources):
        copied(resources, f"{PRIMARY}-t-acme-ns", f"{name}-ns", metadata={"name": name, "labels": {}})

    return mutate


def tenant_role_into_scratch(resources):
    namespace("scratch")(resources)
    association = copied(resources, f"{PRIMARY}-t-acme-identity", "scratch-identity", namespace="scratch")
    association["inputs"].pop("tags")


def access_config(**settings):
    def mutate(resources):
        one(resources, f"{PRIMARY}-eks-eks", "aws:eks/cluster:Cluster")["inputs"]["accessConfig"].update(settings)

    return mutate


ATTACKS = [
    ("E22 the workloads VAP skipped by `matchConditions: false`", match_condition("false"), "runtime-backstops-enforced"),
    (
        "E22 the workloads VAP skipped for system users",
        match_condition("!request.userInfo.username.startsWith('system:')"),
        "runtime-backstops-enforced",
    ),
    ("E23 the workloads VAP matching DELETE only", workload_operations("DELETE"), "runtime-backstops-enforced"),
    ("E23 the workloads VAP on CREATE only", workload_operations("CREATE"), "runtime-backstops-enforced"),
    ("E23 the workloads VAP on Deployments only of apps", workload_resources_narrowed, "runtime-backstops-enforced"),
    ("E23 DaemonSets excluded from the workloads VAP", daemonsets_excluded, "runtime-backstops-enforced"),
    ("E23 the role-bindings VAP on CREATE only", role_bindings_create_only, "runtime-backstops-enforced"),
    ("the cluster-bindings binding on Warn", binding_actions("Warn"), "runtime-backstops-enforced"),
    ("the workloads binding narrowed to Pods", binding_rules_narrowed, "runtime-backstops-enforced"),
    ("E29 t-acme without the tenant label", acme_unlabelled, "tenant-namespace-guarded"),
    ("E29 acme's namespace renamed off the prefix, unlabelled", acme_renamed_unlabelled, "tenant-namespace-guarded"),
    ("E29 the tenants' role associated into an unlabelled namespace", tenant_role_into_scratch, "tenant-namespace-guarded"),
    (
        "E09 the cluster making its creator admin",
        access_config(bootstrapClusterCreatorAdminPermissions=True),
        "eks-access-platform-roles-only",
    ),
    (
        "E10 the cluster reading aws-auth too",
        access_config(authenticationMode="API_AND_CONFIG_MAP"),
        "eks-access-platform-roles-only",
    ),
]

TWINS = [
    ("the workloads VAP with `matchConditions: true`", match_condition(" true ")),
    ("the workloads VAP on every operation", workload_operations("*")),
    ("the cluster-bindings binding denying and auditing", binding_actions("Deny", "Audit")),
    ("an unlabelled namespace nothing ties to a tenant", namespace("tools")),
]


@pytest.fixture(scope="module")
def judge(previews):
    plan = previews["us"].plan["resources"]
    config = json.loads((ROOT / "policies" / "config" / "us.json").read_text())
    with Analyzer(ROOT / "policies") as analyzer:
        analyzer.configure(effective_config(analyzer.wait_ready(), config, "us"))

        def run(mutation=None):
            resources = copy.deepcopy(plan)
            if mutation:
                mutation(resources)
            return evaluate(analyzer, [Subject.from_dict(r) for r in resources])

        yield run


def test_the_rendered_plan_draws_no_violation(judge):
    assert [(v.policy, v.message) for v in judge()] == []


@pytest.mark.parametrize("what,mutation,rule", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_attack_on_the_real_plan_is_a_mandatory_violation(judge, what, mutation, rule):
    violations = judge(mutation)
    found = [v for v in violations if v.policy == rule]
    assert found and all(v.level == "mandatory" and " must " in v.message for v in found), (
        what,
        [(v.policy, v.level, v.message) for v in violations],
    )


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_a_cluster_access_mode_unknown_at_preview_is_an_advisory_naming_it(judge):
    violations = judge(access_config(authenticationMode=UNKNOWN))
    assert [(v.policy, v.level) for v in violations] == [("eks-access-platform-roles-only", "advisory")]
    assert "accessConfig.authenticationMode" in violations[0].message


def test_each_legitimate_twin_on_the_real_plan_passes(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what
