"""The IAM evaluator: principalmapper's local policy simulation, behind one version check.

principalmapper (NCC Group, AGPL-3.0) implements AWS's evaluation logic locally: explicit deny in
any policy wins; identity policies, group policies, the permission boundary and the session policy
must all allow; a resource policy that names the principal grants on its own in the same account,
a cross-account request needs both sides, and KMS keys (and role trust policies) must allow even
in their own account; actions, ARNs and policy variables (`${aws:PrincipalTag/x}`) are matched as
IAM does, with every condition operator (`StringLike`, `ForAllValues:`, `...IfExists`, `Null`,
`ArnLike`, `IpAddress`, ...), `NotAction`, `NotResource` and `NotPrincipal`.

What it takes is one concrete request (principal, action, resource, context keys). The question
here is whether *any* request succeeds, so the documents are narrowed first (`for_any_request`):
a condition on a key the caller chooses in the request (`aws:SourceIp`, `kms:ViaService`,
`aws:SecureTransport`, ...) is one the caller can satisfy, so it is dropped from an Allow, and a
Deny that depends on one is one the caller can avoid, so it is dropped. Keys the pack knows from
the session and the resource (principal tags and ARN, accounts, org, resource tags, the request
tags a trust admits) stay and are evaluated.

principalmapper 1.1.5 (the current release) still imports `Mapping` from `collections`, removed
in Python 3.10 (nccgroup/PMapper#130, #131, #140): the two aliases are put back before import,
and any other version is refused so that a release that moves is noticed here, not mis-evaluated.
"""

from __future__ import annotations

import collections
import collections.abc
import copy
import functools
import re
import zlib
from importlib import metadata
from typing import Any

from ruleutil import session_role

PRINCIPALMAPPER = "1.1.5"

_found = metadata.version("principalmapper")
if _found != PRINCIPALMAPPER:
    raise ImportError(
        f"the pack's access rules were written against principalmapper {PRINCIPALMAPPER}, found {_found}: "
        "re-check policies/access/simulator.py against the new release, then change PRINCIPALMAPPER"
    )
