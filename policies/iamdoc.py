"""The one IAM walker the rules share (iam.py, tenancy.py, exposure.py): policy documents as
statements, what an action pattern grants, and every way a role gets permissions.

Documents arrive as a JSON string or a dict, possibly with unknown parts at preview: what is known
is judged (an `Action: "*"` is admin whatever its unknown `Resource`); a document that is unknown
as a whole raises `UnknownValueError` for the caller's per-resource judgment to report.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ruleutil import (
    MANAGED_POLICY,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_ATTACHMENT,
    ROLE_ATTACHMENTS_EXCLUSIVE,
    ROLE_POLICY,
    UNKNOWN,
    Stack,
    UnknownValueError,
    as_list,
    dig,
    known,
    peek,
    unknown,
)

WILDCARD = re.compile(r"[*?]|\$\{")  # IAM wildcards and policy variables (`${aws:PrincipalTag/x}`)


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[Any, ...]  # lower case strings, or UNKNOWN
    not_actions: tuple[Any, ...]
    resources: tuple[Any, ...]  # strings or UNKNOWN
    not_resources: tuple[Any, ...]
    principal: Any  # "*", {"AWS": [...], "Service": [...], "Federated": [...]}, None, or UNKNOWN
    conditions: tuple[tuple[str, str, tuple[Any, ...]], ...]  # (operator, key, values)
    sid: str = ""
    raw: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def allow(self) -> bool:
        return self.effect == "allow"

    @property
    def label(self) -> str:
        return f"statement {self.sid or '(no Sid)'}"

    def condition_values(self, key_suffix: str) -> list[tuple[str, tuple[Any, ...]]]:
        """(operator, values) of every condition on a key ending with `key_suffix` (case-insensitive)."""
        return [(op, vals) for op, key, vals in self.conditions if str(key).lower().endswith(key_suffix.lower())]


def _strings(value: Any, lower: bool = False) -> tuple[Any, ...]:
    out = []
    for v in as_list(value):
        out.append(v if v is UNKNOWN else (str(v).lower() if lower else str(v)))
    return tuple(out)


def parse(document: Any) -> list[Statement]:
    """An IAM policy document (JSON string or dict, proxies allowed) -> its statements.
    Raises `UnknownValueError` if the document is unknown as a whole; a document that is not
    valid JSON yields no statements (the provider rejects it)."""
    doc = known(document)
    if doc is UNKNOWN:
        raise unknown()
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            return []
    if not isinstance(doc, dict):
        return []
    raw = doc.get("Statement", [])
    if raw is UNKNOWN:
        raise unknown("Statement")
    out = []
    for st in raw if isinstance(raw, list) else [raw]:
        if not isinstance(st, dict):
            continue
        conditions = []
        cond = st.get("Condition") or {}
        for op, body in cond.items() if isinstance(cond, dict) else ():
            for key, values in body.items() if isinstance(body, dict) else [(UNKNOWN, body)]:
                conditions.append((str(op), key, _strings(values)))
        principal = st.get("Principal")
        if isinstance(principal, dict):
            principal = {str(k): _strings(v) for k, v in principal.items()}
        out.append(
            Statement(
                effect=str(st.get("Effect", "")).lower(),
                actions=_strings(st.get("Action"), lower=True),
                not_actions=_strings(st.get("NotAction"), lower=True),
                resources=_strings(st.get("Resource")),
                not_resources=_strings(st.get("NotResource")),
                principal=principal,
                conditions=tuple(conditions),
                sid=str(st.get("Sid", "") or ""),
                raw=st,
            )
        )
    return out


# --- actions ------------------------------------------------------------------------------------


def action_matches(pattern: str, action: str) -> bool:
    """IAM wildcard matching of an action pattern (`s3:Get*`, `*`) against an action, case-insensitive."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower().replace("[", "[[]"))


def allows(st: Statement, action: str) -> bool:
    """Whether an Allow statement grants `action` (through Action or NotAction); unknown actions
    raise, so the caller reports the statement as unverifiable."""
    if not st.allow:
        return False
    if UNKNOWN in st.actions or UNKNOWN in st.not_actions:
        raise unknown("Statement", "Action")
    if st.not_actions:
        return not any(action_matches(p, action) for p in st.not_actions)
    return any(action_matches(p, action) for p in st.actions)


def services(st: Statement) -> set[str]:
    """Services an Allow statement grants some action of; {"*"} for `*` or a NotAction."""
    if not st.allow:
        return set()
    if st.not_actions:
        return {"*"}
    out = set()
    for a in st.actions:
        if a is UNKNOWN:
            raise unknown("Statement", "Action")
        service = a.split(":", 1)[0] if ":" in a else a
        out.add("*" if WILDCARD.search(service) else service)
    return out


def service_wildcards(st: Statement) -> list[str]:
    """`service:*` (every action of a service) patterns an Allow statement grants."""
    return [a for a in st.actions if a is not UNKNOWN and re.fullmatch(r"[a-z0-9-]+:\*+", a)] if st.allow else []


def literal_prefix(pattern: str) -> str:
    """The part of an ARN pattern before its first wildcard or policy variable."""
    m = WILDCARD.search(pattern)
    return pattern[: m.start()] if m else pattern


def negated(operator: str) -> bool:
    """Condition operators that grant where the value does NOT match (or where the key is absent):
    `ForAllValues:` is true when the key is absent or empty (a ListObjects without `prefix`, a key without
    the tag), so it constrains nothing on a single-valued key (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html)."""
    qualifier, _, op = operator.rpartition(":")
    return "Not" in op or op.endswith("IfExists") or op == "Null" or qualifier.lower() == "forallvalues"


# --- principals ---------------------------------------------------------------------------------


def principals(st: Statement, kind: str) -> tuple[Any, ...]:
    if st.principal == "*":
        return ("*",)
    if isinstance(st.principal, dict):
        return st.principal.get(kind, ())
    return ()


def public(st: Statement) -> bool:
    """`Principal: "*"` or `{"AWS": "*"}`: anyone, in any account."""
    return st.principal == "*" or "*" in principals(st, "AWS")


# --- documents of a resource, and of a role -----------------------------------------------------

DOCUMENT_PROPERTY = {
    MANAGED_POLICY: "policy",
    ROLE_POLICY: "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}


def documents(type_: str, props: Any) -> list[tuple[str, Any]]:
    """(label, document not read yet) of an identity-policy resource, or each of a role's inline
    policies: read each with `read_statements`, so one unknown document hides no other."""
    if type_ in DOCUMENT_PROPERTY:
        return [("policy", _Path(props, DOCUMENT_PROPERTY[type_]))]
    if type_ == ROLE:
        inline = dig(props, "inlinePolicies")
        return [
            (f"inline policy {peek(inline[i], 'name', default=i)}", _Path(props, f"inlinePolicies.{i}.policy"))
            for i in range(len(as_list(inline)))
        ]
    return []


def read_statements(document: Any) -> list[Statement]:
    """Statements of a document from `documents` / a `Grant`; an unknown document raises
    `UnknownValueError` naming its property path."""
    try:
        return parse(document.read())
    except UnknownValueError as exc:
        if not exc.props:
            raise UnknownValueError(exc.unknown_type_sentinel, document.path.split(".")) from None
        raise


@dataclass(frozen=True)
class Grant:
    """One source of a role's permissions: a document (with the resource that holds it), or a
    managed policy ARN that the stack does not define (its document is not visible here)."""

    holder: Any  # the resource that carries the document or the attachment
    label: str
    prop: str  # property of `holder` the document or ARN sits in
    document: Any = None
    managed_arn: str | None = None


def _attached(stack: Stack, holder: Any, arn_prop: str, arn: Any, label: str) -> list[Grant]:
    policies = stack.linked(holder, arn_prop, MANAGED_POLICY)
    if policies:
        return [Grant(p, f"{label} {p.name}", "policy", document=_Path(p.props, "policy")) for p in policies]
    return [Grant(holder, f"{label} {arn}", arn_prop, managed_arn=str(arn))] if isinstance(arn, str) else []


def _roles_of(stack: Stack, holder: Any, prop: str, by_name: dict[str, Any]) -> list[Any]:
    """Roles a holder's property names: through a property dependency, a known role name, or its parent."""
    roles = {r.urn: r for r in stack.linked(holder, prop, ROLE)}
    for value in as_list(peek(holder.props, prop)):
        if isinstance(value, str) and value in by_name:
            roles.setdefault(by_name[value].urn, by_name[value])
    return list(roles.values())


def grants_by_role(stack: Stack) -> dict[str, list[Grant]]:
    """Role URN -> every way the role gets permissions in this stack: inline policies, managed
    policy ARNs, RolePolicy, RolePolicyAttachment (to a policy of the stack, or any other ARN),
    PolicyAttachment listing the role, RolePolicyAttachmentsExclusive. One pass over the stack."""
    out: dict[str, list[Grant]] = {}
    by_name = {}
    for role in stack.of(ROLE):
        name = peek(role.props, "name")
        if isinstance(name, str):
            by_name[name] = role
        grants = out.setdefault(role.urn, [])
        inline = peek(role.props, "inlinePolicies")
        for i in range(len(inline) if inline not in (None, UNKNOWN) else 0):
            grants.append(
                Grant(
                    role,
                    f"inline policy {peek(inline[i], 'name', default=i)}",
                    f"inlinePolicies.{i}.policy",
                    document=_Path(role.props, f"inlinePolicies.{i}.policy"),
                )
            )
        if inline is UNKNOWN:
            grants.append(Grant(role, "inline policies", "inlinePolicies", document=_Path(role.props, "inlinePolicies")))
        managed = peek(role.props, "managedPolicyArns")
        if managed is UNKNOWN:
            grants.append(Grant(role, "managed policies", "managedPolicyArns", document=_Path(role.props, "managedPolicyArns")))
        for arn in as_list(managed if managed is not UNKNOWN else None):
            grants += _attached(stack, role, "managedPolicyArns", arn, "managed policy")
    for rp in stack.of(ROLE_POLICY):
        roles = _roles_of(stack, rp, "role", by_name)
        if not roles and rp.parent is not None and rp.parent.urn in out:
            roles = [rp.parent]
        for role in roles:
            out[role.urn].append(Grant(rp, f"inline policy {rp.name}", "policy", document=_Path(rp.props, "policy")))
    for type_, role_prop, arn_prop in (
        (ROLE_ATTACHMENT, "role", "policyArn"),
        (POLICY_ATTACHMENT, "roles", "policyArn"),
        (ROLE_ATTACHMENTS_EXCLUSIVE, "roleName", "policyArns"),
    ):
        for att in stack.of(type_):
            roles = _roles_of(stack, att, role_prop, by_name)
            if not roles:
                continue
            arns = peek(att.props, arn_prop)
            grants = (
                [Grant(att, f"attached policy ({arn_prop})", arn_prop, document=_Path(att.props, arn_prop))]
                if arns is UNKNOWN
                else [g for arn in as_list(arns) for g in _attached(stack, att, arn_prop, arn, "attached policy")]
            )
            for role in roles:
                out[role.urn] += grants
    return out


class _Path:
    """A document not read yet: `read()` raises `UnknownValueError` with the property's path."""

    def __init__(self, props: Any, path: str):
        self.props, self.path = props, path

    def read(self) -> Any:
        value = self.props
        for step in self.path.split("."):
            value = dig(value, int(step) if step.isdigit() else step)
        return value


def grant_statements(grant: Grant) -> list[Statement]:
    """The statements of a grant's document (raises `UnknownValueError` if it is unknown)."""
    return read_statements(grant.document) if grant.document is not None else []
