"""Who the clusters admit: EKS access entries and access policy associations only for the roles the
stack config names (the deploy role, operators, CI's viewers), as STANDARD entries, without
Kubernetes groups (RBAC would then decide, out of the plan's sight), and with the access policy
the config gives each (admin for deploy and operators, the view policy for viewers); and pods on the
nodes kept from the node role through the instance metadata service (IMDS)."""

from __future__ import annotations

from typing import Any

from ruleutil import (
    CRITICAL,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    judge_each,
    peek,
    provider_accounts,
    stack_policy,
    stack_role,
    string_list,
)

ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
CLUSTER = "aws:eks/cluster:Cluster"


def _cluster_access_config_problems(props: Any) -> list[str]:
    """Doors into the cluster besides access entries: the creator's implicit admin and aws-auth. An
    absent setting is EKS's default, which opens the door (CreateCluster `accessConfig`:
    https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAccessConfigRequest.html)."""
    out = []
    bootstrap = dig(props, "accessConfig", "bootstrapClusterCreatorAdminPermissions")
    if bootstrap is None or str(bootstrap).lower() != "false":
        out.append(
            "EKS cluster must set `accessConfig.bootstrapClusterCreatorAdminPermissions: false`, not "
            f"{'unset (EKS defaults to true)' if bootstrap is None else bootstrap}: the identity that creates the cluster "
            "becomes its admin through an entry the stack does not declare"
        )
    mode = dig(props, "accessConfig", "authenticationMode")
    if mode != "API":
        out.append(
            f"EKS cluster must set `accessConfig.authenticationMode: API`, not {mode or 'unset (the EKS API defaults to CONFIG_MAP)'}: "
            "with CONFIG_MAP the aws-auth ConfigMap, which no rule sees, admits IAM principals to the cluster"
        )
    return out


# The one access policy a principal the config does not name may hold, and only on named namespaces: EKS's `view`
# (read-only; no Secrets, no exec, attach or port-forward, no RBAC objects:
# https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html#access-policy-permissions-amazoneksviewpolicy).
NAMESPACE_VIEW = "AmazonEKSViewPolicy"


def _namespace_view(props: Any) -> bool:
    scope = dig(props, "accessScope")
    namespaces = [str(n) for n in as_list(dig(scope, "namespaces"))]
    return (
        str(dig(props, "policyArn") or "") == POLICY_PREFIX + NAMESPACE_VIEW
        and dig(scope, "type") == "namespace"
        and bool(namespaces)
        and not any(c in n for n in namespaces for c in "*?")
    )


def _administration(stack: Stack, principal: str, provider: Any) -> bool:
    """A role of the stack's account (its provider's `allowedAccountIds`) that the plan does not define: platform
    administration, as tenant-data-access takes the account's principals outside the plan (its workloads' and
    tenants' roles are the plan's, so never this)."""
    parts = principal.split(":")
    return (
        len(parts) == 6
        and parts[2] == "iam"
        and parts[5].startswith("role/")
        and parts[4] in provider_accounts(provider)
        and stack_role(stack, principal) is None
    )


def _unnamed_view(stack: Stack, type_: str, props: Any, principal: str, provider: Any) -> bool:
    """A principal the config does not name holds only namespace-scoped views: its associations each one, its entry
    STANDARD without Kubernetes groups (judged below) and with at least one such association."""
    if not _administration(stack, principal, provider):
        return False
    if type_ == ASSOCIATION:
        return _namespace_view(props)
    views = [a for a in stack.of(ASSOCIATION) if peek(a.props, "principalArn") == principal]
    return bool(views) and all(_namespace_view(a.props) for a in views)


