"""Security review 17, structural weakness 6, replayed on the us stack's real plan through the analyzer:
every spec field of each admission backstop and of each of its bindings is pinned to what the program
renders (components.admission, through `renderedSpecs` in the pack config), not only the fields someone
thought of. A field the program does not render, or renders otherwise, is a mandatory violation naming
it; a value unknown at preview is an advisory naming it; what only denies more (validations reordered,
the API server's own defaults written out, an Audit record beside Deny) passes."""

from __future__ import annotations

import copy

import pytest

from .policydata.base import UNKNOWN
from .test_policy_review16 import one

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

BACKSTOPS = "runtime-backstops-enforced"
WORKLOADS = "us-us-east-1-admission-meridian-tenant-workloads"
ROLE_BINDINGS = "us-us-east-1-admission-meridian-tenant-role-bindings"
CLUSTER_BINDINGS = "us-us-east-1-admission-meridian-tenant-cluster-bindings"
VAP = ":ValidatingAdmissionPolicy"


def spec(resources, name: str) -> dict:
    """The spec of policy `name` (or of its binding: `name` ending `-binding`)."""
    return one(resources, name, VAP)["inputs"]["spec"]


def laid(name: str, **fields):
    """`fields` laid over the spec of `name` (dotted keys reach into a nested map)."""

    def mutate(resources):
        for path, value in fields.items():
            *parents, last = path.split("__")
            target = spec(resources, name)
            for p in parents:
                target = target.setdefault(p, {})
            target[last] = value

    return mutate


def second_binding(**overrides):
    """A copy of the workloads policy's binding under another name, `overrides` laid over its spec."""

    def mutate(resources):
        copied = copy.deepcopy(one(resources, f"{WORKLOADS}-binding", VAP))
        copied["name"] = "workloads-extra"
        copied["urn"] = copied["urn"].rsplit("::", 1)[0] + "::workloads-extra"
        copied["inputs"]["metadata"] = {"name": "meridian-tenant-workloads-extra"}
        copied["inputs"]["spec"].update(overrides)
        resources.append(copied)

    return mutate


LEAKING_ANNOTATION = [
    {"key": "env", "valueExpression": "string(variables.containers.map(c, has(c.env) ? c.env : []))"},
]
SKIP_LABEL = {"matchExpressions": [{"key": "meridian.io/skip-admission", "operator": "DoesNotExist"}]}

