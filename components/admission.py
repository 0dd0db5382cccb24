"""TenantAdmission: the cluster's own backstop for tenant namespaces, built from the Kubernetes API's
ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in 1.30: no controller, no webhook).

What the policy pack proves of the plan, these hold at runtime for every object in a namespace
labelled as a tenant's, whoever sends it (a Helm chart, kubectl, a controller):
- no privileged container, host path, host network / PID / IPC or host port, in any workload kind
  (Pod, PodTemplate, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
  CronJob: the pod template is found by kind);
- workloads and pods carry the tenant label of their namespace (`required_labels` present, the
  tenant label equal to the namespace's);
- no RoleBinding in a tenant namespace grants to another namespace's service accounts or to the
  cluster-wide groups, and no ClusterRoleBinding grants to a tenant's service accounts (a
  cluster-scoped object: matched by the subject's namespace prefix).

The CEL below is evaluated by tests (tests/test_admission.py) on objects that pass and fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

WORKLOAD_RULES = [
    {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "podtemplates", "replicationcontrollers"]},
    {"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"]},
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "resources": ["jobs", "cronjobs"]},
]
OPERATIONS = ["CREATE", "UPDATE"]

POD_SPEC = (
    "object.kind == 'Pod' ? object.spec : "
    "object.kind == 'PodTemplate' ? object.template.spec : "
    "object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec"
)
CONTAINERS = (
    "variables.podSpec.containers"
    " + (has(variables.podSpec.initContainers) ? variables.podSpec.initContainers : [])"
    " + (has(variables.podSpec.ephemeralContainers) ? variables.podSpec.ephemeralContainers : [])"
)
NOT_PRIVILEGED = (
    "variables.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged)"
    " || c.securityContext.privileged == false)"
)
NO_HOST_PATH = "!has(variables.podSpec.volumes) || variables.podSpec.volumes.all(v, !has(v.hostPath))"
NO_HOST_NAMESPACES = " && ".join(
    f"!(has(variables.podSpec.{flag}) && variables.podSpec.{flag} == true)" for flag in ("hostNetwork", "hostPID", "hostIPC")
)
NO_HOST_PORTS = "variables.containers.all(c, !has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0))"
CLUSTER_GROUPS = ("system:serviceaccounts", "system:authenticated", "system:unauthenticated")


def required_labels_expression(labels: Sequence[str], tenant_label: str) -> str:
    """Every label present on the object, and the tenant label equal to its namespace's."""
    present = " && ".join(f"'{label}' in object.metadata.labels" for label in labels)
    return (
        f"has(object.metadata.labels) && {present}"
        f" && object.metadata.labels['{tenant_label}'] == namespaceObject.metadata.labels['{tenant_label}']"
    )


def template_labels_expression(labels: Sequence[str], tenant_label: str) -> str:
    """A controller's pod template carries them too (its pods are admitted with the template's labels)."""
    present = " && ".join(f"'{label}' in variables.podLabels" for label in labels)
    return f"{present} && variables.podLabels['{tenant_label}'] == namespaceObject.metadata.labels['{tenant_label}']"


POD_LABELS = (
    "object.kind == 'Pod' ? (has(object.metadata.labels) ? object.metadata.labels : {}) : "
    "object.kind == 'PodTemplate' ? (has(object.template.metadata) && has(object.template.metadata.labels) ? object.template.metadata.labels : {}) : "
    "object.kind == 'CronJob' ? (has(object.spec.jobTemplate.spec.template.metadata) && has(object.spec.jobTemplate.spec.template.metadata.labels) ? object.spec.jobTemplate.spec.template.metadata.labels : {}) : "
    "(has(object.spec.template.metadata) && has(object.spec.template.metadata.labels) ? object.spec.template.metadata.labels : {})"
)

ROLE_BINDING_SUBJECTS = (
    "!has(object.subjects) || object.subjects.all(s, "
    "s.kind == 'ServiceAccount' ? (!has(s.namespace) || s.namespace == '' || s.namespace == request.namespace) : "
    "s.kind == 'Group' ? !(s.name in ['system:serviceaccounts', 'system:authenticated', 'system:unauthenticated'] "
    "|| (s.name.startsWith('system:serviceaccounts:') && s.name != 'system:serviceaccounts:' + request.namespace)) : true)"
)


def cluster_binding_subjects(namespace_prefix: str) -> str:
    return (
        "!has(object.subjects) || object.subjects.all(s, "
        f"!(s.kind == 'ServiceAccount' && has(s.namespace) && s.namespace.startsWith('{namespace_prefix}')) && "
        f"!(s.kind == 'Group' && s.name.startsWith('system:serviceaccounts:{namespace_prefix}')))"
    )