def check_cluster_access(type_: str, props: Any, config: dict, _provider: Any, stack: Stack | None = None) -> list[str]:
    if type_ == CLUSTER:
        try:
            return _cluster_access_config_problems(props)
        except UnknownValueError as exc:
            return [Unverifiable.of(exc, "who besides the access entries does the cluster admit?")]
    untrusted = set(config.get("prCodePrincipals", []))
    admins, viewers = set(config.get("adminPrincipals", [])), set(config.get("viewPrincipals", [])) | untrusted
    view_policies = set(config.get("viewPolicies", []))
    try:
        principal = dig(props, "principalArn")
        if principal is None:
            return ["EKS access must name its principal (`principalArn`)"]
        principal = str(principal)
        unnamed_view = (
            stack is not None and principal not in admins | viewers and _unnamed_view(stack, type_, props, principal, _provider)
        )
        if principal not in admins | viewers and not unnamed_view:
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
        if principal in untrusted and policy.removeprefix(POLICY_PREFIX) != NAMESPACE_VIEW:
            return [
                f"EKS access for {principal}, which runs pull-request code (`prCodePrincipals`), must be {NAMESPACE_VIEW} "
                f"(no Secrets), not {policy}: the pull request's author chooses what runs with the role, and "
                "AmazonEKSAdminViewPolicy reads every Secret (the platform's database credential, every tenant's)"
            ]
        if principal in viewers and principal not in admins and policy.removeprefix(POLICY_PREFIX) not in view_policies:
            return [
                f"EKS access for the viewer {principal} must be a view policy ({', '.join(sorted(view_policies))}), not {policy}"
            ]
        return []
    except UnknownValueError as exc:
        return [Unverifiable.of(exc)]


