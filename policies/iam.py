"""IAM least privilege: no admin or whole-service grants, no PassRole on every role, no admin
managed policies on any principal, and trust policies that name who may assume a role."""

from __future__ import annotations

import re
from typing import Any

from iamdoc import (
    DOCUMENT_PROPERTY,
    UNKNOWN,
    Statement,
    _Path,
    allows,
    documents,
    negated,
    principals,
    public,
    read_statements,
    service_wildcards,
)
from ruleutil import CRITICAL, HIGH, ROLE, UnknownValueError, Unverifiable, as_list, dig, resource_policy, string_list, unknown

DOCUMENT_TYPES = [*DOCUMENT_PROPERTY, ROLE]


def _judge_documents(type_: str, props: Any, judge) -> list[str]:
    """Each document, and each statement in it, judged on its own: an unknown one is reported
    unverifiable and hides nothing else."""
    out: list[str] = []
    for label, doc in documents(type_, props):
        try:
            sts = read_statements(doc)
        except UnknownValueError as exc:
            out.append(Unverifiable.of(exc, f"the {label} is built from values known only after apply"))
            continue
        for st in sts:
            try:
                out += [f"IAM {label} {m} ({st.label})" for m in judge(st)]
            except UnknownValueError as exc:
                out.append(Unverifiable.at(".".join([doc.path, *map(str, exc.props)]), f"{label}, {st.label}"))
    return out


def _admin(st: Statement) -> list[str]:
    if not st.allow:
        return []
    if st.not_actions:
        return ["must not use Allow with NotAction: it grants every action not listed, on any resource"]
    if UNKNOWN in st.actions:
        raise unknown()
    if any(a in ("*", "*:*") for a in st.actions):
        return ['must not allow Action "*" (whatever its Resource): list the actions the workload calls']
    return []


