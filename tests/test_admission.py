"""The tenant admission policies (components.admission), their CEL evaluated by cel-python on the
objects an attacker or a careless chart would send, and the rendered policies in each cluster.

What is not proven here: how the API server's own CEL runtime (cel-go, with Kubernetes' extension
libraries) treats these expressions. cel-python implements the CEL spec the expressions keep to
(`has`, `all`, `in`, `startsWith`, the conditional), no Kubernetes-only function is used, and the
structure (match rules, namespace selector, binding, Deny) is asserted on the rendered plan.
"""

from __future__ import annotations

import copy

import pytest

from components.admission import TenantAdmissionArgs, admission_policies
from components.naming import NAMESPACE_PREFIX
from components.tenant import TENANT_LABEL

celpy = pytest.importorskip("celpy", reason="cel-python (constraints.txt) evaluates the admission policies' CEL")

POLICIES = admission_policies(TenantAdmissionArgs(tenant_label=TENANT_LABEL, namespace_prefix=NAMESPACE_PREFIX))
NAMESPACE = {"metadata": {"name": "t-acme", "labels": {TENANT_LABEL: "acme", "kubernetes.io/metadata.name": "t-acme"}}}
LABELS = {TENANT_LABEL: "acme", "app": "x"}


def to_cel(value):
    """JSON -> CEL values with booleans kept boolean (cel-python's json_to_cel turns True into 1; the API
    server types each field from the object's schema)."""
    t = celpy.celtypes
    if type(value).__module__ == t.__name__:
        return value  # already a CEL value (a variable's result)
    if isinstance(value, bool):
        return t.BoolType(value)
    if isinstance(value, int):
        return t.IntType(value)
    if isinstance(value, str):
        return t.StringType(value)
    if isinstance(value, dict):
        return t.MapType({t.StringType(k): to_cel(v) for k, v in value.items()})
    if isinstance(value, list):
        return t.ListType([to_cel(v) for v in value])
    return value


def _program(expression: str):
    env = celpy.Environment()
    return env.program(env.compile(expression))


def failed(policy: str, obj: dict, namespace: str = "t-acme") -> list[str]:
    """The messages of `policy`'s validations that deny `obj` (evaluated as the API server would)."""
    spec = POLICIES[policy]
    activation = {
        "object": obj,
        "namespaceObject": NAMESPACE if namespace == "t-acme" else {"metadata": {"name": namespace, "labels": {}}},
        "request": {"namespace": namespace, "operation": "CREATE"},
    }
    variables: dict = {}
    for variable in spec.get("variables", []):  # in order: a variable may read the ones before it
        cel = to_cel({**activation, "variables": variables})
        variables[variable["name"]] = to_cel(_program(variable["expression"]).evaluate(cel))
    cel = to_cel({**activation, "variables": variables})
    out = []
    for validation in spec["validations"]:
        result = _program(validation["expression"]).evaluate(cel)
        assert isinstance(result, celpy.celtypes.BoolType), (validation["expression"], result)
        if not result:
            out.append(validation["message"])
    return out


CONTAINER = {
    "name": "app",
    "image": "app:1",
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    "ports": [{"containerPort": 8080}],
}
POD_SPEC = {"containers": [CONTAINER], "securityContext": {"runAsNonRoot": True}}


