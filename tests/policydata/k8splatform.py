"""What the platform puts into the cluster: an AWS add-on, and a RoleBinding of acme's namespace to
acme's own service account (each rule's failing cases add what breaks it)."""

from __future__ import annotations

from .base import K8S, Builder, Mutations, add, set_input, urn

FOREIGN = "999988887777"
RBAC = "rbac.authorization.k8s.io/v1"


def k8s(type_: str, name: str, inputs: dict, deps: dict | None = None) -> dict:
    return {
        "urn": urn(type_, name),
        "type": type_,
        "name": name,
        "parent": None,
        "provider": K8S,
        "inputs": inputs,
        "dependencies": sorted({d for ds in (deps or {}).values() for d in ds}),
        "propertyDependencies": deps or {},
    }


def role_binding(kind: str, name: str, subjects: list[dict], namespace: str | None = None) -> dict:
    return k8s(
        f"kubernetes:{RBAC}:{kind}",
        name,
        {
            "apiVersion": RBAC,
            "kind": kind,
            "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": subjects,
        },
    )


ACME_SA = {"kind": "ServiceAccount", "name": "acme-app", "namespace": "t-acme"}


def build(b: Builder) -> None:
    b.add(
        "aws:eks/addon:Addon",
        "eks-vpc-cni",
        {"addonName": "vpc-cni", "clusterName": "eks", "configurationValues": '{"enableNetworkPolicy": "true"}'},
    )
    b.resources.append(role_binding("RoleBinding", "acme-view", [ACME_SA], namespace="t-acme"))


MUTATIONS: Mutations = {
    "eks-addon-reviewed": [
        (
            "a vendor's telemetry add-on",
            add(
                {
                    **k8s("aws:eks/addon:Addon", "datadog", {"addonName": "datadog_operator", "clusterName": "eks"}),
                    "provider": urn("pulumi:providers:aws", "us-east-1"),
                }
            ),
        ),
        (
            "the VPC CNI's NetworkPolicy enforcement off (review 18 K43)",
            set_input("eks-vpc-cni", "configurationValues", '{"enableNetworkPolicy": "false"}'),
        ),
    ],
    "k8s-tenant-secret-own-data-only": [
        (
            "the database credential copied into acme's namespace",
            add(
                k8s(
                    "kubernetes:core/v1:Secret",
                    "acme-db",
                    {"metadata": {"name": "db", "namespace": "t-acme"}, "stringData": {"password": "x"}},
                    deps={"stringData": [urn("aws:secretsmanager/secret:Secret", "db-credential")]},
                )
            ),
        ),
    ],
    "k8s-target-group-binding-platform-only": [
        (
            "acme's pods bound to another account's target group",
            add(
                k8s(
                    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
                    "acme-exposed",
                    {
                        "metadata": {"name": "acme", "namespace": "t-acme"},
                        "spec": {
                            "serviceRef": {"name": "acme", "port": 80},
                            "targetGroupARN": f"arn:aws:elasticloadbalancing:us-east-1:{FOREIGN}:targetgroup/x/1",
                        },
                    },
                )
            ),
        ),
    ],
    "k8s-rbac-binding-scoped": [
        (
            "a ClusterRoleBinding of `view` to acme's service account",
            add(role_binding("ClusterRoleBinding", "acme-all", [ACME_SA])),
        ),
        (
            "a RoleBinding of acme's namespace to another namespace's service account",
            add(
                role_binding(
                    "RoleBinding",
                    "acme-to-other",
                    [{"kind": "ServiceAccount", "name": "x", "namespace": "t-globex"}],
                    namespace="t-acme",
                )
            ),
        ),
    ],
}
