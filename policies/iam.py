"""IAM least privilege: no admin wildcards, no PassRole on everything, no admin policies on roles."""

from __future__ import annotations

from typing import Any

from ruleutil import CRITICAL, HIGH, allows, as_list, dig, resource_policy, statements

POLICY_DOCUMENT_TYPES = {
    "aws:iam/policy:Policy": "policy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
ROLE = "aws:iam/role:Role"


def documents(type_: str, props: Any) -> list[tuple[str, Any]]:
    """(label, document) pairs of a resource: its policy, or a role's inline policies."""
    if type_ in POLICY_DOCUMENT_TYPES:
        return [("policy", dig(props, POLICY_DOCUMENT_TYPES[type_]))]
    if type_ == ROLE:
        return [(f"inline policy {dig(p, 'name', default=i)}", dig(p, "policy")) for i, p in enumerate(as_list(dig(props, "inlinePolicies")))]
    return []


def _everything(resources: list[str]) -> bool:
    return any(r == "*" for r in resources)


def check_no_full_admin(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    out = []
    for label, doc in documents(type_, props):
        for st in statements(doc):
            if st["effect"] != "allow":
                continue
            admin_action = any(a in ("*", "*:*") for a in st["actions"]) or bool(st["not_actions"])
            if admin_action and (_everything(st["resources"]) or st["not_resources"]):
                what = "NotAction" if st["not_actions"] else "Action \"*\""
                out.append(f"IAM {label} must not allow {what} on Resource \"*\" (statement {st['sid'] or '(no Sid)'}): grant the actions and resources the workload uses")
    return out


no_full_admin = resource_policy(
    "iam-policy-no-full-admin",
    what="Checks that no IAM policy, inline role / user / group policy allows every action (`*`, or a NotAction) on every resource (`*`)",
    why="A full-admin grant turns any compromise of the principal (a pod, a CI job, a leaked key) into control of the whole account and every tenant in it.",
    types=[*POLICY_DOCUMENT_TYPES, ROLE],
    check=check_no_full_admin,
    severity=CRITICAL,
    remediation="List the actions the workload calls and the ARNs it touches; use AWS managed job-function policies only for humans, through SSO.",
    tags=["iam"],
)


def check_no_passrole_wildcard(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    out = []
    for label, doc in documents(type_, props):
        for st in statements(doc):
            if allows(st, "iam:PassRole") and (_everything(st["resources"]) or st["not_resources"]):
                out.append(f"IAM {label} must not allow iam:PassRole on Resource \"*\" (statement {st['sid'] or '(no Sid)'}): name the roles that may be passed")
    return out


no_passrole_wildcard = resource_policy(
    "iam-policy-no-passrole-wildcard",
    what="Checks that no IAM policy allows `iam:PassRole` (directly or through a wildcard such as `iam:*`) on Resource `*`",
    why="PassRole on every role lets a principal hand itself any role, including admin ones, through EC2, Lambda or ECS: a privilege escalation path.",
    types=[*POLICY_DOCUMENT_TYPES, ROLE],
    check=check_no_passrole_wildcard,
    severity=CRITICAL,
    remediation="Restrict `iam:PassRole` to the ARNs of the roles the workload must pass, and add a `iam:PassedToService` condition.",
    tags=["iam"],
)

_DENIED = ["arn:aws:iam::aws:policy/AdministratorAccess", "arn:aws:iam::aws:policy/PowerUserAccess",
           "arn:aws:iam::aws:policy/IAMFullAccess"]


def check_no_admin_attachment(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    denied = set(config.get("deniedPolicyArns", _DENIED))
    if type_ == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        arns = [dig(props, "policyArn")]
    elif type_ == "aws:iam/policyAttachment:PolicyAttachment":
        arns = [dig(props, "policyArn")] if as_list(dig(props, "roles")) else []
    elif type_ == "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive":
        arns = as_list(dig(props, "policyArns"))
    else:  # a role's managed policy list
        arns = as_list(dig(props, "managedPolicyArns"))
    return [f"Role must not be given {arn.rsplit('/', 1)[-1]}: attach a policy scoped to what the workload does" for arn in arns if arn in denied]


no_admin_attachment = resource_policy(
    "iam-role-no-admin-policy",
    what="Checks that no IAM role gets an administrator-class AWS managed policy (AdministratorAccess, PowerUserAccess, IAMFullAccess by default)",
    why="Workload and service roles are assumed by code (pods through IRSA, AWS services); an admin policy on one makes a single vulnerability an account takeover.",
    types=["aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment",
           "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive", ROLE],
    check=check_no_admin_attachment,
    severity=CRITICAL,
    config={"deniedPolicyArns": {"type": "array", "items": {"type": "string"}, "default": _DENIED,
                                 "description": "managed policy ARNs no role may carry"}},
    remediation="Replace the attachment with a customer-managed policy listing the needed actions; for break-glass access use SSO permission sets, not roles in the stack.",
    tags=["iam"],
)

POLICIES = [no_full_admin, no_passrole_wildcard, no_admin_attachment]