def check_no_full_admin(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    return _judge_documents(type_, props, _admin)


no_full_admin = resource_policy(
    "iam-policy-no-full-admin",
    what='Checks that no IAM policy, role / user / group inline policy or role inline policy allows every action: `Action: "*"` or an Allow with `NotAction`, whatever the Resource',
    why="A full-admin grant turns any compromise of the principal (a pod, a CI job, a leaked key) into control of the account, or of everything the Resource names.",
    types=DOCUMENT_TYPES,
    check=check_no_full_admin,
    severity=CRITICAL,
    remediation="List the actions the workload calls and the ARNs it touches; use AWS managed job-function policies only for humans, through SSO.",
    limits="Only documents the stack writes: the text of AWS managed policies is not read (iam-principal-no-admin-policy names the admin ones).",
    tags=["iam"],
)


def check_no_service_wildcard(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    allowed = {str(s).lower() for s in config.get("allowedServiceWildcards", [])}

    def judge(st: Statement) -> list[str]:
        found = [a for a in service_wildcards(st) if a not in allowed]
        return (
            [
                f"must not allow {', '.join(found)} (every action of the service, including its admin actions): list the actions used"
            ]
            if found
            else []
        )

    return _judge_documents(type_, props, judge)


no_service_wildcard = resource_policy(
    "iam-policy-no-service-wildcard",
    what="Checks that no IAM policy, inline role / user / group policy allows a whole service (`s3:*`, `secretsmanager:*`, `iam:*`), on any Resource",
    why="`service:*` includes the service's administrative actions (bucket policies, key policies, secret deletion): even on one resource it is more than any workload needs.",
    types=DOCUMENT_TYPES,
    check=check_no_service_wildcard,
    severity=HIGH,
    config={"allowedServiceWildcards": string_list([], "`service:*` patterns allowed anyway (none by default)")},
    remediation="Replace `service:*` with the actions the workload calls (`s3:GetObject`, `s3:PutObject`, ...).",
    tags=["iam"],
)


def _passrole(st: Statement) -> list[str]:
    if not allows(st, "iam:PassRole"):
        return []
    if st.not_resources:
        return ["must not allow iam:PassRole with NotResource: it reaches every role not listed"]
    if UNKNOWN in st.resources:
        raise unknown()
    wide = [r for r in st.resources if "*" in r or "?" in r]
    return [f"must not allow iam:PassRole on {', '.join(wide)}: name the roles that may be passed"] if wide else []


def check_no_passrole_wildcard(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    return _judge_documents(type_, props, _passrole)


no_passrole_wildcard = resource_policy(
    "iam-policy-no-passrole-wildcard",
    what="Checks that no IAM policy allows `iam:PassRole` (directly or through a wildcard such as `iam:*`) on a wildcard Resource (`*`, `arn:aws:iam::*:role/*`) or through NotResource",
    why="PassRole on every role lets a principal hand itself any role, including admin ones, through EC2, Lambda or ECS: a privilege escalation path.",
    types=DOCUMENT_TYPES,
    check=check_no_passrole_wildcard,
    severity=CRITICAL,
    remediation="Restrict `iam:PassRole` to the ARNs of the roles the workload must pass, and add a `iam:PassedToService` condition.",
    tags=["iam"],
)

_DENIED = [
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
]
ATTACHMENT_ARNS = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": "policyArns",
    ROLE: "managedPolicyArns",
}


def check_no_admin_attachment(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    denied = set(config.get("deniedPolicyArns", _DENIED))
    arns = as_list(dig(props, ATTACHMENT_ARNS[type_]))
    return [
        f"IAM principal must not be given {arn.rsplit('/', 1)[-1]}: attach a policy scoped to what the principal does"
        for arn in arns
        if arn in denied
    ]


no_admin_attachment = resource_policy(
    "iam-principal-no-admin-policy",
    what="Checks that no IAM role, user or group gets an administrator-class managed policy (AdministratorAccess, PowerUserAccess, IAMFullAccess by default) through any attachment type or a role's `managedPolicyArns`",
    why="Workload and service roles are assumed by code (pods, AWS services) and users hold long-lived keys; an admin policy on one makes a single leak an account takeover.",
    types=list(ATTACHMENT_ARNS),
    check=check_no_admin_attachment,
    severity=CRITICAL,
    config={"deniedPolicyArns": string_list(_DENIED, "managed policy ARNs no role, user or group may carry")},
    remediation="Replace the attachment with a customer-managed policy listing the needed actions; for break-glass access use SSO permission sets, not principals in the stack.",
    tags=["iam"],
)

_ACCOUNT = re.compile(r"^(\d{12}|arn:aws[\w-]*:iam::\d{12}:root)$")


def _trust(st: Statement) -> list[str]:
    if not st.allow:
        return []
    if public(st):
        return ["must not let `Principal: *` (anyone, in any account) assume the role"]
    out = []
    for p in principals(st, "AWS"):
        if p is UNKNOWN:
            raise unknown()
        if _ACCOUNT.match(p) and not st.conditions:
            out.append(f"must not let the whole account {p} assume the role without a condition: name the roles or users")
    federated = principals(st, "Federated")
    if federated:
        subjects = [(op, vals) for op, vals in st.condition_values(":sub")]
        if not subjects or any(negated(op) for op, _ in subjects):
            out.append("must limit a federated (web identity) principal with a positive `:sub` condition naming the subject")
        elif any(v is UNKNOWN for _, vals in subjects for v in vals):
            raise unknown()
        elif any(v == "*" for _, vals in subjects for v in vals):
            out.append("must not accept any subject (`:sub` = *) of the identity provider")
    return out


def check_trust_restricted(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    out: list[str] = []
    try:
        sts = read_statements(_Path(props, "assumeRolePolicy"))
    except UnknownValueError as exc:
        return [Unverifiable.of(exc, "the trust policy is built from values known only after apply")]
    for st in sts:
        try:
            out += [f"Role trust policy {m} ({st.label})" for m in _trust(st)]
        except UnknownValueError:
            out.append(Unverifiable.at("assumeRolePolicy.Statement", st.label))
    return out


trust_restricted = resource_policy(
    "iam-role-trust-restricted",
    what="Checks that no role's trust policy admits `Principal: *`, a whole AWS account without a condition, or a web-identity (OIDC) principal without a positive `:sub` condition",
    why="Whoever may assume a role holds its permissions: an open trust policy hands them to every AWS account, every principal of ours, or every pod of every cluster trusting the identity provider.",
    types=[ROLE],
    check=check_trust_restricted,
    severity=CRITICAL,
    remediation="Name the principals (role ARNs, `Service` principals with an `aws:SourceAccount` condition); for IRSA, "
    "`StringEquals` on `<issuer>:sub` = `system:serviceaccount:<namespace>:<name>` and `<issuer>:aud` = `sts.amazonaws.com`.",
    limits="Whether the named principals are themselves well guarded is not followed.",
    tags=["iam"],
)

POLICIES = [no_full_admin, no_service_wildcard, no_passrole_wildcard, no_admin_attachment, trust_restricted]