for _name in ("Mapping", "MutableMapping"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from principalmapper.common import Group, Node, Policy  # noqa: E402
from principalmapper.querying import local_policy_simulation  # noqa: E402
from principalmapper.querying.local_policy_simulation import (  # noqa: E402
    ResourcePolicyEvalResult,
    _get_condition_match,
    resource_policy_authorization,
    resource_policy_matching_statements,
)
from principalmapper.querying.query_interface import local_check_authorization_full  # noqa: E402
from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict  # noqa: E402

from principals import service_source_keys  # noqa: E402

_expanding_match = local_policy_simulation._matches_after_expansion


def _matches_after_expansion(string_to_check: str, string_to_check_against: str, condition_keys: Any = None) -> bool:
    """principalmapper 1.1.5's matcher, with its pass over the request context skipped where the
    pattern holds no `${`: that pass only replaces `${key}` with the key's value, so without one it
    changes nothing (it would also fail on a value that is neither text nor a list, which the pack's
    contexts never hold: text, and `aws:TagKeys` as a list). It ran for every action, resource and
    principal pattern of every statement the evaluator reads, and was a third of the rule's time.
    Without context keys (an action or a principal against a pattern) the answer depends on the two
    strings alone: it is kept, since every request asks it again of every statement (2.5 million
    asks for some 20 actions at 1,000 tenants)."""
    if "${" in string_to_check_against:
        return _expanding_match(string_to_check, string_to_check_against, condition_keys)
    if condition_keys is None:  # an action or a principal: few pairs, each asked again by every statement of every request
        pair = (string_to_check, string_to_check_against)
        hit = _PAIRS.get(pair)
        if hit is None:
            if len(_PAIRS) >= _PATTERNS:
                _PAIRS.clear()
            hit = _PAIRS[pair] = (
                local_policy_simulation._compose_pattern(string_to_check_against).match(string_to_check) is not None
            )
        return hit
    return local_policy_simulation._compose_pattern(string_to_check_against).match(string_to_check) is not None


_PAIRS: dict[tuple[str, str], bool] = {}  # (action or principal, pattern) -> whether it matches


local_policy_simulation._matches_after_expansion = _matches_after_expansion

# principalmapper compiles a regex per pattern: ARN and action patterns through `_compose_pattern`
# (an LRU of 2,048), `*Like` condition values through `re.match` (the `re` module's cache of 512).
# A stack of many tenants has more distinct patterns than either holds (their ARNs name the
# tenant), so each cache evicted what the next session needed again: 17,500 compilations at 1,000
# tenants. The same compilations, kept for the process up to `_PATTERNS` (a few kilobytes each).
_PATTERNS = 1 << 16
local_policy_simulation._compose_pattern = functools.lru_cache(maxsize=_PATTERNS, typed=True)(
    local_policy_simulation._compose_pattern.__wrapped__
)


@functools.lru_cache(maxsize=_PATTERNS)
def _like_pattern(pattern: str) -> re.Pattern:
    """principalmapper 1.1.5's `_expand_str_and_compare` pattern, compiled once."""
    escaped = pattern.replace(".", "\\.").replace("*", ".*").replace("?", ".").replace("$", "\\$").replace("^", "\\^")
    return re.compile(f"^{escaped}$", flags=re.UNICODE)


def _expand_str_and_compare(pattern: str, input_value: str) -> bool:
    return _like_pattern(pattern).match(input_value) is not None


local_policy_simulation._expand_str_and_compare = _expand_str_and_compare


def _statement_matches_action(
    statement: dict, action: str, condition_keys: Any = None, is_resource_policy_check: bool = False
) -> bool:
    """principalmapper 1.1.5's action match for a resource policy's statement, without its SNS/SQS branch,
    which compared the request's action with itself (`item_parts = action.split(':')`): any statement whose
    `Action` was written `SNS:...`/`SQS:...` matched every action, so a decoy `Deny SQS:SendMessage` denied
    everything and an `Allow SNS:Subscribe` allowed everything (security review 21, C09/I08). Action names
    are case-insensitive in IAM; the composed patterns already match ignoring case."""
    if "Action" in statement:
        return any(_matches_after_expansion(action, item, condition_keys) for item in _listify(statement["Action"]))
    if "NotAction" in statement:
        return not any(_matches_after_expansion(action, item, condition_keys) for item in _listify(statement["NotAction"]))
    return True


def _listify(value: Any) -> list:
    return value if isinstance(value, list) else [value]


local_policy_simulation._statement_matches_action = _statement_matches_action


# principalmapper 1.1.5's matchers for one operator, given AWS's rules for a key the request does not carry
# (IAM User Guide, reference_policies_elements_condition_operators): "If the key that you specify in a policy
# condition is not present in the request context, the values do not match and the condition is false. If the
# policy condition requires that the key is *not* matched, such as StringNotLike or ArnNotLike, and the right
# key is not present, the condition is *true*"; and `...IfExists`: "If the key is not present, evaluate the
# condition element as true", else as the operator without it. principalmapper read `StringNotLike` on an
# absent key as false (security review 20, I41: an Allow under `StringNotLike s3:prefix` granted nothing on
# GetObject, where AWS grants every object), and compared the Numeric, Date and IpAddress operators by exact
# name, so their `...IfExists` forms fell through to another operator (`IpAddressIfExists` decided as
# `NotIpAddress`). tests/test_policy_review20.py holds every operator to the documented result.
NEGATED_OPERATORS = frozenset(
    {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals", "DateNotEquals", "NotIpAddress"}
    | {"ArnNotEquals", "ArnNotLike"}
)


def _as_documented(match):
    def decide(block: str, policy_key: str, policy_value: Any, context: Any) -> bool:
        operator = block.rsplit(":", 1)[-1]  # the set operators (`ForAnyValue:`) are decided by the caller
        if operator.endswith("IfExists"):
            if policy_key not in context:
                return True
            operator = operator[: -len("IfExists")]
        elif policy_key not in context:
            return operator in NEGATED_OPERATORS
        return match(operator, policy_key, policy_value, context)

    return decide


for _matcher in (
    "_get_str_match",
    "_get_num_match",
    "_get_date_match",
    "_get_ipaddress_match",
    "_get_arn_match",
    "_get_bool_match",
):
    setattr(local_policy_simulation, _matcher, _as_documented(getattr(local_policy_simulation, _matcher)))

# Keys whose value the pack decides from who calls and what is called; every other key is the
# caller's to choose. (Request tags are known: the pack enumerates the tags a caller could pass.)
KNOWN_PREFIXES = (
    "aws:principaltag/",
    "aws:resourcetag/",
    "aws:requesttag/",
)
KNOWN_KEYS = {
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principaltype",
    "aws:principalisawsservice",
    "aws:principalservicename",
    "aws:userid",
    "aws:username",
    "aws:tagkeys",
    "aws:resourceaccount",
    "aws:resourceorgid",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "s3:resourceaccount",
    "s3:prefix",
    "kms:calleraccount",
    "iam:resourcetag",
}


def known_key(key: str) -> bool:
    k = key.lower()
    return k in KNOWN_KEYS or k.startswith(KNOWN_PREFIXES) or k.endswith((":sub", ":aud", ":amr"))


def _statements(doc: Any) -> list[dict]:
    raw = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [s for s in (raw if isinstance(raw, list) else [raw]) if isinstance(s, dict)]


ORGANIZATION_KEYS = frozenset({"aws:principalorgid", "aws:principalorgpaths"})


def for_any_request(doc: dict, free: frozenset[str] = frozenset()) -> dict:
    """The document as it acts on a caller who picks every request-chosen key to suit itself
    (and satisfies every key in `free`: the organization keys, for the stack's own principals)."""

    def known_key_(key: str) -> bool:
        return known_key(key) and key.lower() not in free

    out = []
    for st in _statements(doc):
        if isinstance(st.get("Principal"), dict) and list(st["Principal"]) == ["AWS"] and st["Principal"]["AWS"] in ("*", ["*"]):
            st = {**st, "Principal": "*"}  # IAM reads {"AWS": "*"} as "*"
        cond = st.get("Condition")
        if not isinstance(cond, dict) or not cond:
            out.append(st)
            continue
        set_by_service = _service_set_keys(st)

        def decided(key: str, set_by_service: frozenset[str] = set_by_service) -> bool:
            return known_key_(key) or key.lower() in set_by_service

        free_keys = any(not decided(str(k)) for body in cond.values() if isinstance(body, dict) for k in body)
        if str(st.get("Effect", "")).lower() == "deny":
            if not free_keys:
                out.append(st)
            continue
        kept = {op: {k: v for k, v in body.items() if decided(str(k))} for op, body in cond.items() if isinstance(body, dict)}
        kept = {op: body for op, body in kept.items() if body}
        out.append({**{k: v for k, v in st.items() if k != "Condition"}, **({"Condition": kept} if kept else {})})
    return {"Version": "2012-10-17", "Statement": out}


def _service_set_keys(st: dict) -> frozenset[str]:
    """Keys that the statement's principals, all AWS services, set themselves on their requests
    (CloudWatch Logs' encryption context): no caller chooses them, so they are evaluated."""
    principal = st.get("Principal")
    if not isinstance(principal, dict) or set(principal) != {"Service"}:
        return frozenset()
    services = principal["Service"] if isinstance(principal["Service"], list) else [principal["Service"]]
    keys = [set(service_source_keys(str(s))) for s in services]
    return frozenset(set.intersection(*keys)) if keys else frozenset()


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def bind(doc: dict, values: dict[str, Any]) -> dict:
    """The document with the policy variables of its condition values filled in from `values`
    (IAM does; principalmapper 1.1.5 fills them in ARNs only). A variable without a value stays
    as written, which matches no real value, as in IAM."""
    lowered = {k.lower(): v for k, v in values.items() if isinstance(v, str)}

    def fill(value: Any) -> Any:
        if isinstance(value, str) and "${" in value:
            return _VARIABLE.sub(lambda m: lowered.get(m.group(1).lower(), m.group(0)), value)
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    out = []
    for st in _statements(doc):
        cond = st.get("Condition")
        if isinstance(cond, dict) and _has_variable(cond):
            st = {
                **st,
                "Condition": {
                    op: {k: fill(v) for k, v in body.items()} if isinstance(body, dict) else body for op, body in cond.items()
                },
            }
        out.append(st)
    return {**doc, "Statement": out}


def _has_variable(cond: dict) -> bool:
    """Whether a Condition block's values hold a policy variable (most hold none: nothing to fill)."""
    return any(_holds_variable(v) for body in cond.values() if isinstance(body, dict) for v in body.values())


def _holds_variable(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    return isinstance(value, list) and any(_holds_variable(v) for v in value)


def node(
    arn: str,
    documents: list[tuple[str, dict]],
    *,
    values: dict[str, Any],
    groups: list[tuple[str, list[tuple[str, dict]]]] = (),
    boundary: dict | None = None,
) -> Node:
    """A principalmapper principal for one session: `documents` are (label, policy document) pairs,
    their condition variables bound to the session's `values` (its context keys)."""

    def policy(owner: str, label: str, doc: dict) -> Policy:
        return Policy(owner, label, for_any_request(bind(doc, values)))

    # principalmapper takes users and roles only; a role's session (an assumed-role ARN, which KMS grants
    # and resource policies accept) is judged as its role: what the role may do bounds what any session may
    session = session_role(arn)
    if session:
        arn = "arn:{}:iam::{}:role/{}".format(*session)
    name = arn.rsplit("/", 1)[-1]
    # Other principals a resource policy may name (a federated user's session, `arn:aws:sts::<acct>:federated-user/<name>`)
    # principalmapper refuses outright: built as a user of that account and name, then given back their own ARN, which
    # is what a statement's `Principal` is matched against (security review 20, I15: the whole analysis failed).
    resource = arn.split(":", 5)[5] if arn.count(":") >= 5 else ""
    surrogate = (
        None if resource.startswith(("user/", "role/")) else "arn:{}:iam::{}:user/{}".format(*_partition_account(arn), name)
    )
    built = Node(
        surrogate or arn,
        f"AID{zlib.crc32(arn.encode()):010d}{name[:8]}",
        [policy(arn, label, doc) for label, doc in documents],
        [Group(g_arn, [policy(g_arn, lbl, d) for lbl, d in docs]) for g_arn, docs in groups],
        {"Version": "2012-10-17", "Statement": []} if ":role/" in arn else None,
        None,
        0,
        False,
        False,
        policy(arn, "boundary", boundary) if boundary is not None else None,
        False,
        {},
    )
    if surrogate:
        built.arn = arn
    return built


def _partition_account(arn: str) -> tuple[str, str]:
    parts = arn.split(":")
    return (parts[1] if len(parts) > 1 and parts[1] else "aws", parts[4] if len(parts) > 4 else "")


def authorized(
    principal: Node,
    action: str,
    resource: str,
    context: dict[str, Any],
    *,
    resource_policy: dict | None = None,
    owner: str | None = None,
    session_policy: dict | None = None,
) -> bool:
    """Would AWS allow this request? (`resource_policy` already narrowed by `for_any_request`;
    its and the session policy's condition variables are bound to `context` here.)"""
    return local_check_authorization_full(
        principal,
        action,
        resource,
        copy.copy(context),
        _Document(bind(resource_policy, context)) if resource_policy is not None else None,
        owner if resource_policy is not None else None,
        None,
        _Document(for_any_request(bind(session_policy, context))) if session_policy is not None else None,
    )


class _Document(dict):
    """A policy document handed to principalmapper, which formats every request it is asked into a
    debug message before the logger decides to drop it (`local_check_authorization_full`): the
    documents' text was 7% of tenant-data-access. The document reads as itself; only its text is short."""

    def __repr__(self) -> str:
        return "<policy document>"

    __str__ = __repr__


def conditions_hold(condition: dict, context: dict[str, Any]) -> bool:
    """Whether a Condition block holds for `context` (request-chosen keys taken as satisfiable)."""
    narrowed = for_any_request(bind({"Statement": [{"Effect": "Allow", "Condition": condition}]}, context))["Statement"][0]
    if "Condition" not in narrowed:
        return True
    return _get_condition_match(narrowed["Condition"], CaseInsensitiveDict(context))


def matching_statements(doc: dict, principal: Node, action: str, resource: str, context: dict[str, Any]) -> list[dict]:
    """The Allow statements of an identity or resource document that grant this request (for the path)."""
    from principalmapper.querying.local_policy_simulation import (
        _principal_matches_in_statement,
        _statement_matches_action,
        _statement_matches_resource,
    )

    ctx = CaseInsensitiveDict(context)
    out = []
    for st in for_any_request(bind(doc, context))["Statement"]:
        if str(st.get("Effect", "")).lower() != "allow":
            continue
        if "Principal" in st and st["Principal"] != "*":
            aws = st["Principal"].get("AWS") if isinstance(st["Principal"], dict) else None
            if aws is None or not _principal_matches_in_statement(principal, aws if isinstance(aws, list) else [aws]):
                continue
        if "NotPrincipal" in st:
            aws = st["NotPrincipal"].get("AWS") if isinstance(st["NotPrincipal"], dict) else None
            if aws is not None and _principal_matches_in_statement(principal, aws if isinstance(aws, list) else [aws]):
                continue
        if not _statement_matches_action(st, action, ctx, True) or not _statement_matches_resource(st, resource, ctx):
            continue
        if "Condition" in st and not _get_condition_match(st["Condition"], ctx):
            continue
        out.append(st)
    return out


def service_allowed(service: str, action: str, resource: str, context: dict[str, Any], resource_policy: dict, owner: str) -> bool:
    """Would this resource policy let AWS service `service` (a service principal) make this request?
    (`resource_policy` already narrowed by `for_any_request`; bound to `context` here.)"""
    result = resource_policy_authorization(
        service, owner, bind(resource_policy, context), action, resource, CaseInsensitiveDict(context)
    )
    return result == ResourcePolicyEvalResult.SERVICE_MATCH


def service_statements(doc: dict, service: str, action: str, resource: str, context: dict[str, Any]) -> list[dict]:
    """The Allow statements of a resource policy that grant `service` this request (for the path)."""
    narrowed = for_any_request(bind(doc, context))
    found = resource_policy_matching_statements(service, narrowed, action, resource, CaseInsensitiveDict(context))
    return [st for st in found if str(st.get("Effect", "")).lower() == "allow"]