# (what, mutation, the field the violation must name)
ATTACKS = [
    (
        "audit annotations writing every tenant pod's environment (its secrets) into the audit log",
        laid(WORKLOADS, auditAnnotations=LEAKING_ANNOTATION),
        "spec.auditAnnotations",
    ),
    (
        "the policy matching only the exact API version (`matchPolicy: Exact`)",
        laid(WORKLOADS, matchConstraints__matchPolicy="Exact"),
        "spec.matchConstraints.matchPolicy",
    ),
    (
        "the binding matching only the exact API version",
        laid(f"{WORKLOADS}-binding", matchResources__matchPolicy="Exact"),
        "spec.matchResources.matchPolicy",
    ),
    ("paramKind naming Secrets", laid(ROLE_BINDINGS, paramKind={"apiVersion": "v1", "kind": "Secret"}), "`paramKind`"),
    ("paramRef by name alone", laid(f"{ROLE_BINDINGS}-binding", paramRef={"name": "meridian-off"}), "`paramRef`"),
    (
        "paramRef by selector, Allow when none is found",
        laid(f"{CLUSTER_BINDINGS}-binding", paramRef={"selector": {}, "parameterNotFoundAction": "Allow"}),
        "`paramRef`",
    ),
    (
        "the binding named like the backstop pointing at another policy (`policyName`)",
        laid(f"{WORKLOADS}-binding", policyName="meridian-tenant-workloads-v2"),
        "spec.policyName",
    ),
    ("a second binding of the same policy that only warns", second_binding(validationActions=["Warn"]), "validationActions"),
    ("a second binding of the same policy that only audits", second_binding(validationActions=["Audit"]), "validationActions"),
    (
        "the binding skipping objects that carry a label (`objectSelector`)",
        laid(f"{WORKLOADS}-binding", matchResources__objectSelector=SKIP_LABEL),
        "objectSelector",
    ),
    (
        "the binding excluding bare pods (`excludeResourceRules`)",
        laid(
            f"{WORKLOADS}-binding",
            matchResources__excludeResourceRules=[
                {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE", "UPDATE"]}
            ],
        ),
        "excludeResourceRules",
    ),
    (
        "the binding's namespaceSelector narrowed to labelled tenants",
        laid(f"{ROLE_BINDINGS}-binding", matchResources__namespaceSelector={"matchLabels": {"meridian.io/tenant": "acme"}}),
        "namespaceSelector",
    ),
    (
        "a validation action the API does not define",
        laid(f"{WORKLOADS}-binding", validationActions=["Deny", "Skip"]),
        "validationActions",
    ),
    (
        "a validation whose message expression prints a refused pod's environment",
        lambda rs: spec(rs, WORKLOADS)["validations"][0].update(
            messageExpression="string(variables.containers.map(c, has(c.env) ? c.env : []))"
        ),
        "spec.validations[].messageExpression",
    ),
    (
        "a spec field the program never renders on the policy",
        laid(WORKLOADS, reinvocationPolicy="IfNeeded"),
        "spec.reinvocationPolicy",
    ),
    ("a spec field the program never renders on the binding", laid(f"{WORKLOADS}-binding", bypass=True), "spec.bypass"),
    (
        "a spec field the program never renders in matchConstraints",
        laid(WORKLOADS, matchConstraints__namespaces=["t-acme"]),
        "spec.matchConstraints.namespaces",
    ),
]


@pytest.mark.parametrize("what,mutation,field", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_field_not_as_rendered_is_a_mandatory_violation_naming_it(judge, what, mutation, field):
    found = judge(mutation)
    hits = [v for v in found if v.policy == BACKSTOPS]
    assert hits and all(v.level == "mandatory" and " must " in v.message for v in hits), (
        what,
        [(v.policy, v.level, v.message) for v in found],
    )
    assert any(field in v.message for v in hits), (what, [v.message for v in hits])
    assert {v.policy for v in found} == {BACKSTOPS}, (what, [(v.policy, v.message) for v in found])


UNKNOWNS = [
    ("the policy's audit annotations", laid(WORKLOADS, auditAnnotations=UNKNOWN), "auditAnnotations", WORKLOADS),
    ("the binding's paramRef", laid(f"{WORKLOADS}-binding", paramRef=UNKNOWN), "paramRef", f"{WORKLOADS}-binding"),
    ("the policy's matchPolicy", laid(WORKLOADS, matchConstraints__matchPolicy=UNKNOWN), "matchPolicy", WORKLOADS),
    ("the binding's policyName", laid(f"{ROLE_BINDINGS}-binding", policyName=UNKNOWN), "policyName", f"{ROLE_BINDINGS}-binding"),
]


@pytest.mark.parametrize("what,mutation,field,resource", UNKNOWNS, ids=[u[0] for u in UNKNOWNS])
def test_a_field_unknown_at_preview_is_an_advisory_naming_it(judge, what, mutation, field, resource):
    found = judge(mutation)
    assert [(v.policy, v.message) for v in found if v.level == "mandatory"] == [], what
    advisories = [v for v in found if v.policy == BACKSTOPS]
    assert any(
        v.message.startswith("unverifiable at preview: ") and field in v.message and v.urn.endswith(f"::{resource}")
        for v in advisories
    ), (what, [(v.level, v.urn, v.message) for v in found])


def reordered(resources):
    """Review 17 L21: the validations reversed and one duplicated."""
    validations = spec(resources, WORKLOADS)["validations"]
    validations[:] = list(reversed(validations)) + [copy.deepcopy(validations[0])]


TWINS = [
    ("L21 validations reordered, one duplicated", reordered),
    (
        "the API server's defaults written out (matchPolicy Equivalent, empty object selectors)",
        lambda rs: [
            laid(WORKLOADS, matchConstraints__matchPolicy="Equivalent", matchConstraints__objectSelector={})(rs),
            laid(f"{WORKLOADS}-binding", matchResources__matchPolicy="Equivalent", matchResources__objectSelector={})(rs),
            laid(CLUSTER_BINDINGS, failurePolicy="Fail", auditAnnotations=[])(rs),
        ],
    ),
    ("Deny with an Audit record", laid(f"{ROLE_BINDINGS}-binding", validationActions=["Deny", "Audit"])),
    ("a second binding that denies everywhere the first does", second_binding()),
]


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_twin_passes_the_whole_pack(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what