@dataclass(frozen=True, kw_only=True)
class TenantAdmissionArgs:
    tenant_label: str
    """The namespace label naming a tenant: tenant namespaces are the ones carrying it."""
    namespace_prefix: str
    """Every tenant namespace's name starts with it (what a cluster-scoped binding is matched by)."""
    required_labels: Sequence[str] = field(default_factory=tuple)
    """Labels every workload and pod in a tenant namespace carries, besides the tenant label."""

    def __post_init__(self) -> None:
        if not self.namespace_prefix:
            raise ValueError("namespace_prefix must be set: an empty prefix would match every namespace's service accounts")


def admission_policies(args: TenantAdmissionArgs) -> dict[str, dict]:
    """policy name -> its ValidatingAdmissionPolicy spec (plain data: what tests evaluate)."""
    tenant_namespaces = {"matchExpressions": [{"key": args.tenant_label, "operator": "Exists"}]}
    labels = [args.tenant_label, *[label for label in args.required_labels if label != args.tenant_label]]
    return {
        "meridian-tenant-workloads": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [{**r, "operations": OPERATIONS} for r in WORKLOAD_RULES],
                "namespaceSelector": tenant_namespaces,
            },
            "variables": [
                {"name": "podSpec", "expression": POD_SPEC},
                {"name": "containers", "expression": CONTAINERS},
                {"name": "podLabels", "expression": POD_LABELS},
            ],
            "validations": [
                {"expression": NOT_PRIVILEGED, "message": "tenant namespaces admit no privileged container"},
                {"expression": NO_HOST_PATH, "message": "tenant namespaces admit no hostPath volume"},
                {"expression": NO_HOST_NAMESPACES, "message": "tenant namespaces admit no host network, PID or IPC"},
                {"expression": NO_HOST_PORTS, "message": "tenant namespaces admit no hostPort"},
                {
                    "expression": required_labels_expression(labels, args.tenant_label),
                    "message": f"workloads in a tenant namespace carry {', '.join(labels)} ({args.tenant_label} = the namespace's)",
                },
                {
                    "expression": template_labels_expression(labels, args.tenant_label),
                    "message": f"pod templates in a tenant namespace carry {', '.join(labels)} ({args.tenant_label} = the namespace's)",
                },
            ],
        },
        "meridian-tenant-role-bindings": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "apiVersions": ["v1"],
                        "resources": ["rolebindings"],
                        "operations": OPERATIONS,
                    }
                ],
                "namespaceSelector": tenant_namespaces,
            },
            "validations": [
                {
                    "expression": ROLE_BINDING_SUBJECTS,
                    "message": "a RoleBinding in a tenant namespace grants only to that namespace's service accounts (no other namespace, no cluster-wide group)",
                }
            ],
        },
        "meridian-tenant-cluster-bindings": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["rbac.authorization.k8s.io"],
                        "apiVersions": ["v1"],
                        "resources": ["clusterrolebindings"],
                        "operations": OPERATIONS,
                    }
                ]
            },
            "validations": [
                {
                    "expression": cluster_binding_subjects(args.namespace_prefix),
                    "message": "no ClusterRoleBinding grants to a tenant namespace's service accounts",
                }
            ],
        },
    }


def binding_spec(policy_name: str, spec: dict) -> dict:
    """The ValidatingAdmissionPolicyBinding spec of policy `policy_name` (spec `spec`): deny, in the
    namespaces the policy matches (plain data: what the pack pins, through `renderedSpecs`)."""
    match = spec["matchConstraints"].get("namespaceSelector")
    return {
        "policyName": policy_name,
        "validationActions": ["Deny"],
        **({"matchResources": {"namespaceSelector": match}} if match else {}),
    }


class TenantAdmission(pulumi.ComponentResource):
    """Give it the cluster's kubernetes provider (`providers={"kubernetes": ...}` on opts)."""

    policy_names: list[str]

    def __init__(self, name: str, args: TenantAdmissionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:admission:TenantAdmission", name, None, opts)
        self.policy_names = []
        for policy_name, spec in admission_policies(args).items():
            policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{name}-{policy_name}",
                metadata={"name": policy_name},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self),
            )
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{name}-{policy_name}-binding",
                metadata={"name": policy_name},
                spec=binding_spec(policy_name, spec),
                opts=pulumi.ResourceOptions(parent=policy),
            )
            self.policy_names.append(policy_name)
        self.register_outputs({"policy_names": self.policy_names})
