"""Who the clusters admit: EKS access entries and access policy associations only for the roles the
stack config names (the deploy role, operators, CI's viewers), as STANDARD entries, without
Kubernetes groups (RBAC would then decide, out of the plan's sight), and with the access policy
the config gives each (admin for deploy and operators, the view policy for viewers)."""

from __future__ import annotations

from typing import Any

from ruleutil import CRITICAL, UnknownValueError, Unverifiable, as_list, dig, resource_policy, string_list

ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"


def check_cluster_access(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    admins, viewers = set(config.get("adminPrincipals", [])), set(config.get("viewPrincipals", []))
    view_policies = set(config.get("viewPolicies", []))
    try:
        principal = dig(props, "principalArn")
        if principal is None:
            return ["EKS access must name its principal (`principalArn`)"]
        principal = str(principal)
        if principal not in admins | viewers:
            return [
                f"EKS access for {principal}, which the stack config does not name (cluster.deploy_role_arn, "
                "operator_role_arns, viewer_role_arns): a tenant's or any other role must not reach the Kubernetes API"
            ]
        if type_ == ENTRY:
            out = []
            if dig(props, "type") not in (None, "STANDARD"):
                out.append(
                    f"EKS access entry of {principal} must be STANDARD, not {dig(props, 'type')} (a node's entry admits it as a node)"
                )
            if as_list(dig(props, "kubernetesGroups")):
                out.append(
                    f"EKS access entry of {principal} must not join Kubernetes groups ({', '.join(map(str, as_list(dig(props, 'kubernetesGroups'))))}): "
                    "access comes from access policy associations, which the plan shows"
                )
            return out
        policy = str(dig(props, "policyArn") or "")
        if principal in viewers and principal not in admins and policy.removeprefix(POLICY_PREFIX) not in view_policies:
            return [
                f"EKS access for the viewer {principal} must be a view policy ({', '.join(sorted(view_policies))}), not {policy}"
            ]
        return []
    except UnknownValueError as exc:
        return [Unverifiable.of(exc)]


cluster_access = resource_policy(
    "eks-access-platform-roles-only",
    what="Checks that every EKS access entry and access policy association names a role the stack config admits (`adminPrincipals`: deploy and operators; `viewPrincipals`: CI's viewers), that entries are STANDARD without Kubernetes groups, and that a viewer gets only a view policy",
    why="An access entry is a door into every tenant namespace: a tenant role, a node-typed entry or a `system:masters` group turns a workload identity into cluster admin, and the pack would not see it in RBAC.",
    types=[ENTRY, ASSOCIATION],
    check=check_cluster_access,
    severity=CRITICAL,
    config={
        "adminPrincipals": string_list([], "roles with cluster admin (generated: cluster.deploy_role_arn, operator_role_arns)"),
        "viewPrincipals": string_list([], "roles with view access (generated: cluster.viewer_role_arns)"),
        "viewPolicies": string_list(["AmazonEKSAdminViewPolicy", "AmazonEKSViewPolicy"], "EKS access policies a viewer may hold"),
    },
    remediation="Grant cluster access through the config (cluster.deploy_role_arn, operator_role_arns, viewer_role_arns), which components.cluster turns into STANDARD entries with one access policy each.",
    limits="Access granted outside the stack (aws-auth edits, entries made by hand) is not in the plan; RBAC bindings to IAM-mapped groups are judged only where the stack creates them.",
    tags=["kubernetes", "tenancy"],
)

POLICIES = [cluster_access]