def check_cluster_access_in_stack(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    return judge_each(
        stack.of(ENTRY, ASSOCIATION, CLUSTER),
        lambda r: [
            (r.urn, m)
            for m in check_cluster_access(
                r.resource_type, r.props, config, r.provider.props if r.provider is not None else None, stack
            )
        ],
    )


cluster_access = stack_policy(
    "eks-access-platform-roles-only",
    what="Checks that every EKS access entry and access policy association names a role the stack config admits (`adminPrincipals`: deploy and operators; `viewPrincipals`: CI's viewers), that entries are STANDARD without Kubernetes groups, that a viewer gets only a view policy and a role that runs pull-request code (`prCodePrincipals`) only `AmazonEKSViewPolicy` (no Secrets), that a role the config does not name gets at most `AmazonEKSViewPolicy` scoped to named namespaces and only if it is a role of the stack's account the plan does not define (platform administration), and that every EKS cluster admits no one else: `accessConfig.authenticationMode: API` (no aws-auth ConfigMap) and `bootstrapClusterCreatorAdminPermissions: false` (no implicit entry for its creator); either unset is EKS's default, which is a violation",
    why="An access entry is a door into every tenant namespace: a tenant role, a node-typed entry or a `system:masters` group turns a workload identity into cluster admin, and the pack would not see it in RBAC.",
    reads=[ENTRY, ASSOCIATION, CLUSTER],
    check=check_cluster_access_in_stack,
    severity=CRITICAL,
    config={
        "adminPrincipals": string_list([], "roles with cluster admin (generated: cluster.deploy_role_arn, operator_role_arns)"),
        "viewPrincipals": string_list([], "roles with view access (generated: cluster.viewer_role_arns)"),
        "viewPolicies": string_list(["AmazonEKSAdminViewPolicy", "AmazonEKSViewPolicy"], "EKS access policies a viewer may hold"),
        "prCodePrincipals": string_list(
            [],
            "viewers that run pull-request code, which may hold AmazonEKSViewPolicy only (no Secrets) "
            "(generated: cluster.pr_viewer_role_arns)",
        ),
    },
    remediation="Grant cluster access through the config (cluster.deploy_role_arn, operator_role_arns, viewer_role_arns, pr_viewer_role_arns), which components.cluster turns into STANDARD entries with one access policy each.",
    limits="Which viewers run pull-request code is the config's word (`cluster.pr_viewer_role_arns`): a role listed as a trusted viewer gets AmazonEKSAdminViewPolicy whatever runs with it. Access granted outside the stack (entries made by hand, the IAM permissions to change the cluster's access config) is not in the plan; RBAC bindings to IAM-mapped groups are judged only where the stack creates them.",
    tags=["kubernetes", "tenancy"],
)

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def _metadata_problems(template: Any) -> list[str]:
    """What lets a pod on a node launched from `template` read the node role's credentials from IMDS."""
    options = dig(template.props, "metadataOptions")
    where = f"Launch template {template.name} of EKS nodes"
    if options is None:
        return [
            f"{where} must set `metadataOptions` (httpTokens required, httpPutResponseHopLimit 1): unset, the AMI's "
            "defaults decide, and IMDSv1 or a hop limit of 2 hands every pod the node role"
        ]
    if dig(options, "httpEndpoint") == "disabled":
        return []  # no metadata service at all: nothing for a pod to reach
    out = []
    tokens = dig(options, "httpTokens")
    if tokens != "required":
        out.append(
            f"{where} must set `metadataOptions.httpTokens: required`, not {tokens or 'unset'}: IMDSv1 answers any "
            "process that reaches 169.254.169.254, so every pod gets the node role's credentials"
        )
    hops = dig(options, "httpPutResponseHopLimit")
    if hops is None or float(hops) > 1:
        out.append(
            f"{where} must set `metadataOptions.httpPutResponseHopLimit: 1`, not {'unset' if hops is None else f'{float(hops):g}'}: "
            "a token response that survives a second hop reaches pods in their own network namespace, and with it the node role"
        )
    return out


def check_node_metadata(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)

    def judge(group: Any) -> list[tuple[str | None, str]]:
        if dig(group.props, "launchTemplate") is None:
            return [
                (
                    group.urn,
                    f"EKS node group {group.name} must launch from a launch template of the stack that sets IMDSv2 and "
                    "hop limit 1: without one, EKS's generated template and the AMI decide what pods can reach",
                )
            ]
        templates = stack.linked(group, "launchTemplate", LAUNCH_TEMPLATE)
        if not templates:
            return [
                (
                    group.urn,
                    f"EKS node group {group.name} must launch from a launch template the stack defines: the metadata "
                    "options of one outside the plan cannot be judged",
                )
            ]
        out: list[tuple[str | None, str]] = []
        for template in templates:
            try:
                out += [(template.urn, p) for p in _metadata_problems(template)]
            except UnknownValueError as exc:
                out.append((template.urn, Unverifiable.of(exc, "the EKS nodes' metadata options")))
        return out

    return judge_each(stack.of(NODE_GROUP), judge)


node_metadata = stack_policy(
    "eks-node-metadata-pods-blocked",
    what="Checks that every EKS managed node group launches from a launch template of the stack whose metadata options "
    "require IMDSv2 tokens (`httpTokens: required`) and a PUT response hop limit of 1 (or disable the endpoint)",
    why="Tenant pods are meant to hold only their pod identity credentials; the node role (ECR pull, CNI, everything the "
    "nodes need) reaches far more. With IMDSv1 or a hop limit above 1, any pod reads the node role's credentials from "
    "169.254.169.254, and the tenancy matrix built from pod identity no longer describes what a pod can do.",
    reads=[NODE_GROUP, LAUNCH_TEMPLATE],
    check=check_node_metadata,
    severity=CRITICAL,
    remediation='Give the node group a launch template with `metadata_options` `http_tokens="required"`, '
    "`http_put_response_hop_limit=1` (https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html#_restrict_access_to_the_instance_profile_assigned_to_the_worker_node).",
    limits="It does not judge launch templates no node group uses, plain EC2 instances, self-managed or Karpenter nodes "
    "(not in these stacks), nor pods with `hostNetwork`, which reach IMDS at one hop (k8s-workload-pod-security-restricted "
    "forbids them in tenant namespaces); the node role's own permissions are judged by the IAM rules.",
    tags=["tenancy", "identity", "eks"],
)

POLICIES = [cluster_access, node_metadata]