def workload(kind: str, pod_spec: dict | None = None, labels: dict | None = None) -> dict:
    """`kind` holding `pod_spec` where that kind keeps its pod template."""
    spec = copy.deepcopy(pod_spec or POD_SPEC)
    meta = {"name": "w", "namespace": "t-acme", "labels": dict(LABELS if labels is None else labels)}
    template = {"metadata": {"labels": dict(LABELS if labels is None else labels)}, "spec": spec}
    if kind == "Pod":
        return {"kind": kind, "metadata": meta, "spec": spec}
    if kind == "PodTemplate":
        return {"kind": kind, "metadata": meta, "template": template}
    if kind == "CronJob":
        return {
            "kind": kind,
            "metadata": meta,
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    return {"kind": kind, "metadata": meta, "spec": {"template": template}}


KINDS = ["Pod", "PodTemplate", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_compliant_workload_of_every_kind_is_admitted(kind):
    assert failed("meridian-tenant-workloads", workload(kind)) == []


ATTACKS = {
    "privileged container": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
    "privileged init container": lambda s: s.update(
        initContainers=[{"name": "i", "image": "i", "securityContext": {"privileged": True}}]
    ),
    "privileged ephemeral container": lambda s: s.update(
        ephemeralContainers=[{"name": "e", "image": "e", "securityContext": {"privileged": True}}]
    ),
    "hostPath volume": lambda s: s.update(
        volumes=[{"name": "sock", "hostPath": {"path": "/var/run/containerd/containerd.sock"}}]
    ),
    "hostNetwork": lambda s: s.update(hostNetwork=True),
    "hostPID": lambda s: s.update(hostPID=True),
    "hostIPC": lambda s: s.update(hostIPC=True),
    "hostPort": lambda s: s["containers"][0]["ports"].append({"containerPort": 22, "hostPort": 22}),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_host_access_and_privilege_are_denied_in_every_kind(kind, attack):
    spec = copy.deepcopy(POD_SPEC)
    ATTACKS[attack](spec)
    assert failed("meridian-tenant-workloads", workload(kind, spec)), f"{attack} admitted in a {kind}"


def test_privileged_false_written_out_is_admitted():
    spec = copy.deepcopy(POD_SPEC)
    spec["containers"][0]["securityContext"]["privileged"] = False
    spec["hostNetwork"] = False
    assert failed("meridian-tenant-workloads", workload("Deployment", spec)) == []


@pytest.mark.parametrize(
    "labels,why",
    [({}, "no labels"), ({"app": "x"}, "no tenant label"), ({TENANT_LABEL: "globex"}, "another tenant's label")],
)
def test_workloads_must_carry_their_namespace_tenant_label(labels, why):
    assert failed("meridian-tenant-workloads", workload("Deployment", labels=labels)), why
    assert failed("meridian-tenant-workloads", workload("Pod", labels=labels)), why


def test_a_controller_whose_pod_template_drops_the_label_is_denied():
    obj = workload("Deployment")
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "x"}
    assert failed("meridian-tenant-workloads", obj) == [POLICIES["meridian-tenant-workloads"]["validations"][-1]["message"]]


def binding(kind: str, subjects: list[dict]) -> dict:
    return {
        "kind": kind,
        "metadata": {"name": "b", **({"namespace": "t-acme"} if kind == "RoleBinding" else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": subjects,
    }


@pytest.mark.parametrize(
    "subject",
    [
        {"kind": "ServiceAccount", "name": "default", "namespace": "t-globex"},
        {"kind": "ServiceAccount", "name": "lb", "namespace": "kube-system"},
        {"kind": "Group", "name": "system:serviceaccounts"},
        {"kind": "Group", "name": "system:serviceaccounts:t-globex"},
        {"kind": "Group", "name": "system:authenticated"},
        {"kind": "Group", "name": "system:unauthenticated"},
    ],
)
def test_role_bindings_across_namespaces_are_denied(subject):
    own = {"kind": "ServiceAccount", "name": "app", "namespace": "t-acme"}
    assert failed("meridian-tenant-role-bindings", binding("RoleBinding", [own, subject]))


@pytest.mark.parametrize(
    "subject",
    [
        {"kind": "ServiceAccount", "name": "app", "namespace": "t-acme"},
        {"kind": "ServiceAccount", "name": "app"},
        {"kind": "Group", "name": "system:serviceaccounts:t-acme"},
        {"kind": "User", "name": "oncall@example.com", "apiGroup": "rbac.authorization.k8s.io"},
    ],
)
def test_role_bindings_inside_the_namespace_are_admitted(subject):
    assert failed("meridian-tenant-role-bindings", binding("RoleBinding", [subject])) == []


@pytest.mark.parametrize(
    "subject,denied",
    [
        ({"kind": "ServiceAccount", "name": "app", "namespace": "t-acme"}, True),
        ({"kind": "Group", "name": "system:serviceaccounts:t-acme"}, True),
        ({"kind": "ServiceAccount", "name": "aws-load-balancer-controller", "namespace": "kube-system"}, False),
        ({"kind": "Group", "name": "meridian:operators"}, False),
    ],
)
def test_cluster_role_bindings_to_tenant_service_accounts_are_denied(subject, denied):
    assert bool(failed("meridian-tenant-cluster-bindings", binding("ClusterRoleBinding", [subject]), namespace="")) is denied


def test_the_policies_match_tenant_namespaces_and_every_workload_kind():
    workloads = POLICIES["meridian-tenant-workloads"]["matchConstraints"]
    resources = {r for rule in workloads["resourceRules"] for r in rule["resources"]}
    assert resources == {
        "pods",
        "podtemplates",
        "replicationcontrollers",
        "deployments",
        "statefulsets",
        "daemonsets",
        "replicasets",
        "jobs",
        "cronjobs",
    }
    assert workloads["namespaceSelector"] == {"matchExpressions": [{"key": TENANT_LABEL, "operator": "Exists"}]}
    for spec in POLICIES.values():
        assert spec["failurePolicy"] == "Fail"
        assert all(set(rule["operations"]) == {"CREATE", "UPDATE"} for rule in spec["matchConstraints"]["resourceRules"])
    # cluster-scoped objects are never skipped by a namespace selector: the cluster-binding policy has none
    assert "namespaceSelector" not in POLICIES["meridian-tenant-cluster-bindings"]["matchConstraints"]
