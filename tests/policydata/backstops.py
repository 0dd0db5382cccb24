"""The runtime backstops of the valid stack (components.guardrails, components.admission), and the
ways to remove or disarm them that `runtime-backstops-enforced` must catch."""

from __future__ import annotations

import copy

from components.admission import TenantAdmissionArgs, admission_policies, binding_spec

from .base import DELETE, DR, K8S, PRIMARY, Builder, Mutations, drop, set_input

POLICIES = ("meridian-tenant-workloads", "meridian-tenant-role-bindings", "meridian-tenant-cluster-bindings")
VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
# the program's own specs (their scope is what the rule compares against)
SPECS = admission_policies(TenantAdmissionArgs(tenant_label="meridian.io/tenant", namespace_prefix="t-"))


def build(b: Builder) -> None:
    for name in POLICIES:
        b.add(
            VAP,
            name,
            {
                "metadata": {"name": name},
                "spec": copy.deepcopy(SPECS[name]),
            },
            region=None,
            provider=K8S,
        )
        b.add(
            BINDING,
            f"{name}-binding",
            {
                "metadata": {"name": name},
                "spec": binding_spec(name, SPECS[name]),
            },
            region=None,
            provider=K8S,
        )
    b.add(
        "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock",
        "account-no-public",
        {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True},
        tags=False,
    )
    for region in (PRIMARY, DR):
        b.add(
            "aws:accessanalyzer/analyzer:Analyzer",
            f"external-access-{region}",
            {"analyzerName": f"external-{region}", "type": "ACCOUNT"},
            region=region,
        )


MUTATIONS: Mutations = {
    "runtime-backstops-enforced": [
        ("the workloads' admission policy removed", drop("meridian-tenant-workloads", "meridian-tenant-workloads-binding")),
        ("its binding set to Audit only", set_input("meridian-tenant-workloads-binding", "spec.validationActions", ["Audit"])),
        ("its validations emptied", set_input("meridian-tenant-workloads", "spec.validations", [])),
        (
            "its binding narrowed to a label no namespace has",
            set_input(
                "meridian-tenant-role-bindings-binding",
                "spec.matchResources.namespaceSelector",
                {"matchLabels": {"meridian.io/tenant": "none"}},
            ),
        ),
        ("an admission policy failing open", set_input("meridian-tenant-cluster-bindings", "spec.failurePolicy", "Ignore")),
        ("the account public access block's policy check off", set_input("account-no-public", "blockPublicPolicy", False)),
        ("the account public access block removed", drop("account-no-public")),
        ("no external-access analyzer in the dr region", drop(f"external-access-{DR}")),
        ("a binding with no validation action", set_input("meridian-tenant-workloads-binding", "spec.validationActions", DELETE)),
        (
            "the workloads' policy skipping every object (`matchConditions: false`)",
            set_input("meridian-tenant-workloads", "spec.matchConditions", [{"name": "never", "expression": "false"}]),
        ),
        (
            "the role-bindings policy matching DELETE only",
            set_input("meridian-tenant-role-bindings", "spec.matchConstraints.resourceRules.0.operations", ["DELETE"]),
        ),
        (
            "the cluster-bindings policy's binding on Warn",
            set_input("meridian-tenant-cluster-bindings-binding", "spec.validationActions", ["Warn"]),
        ),
    ]
}
