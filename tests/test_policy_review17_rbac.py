"""Security review 17, replayed on the us stack's real plan through the analyzer: "who can run as a
tenant's service account" by RBAC's own matching, not exact resource strings (the kubelet API by
`nodes/proxy`, subresource wildcards `pods/*` and `*/exec`, client-certificate approval, admission
webhooks, the built-in `system:` controller roles), and RBAC values unknown at preview as advisories
naming the resource and property (never "no rules", never a crashed analysis)."""

from __future__ import annotations

import pytest

from .policydata.base import UNKNOWN
from .test_policy_review16 import bound, rbac

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

DATA = "tenant-data-access"

CSR_MINTING = [
    {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get"]},
    {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"], "verbs": ["update"]},
    {
        "apiGroups": ["certificates.k8s.io"],
        "resources": ["signers"],
        "resourceNames": ["kubernetes.io/kube-apiserver-client"],
        "verbs": ["approve"],
    },
]

ATTACKS = [
    (
        "K21 the kubelet API (nodes/proxy)",
        bound("kubelet", rules=[{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get", "create"]}]),
    ),
    (
        "K22 every pod subresource (pods/*)",
        bound("pod-subs", rules=[{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create", "patch"]}]),
    ),
    (
        "K22 get on pods/* (exec and attach by the websocket upgrade, a GET)",
        bound("pod-reader", rules=[{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get", "list"]}]),
    ),
    (
        "K23 exec into every resource (*/exec)",
        bound("execs", rules=[{"apiGroups": ["*"], "resources": ["*/exec"], "verbs": ["create"]}]),
    ),
    ("K24 approve client certificates for any user or group", bound("csr-minter", rules=CSR_MINTING)),
    (
        "K24 approve certificates of every signer (no resourceNames)",
        bound("csr-any", rules=[{**r, "resourceNames": []} if r["resources"] == ["signers"] else r for r in CSR_MINTING]),
    ),
    (
        "K25 write mutating webhooks",
        bound(
            "hooks",
            rules=[
                {
                    "apiGroups": ["admissionregistration.k8s.io"],
                    "resources": ["mutatingwebhookconfigurations"],
                    "verbs": ["create", "patch", "update"],
                }
            ],
        ),
    ),
    (
        "K25 write validating webhooks",
        bound(
            "vhooks",
            rules=[
                {
                    "apiGroups": ["admissionregistration.k8s.io"],
                    "resources": ["validatingwebhookconfigurations"],
                    "verbs": ["patch"],
                }
            ],
        ),
    ),
    ("K30 the built-in replicaset-controller role", bound("system:controller:replicaset-controller")),
    ("K30 the built-in job-controller role", bound("system:controller:job-controller")),
    ("K30 the built-in node role", bound("system:node")),
]

TWINS = [
    (
        "read nodes and pods, the kubelet API untouched",
        bound(
            "node-reader",
            rules=[{"apiGroups": [""], "resources": ["nodes", "pods", "pods/log"], "verbs": ["get", "list", "watch"]}],
        ),
    ),
    (
        "create CSRs and read them, no approval",
        bound("csr-requester", rules=[r for r in CSR_MINTING if r["resources"] == ["certificatesigningrequests"]]),
    ),
    (
        "approve only the kubelet-serving signer",
        bound(
            "csr-serving",
            rules=[
                {**r, "resourceNames": ["kubernetes.io/kubelet-serving"]} if r["resources"] == ["signers"] else r
                for r in CSR_MINTING
            ],
        ),
    ),
    (
        "read webhooks",
        bound(
            "hook-reader", rules=[{"apiGroups": ["admissionregistration.k8s.io"], "resources": ["*"], "verbs": ["get", "list"]}]
        ),
    ),
    ("the built-in auth-delegator role", bound("system:auth-delegator")),
]


@pytest.mark.parametrize("what,mutation", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_way_to_run_as_a_service_account_is_a_mandatory_violation(judge, what, mutation):
    found = judge(mutation)
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory"]
    assert hits and all(" must " in v.message for v in hits), (what, [(v.policy, v.level, v.message) for v in found])
    assert any("runs code in pods" in v.message for v in hits), (what, [v.message for v in hits])


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_twin_passes_the_whole_pack(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


def edit_binding(**body):
    """The built-in `edit` bound cluster-wide to the platform API, `body` laid over the binding."""

    def mutate(resources):
        bound("edit")(resources)
        resources[-1]["inputs"].update(body)

    return mutate


def unknown_rule_field(field: str):
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], field: UNKNOWN}
    return bound("half-known", rules=[rule])


def opaque_role(resources):
    """A ClusterRole whose `rules` are unknown at preview, bound cluster-wide to the platform API."""
    bound("opaque", rules=[])(resources)
    next(r for r in resources if r["name"] == "opaque")["inputs"]["rules"] = UNKNOWN


def pool_replica_unknown(resources):
    """The pool's replication rule to a destination bucket known only after apply."""
    config = next(r for r in resources if r["name"] == "us-dr-pool-replication")
    config["inputs"]["rules"][0]["destination"]["bucket"] = UNKNOWN


UNKNOWNS = [
    ("U21 a ClusterRole's rules", opaque_role, "`rules`", "ClusterRole opaque"),
    ("U22 a binding's subjects", edit_binding(subjects=UNKNOWN), "`subjects`", "ClusterRoleBinding edit-binding"),
    ("a binding's roleRef", edit_binding(roleRef=UNKNOWN), "`roleRef`", "ClusterRoleBinding edit-binding"),
    ("a binding's role name", edit_binding(roleRef={"kind": "ClusterRole", "name": UNKNOWN}), "`roleRef`", "edit-binding"),
    (
        "one subject's name",
        edit_binding(subjects=[{"kind": "ServiceAccount", "namespace": "platform", "name": UNKNOWN}]),
        "subjects",
        "edit-binding",
    ),
    ("a rule's verbs", unknown_rule_field("verbs"), "`rules`", "ClusterRole half-known"),
    ("a rule's resources", unknown_rule_field("resources"), "`rules`", "ClusterRole half-known"),
    ("the pool's replica bucket (a copy of tenant data)", pool_replica_unknown, "destination", "us-dr-pool-replication"),
]


@pytest.mark.parametrize("what,mutation,prop,resource", UNKNOWNS, ids=[u[0] for u in UNKNOWNS])
def test_an_unknown_rbac_value_is_an_advisory_naming_it_never_silence_nor_a_crash(judge, what, mutation, prop, resource):
    found = judge(mutation)
    assert [(v.policy, v.message) for v in found if v.level == "mandatory"] == [], what
    advisories = [v.message for v in found if v.policy == DATA]
    assert any(m.startswith("unverifiable at preview: ") and prop in m and resource in m for m in advisories), (
        what,
        [(v.policy, v.level, v.message) for v in found],
    )


# --- admission backstops taking parameters (A01) ---------------------------------------------------

BACKSTOPS = "runtime-backstops-enforced"
WORKLOADS_VAP = "us-us-east-1-admission-meridian-tenant-workloads"


def admission(policy=None, binding=None):
    """Lay `policy` over the workloads VAP's spec and `binding` over its binding's spec."""

    def mutate(resources):
        for name, extra in ((WORKLOADS_VAP, policy), (f"{WORKLOADS_VAP}-binding", binding)):
            if extra is not None:
                next(r for r in resources if r["name"] == name)["inputs"]["spec"].update(extra)

    return mutate


PARAM_KIND = {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}
PARAM_REF = {"paramRef": {"name": "meridian-off", "namespace": "platform", "parameterNotFoundAction": "Allow"}}


@pytest.mark.parametrize(
    "what,mutation,says",
    [
        ("A01 paramKind on the policy, paramRef Allow on its binding", admission(PARAM_KIND, PARAM_REF), "`paramRef`"),
        ("paramKind on the policy alone", admission(PARAM_KIND), "`paramKind`"),
        ("paramRef on the binding alone", admission(binding=PARAM_REF), "`paramRef`"),
        (
            "paramRef denying when the parameter is absent",
            admission(PARAM_KIND, {"paramRef": {"selector": {}, "parameterNotFoundAction": "Deny"}}),
            "`paramRef`",
        ),
    ],
    ids=["A01", "paramKind", "paramRef", "paramRef-deny"],
)
def test_a_backstop_taking_parameters_is_a_mandatory_violation(judge, what, mutation, says):
    found = [v for v in judge(mutation) if v.policy == BACKSTOPS]
    assert found and all(v.level == "mandatory" and " must " in v.message for v in found), (what, found)
    assert any(says in v.message and "meridian-tenant-workloads" in v.message for v in found), (what, [v.message for v in found])


def test_a_backstop_whose_binding_takes_parameters_is_not_counted_as_armed(judge):
    """The binding with `paramRef` is the policy's only one: the policy has no binding that denies."""
    messages = [v.message for v in judge(admission(binding=PARAM_REF)) if v.policy == BACKSTOPS]
    assert any("must have a binding that denies" in m for m in messages), messages


# --- read-only ClusterRoles aggregated into view (L28) ---------------------------------------------

SCOPED = "k8s-rbac-binding-scoped"
TO_VIEW = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
READ_WIDGETS = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}


def aggregated(rules, **extra):
    """A ClusterRole labelled to aggregate into view (no binding of its own)."""
    body = {"metadata": {"name": "widget-reader", "labels": TO_VIEW}, "rules": rules, **extra}
    return lambda resources: resources.append(rbac("ClusterRole", "widget-reader", body))


def test_l28_a_read_only_custom_resource_role_aggregated_into_view_passes_the_whole_pack(judge):
    assert [(v.policy, v.level, v.message) for v in judge(aggregated([READ_WIDGETS]))] == []


@pytest.mark.parametrize(
    "what,mutation",
    [
        ("reads Secrets", aggregated([READ_WIDGETS, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])),
        ("reads every resource", aggregated([{**READ_WIDGETS, "resources": ["*"]}])),
        ("gets pods/exec (exec by the websocket upgrade)", aggregated([{**READ_WIDGETS, "resources": ["pods/exec"]}])),
        ("creates widgets", aggregated([{**READ_WIDGETS, "verbs": ["get", "create"]}])),
        ("reads non-resource URLs", aggregated([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])),
        (
            "aggregates admin's rules itself",
            aggregated(
                [],
                aggregationRule={
                    "clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]
                },
            ),
        ),
    ],
    ids=["secrets", "star", "pods-exec", "create", "non-resource", "aggregates"],
)
def test_a_role_aggregated_into_view_that_does_more_than_read_is_a_mandatory_violation(judge, what, mutation):
    found = [v for v in judge(mutation) if v.policy == SCOPED]
    assert found and all(v.level == "mandatory" and "must not aggregate" in v.message for v in found), (what, found)


def test_a_role_aggregated_into_view_whose_rules_are_unknown_is_an_advisory(judge):
    found = [v for v in judge(aggregated(UNKNOWN)) if v.policy == SCOPED]
    assert [v.level for v in found] == ["advisory"] and "rules" in found[0].message, found
