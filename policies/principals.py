"""Who one Allow statement of a resource policy admits, judged statement by statement against the
stack's own accounts (and organisations): for key, secret, topic, queue and repository policies,
and KMS grants. A statement-level helper: it reads the principal and the conditions of one
statement, never what an identity policy elsewhere grants (that is an evaluator's question).

A principal is inside when it is the account's own root or an ARN of an own account; `*` (or
`{"AWS": "*"}`) and foreign principals are inside only under a condition that pins the caller to
own accounts or organisations with a positive string test (`StringEquals` on
`aws:PrincipalAccount`, `aws:SourceAccount`, `kms:CallerAccount`, `aws:PrincipalOrgID`, ...). A
service principal acts for whichever account's resource calls it: it is inside only when a
positive condition pins the request's source to own accounts (`aws:SourceAccount`,
`aws:SourceOwner`, `aws:SourceOrgID`, or `aws:SourceArn` naming own-account resources or buckets
the stack defines (an S3 ARN carries no account: any bucket of any account could be named), or a key
the service sets itself to the resource it acts for: CloudWatch Logs' encryption context
`aws:logs:arn`), else any account could make the service act on this resource (a confused deputy).
Conditions that do not constrain the caller's account (`kms:ViaService`, `aws:SecureTransport`,
`...IfExists`, negative operators) leave `*` open. Allow with `NotPrincipal` admits every
principal not named: always outside.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from iamdoc import Statement
from ruleutil import UNKNOWN, unknown

ACCOUNT_KEYS = ("aws:principalaccount", "aws:sourceaccount", "kms:calleraccount", "aws:sourceowner")
ORG_KEYS = ("aws:principalorgid", "aws:sourceorgid")
SOURCE_ACCOUNT_KEYS = ("aws:sourceaccount", "aws:sourceowner")
SOURCE_ORG_KEYS = ("aws:sourceorgid",)
_ARN_ACCOUNT = re.compile(r"^arn:aws[\w-]*:[\w-]+:[\w*?-]*:(\d{12})?:")
_S3_ARN = re.compile(r"^arn:aws[\w-]*:s3:::[a-z0-9][a-z0-9.-]*[a-z0-9](/.*)?$")
POSITIVE = ("stringequals", "stringequalsignorecase", "arnequals", "arnlike", "stringlike")
_ACCOUNT = re.compile(r"^(?:arn:aws[\w-]*:(?:iam|sts)::(?P<arn>\d{12}):.+|(?P<bare>\d{12}))$")


def account_of(principal: str) -> str | None:
    """The account of an AWS principal (`123456789012`, an IAM/STS ARN); None if it names none."""
    m = _ACCOUNT.match(principal)
    return (m.group("arn") or m.group("bare")) if m else None


def _positive_conditions(st: Statement):
    """Each (lower-case key, values) of a condition that must hold for the statement to apply: not
    `ForAllValues:` (true on an absent key), not `...IfExists`, only the operators in POSITIVE."""
    for op, key, values in st.conditions:
        op_l, key_l = str(op).lower(), str(key).lower()
        if op_l.startswith("forallvalues:") or op_l.endswith("ifexists") or op_l.removeprefix("foranyvalue:") not in POSITIVE:
            continue
        if any(v is UNKNOWN for v in values):
            raise unknown("Condition", str(key))
        yield key_l, values


def _pinned(st: Statement, accounts: set[str], orgs: set[str]) -> bool:
    """Whether a condition pins the caller to own accounts or organisations (every value inside)."""
    for key_l, values in _positive_conditions(st):
        own = accounts if key_l in ACCOUNT_KEYS else orgs if key_l in ORG_KEYS else None
        if own is not None and values and all(str(v) in own for v in values):
            return True
    return False


OwnBucket = Callable[[str], bool]  # whether a bucket name is one the stack defines


def _no_bucket(_name: str) -> bool:
    return False


def _source_pinned(st: Statement, accounts: set[str], orgs: set[str], service: str, own_bucket: OwnBucket) -> bool:
    """Whether a condition pins a service's request to a source in own accounts or organisations."""
    for key_l, values in _positive_conditions(st):
        if not values:
            continue
        texts = [str(v) for v in values]
        if key_l in SOURCE_ACCOUNT_KEYS and all(v in accounts for v in texts):
            return True
        if key_l in SOURCE_ORG_KEYS and all(v in orgs for v in texts):
            return True
        if key_l == "aws:sourcearn" and all(_own_source_arn(v, accounts, own_bucket) for v in texts):
            return True
        if key_l in service_source_keys(service) and all(_own_arn_of(v, service, accounts) for v in texts):
            return True
    return False


# Condition keys a service sets itself, to the ARN of the resource it acts for: as good a pin as
# aws:SourceArn. CloudWatch Logs encrypts a log group's data with the encryption context
# `aws:logs:arn` = the log group's ARN (docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
SERVICE_SOURCE_KEYS = {"logs": ("kms:encryptioncontext:aws:logs:arn",)}


def service_source_keys(service: str) -> tuple[str, ...]:
    """The keys `service` (a service principal: `logs.amazonaws.com`, `logs.<region>.amazonaws.com`) sets itself."""
    name = str(service).lower()
    if not name.endswith(".amazonaws.com"):
        return ()
    return SERVICE_SOURCE_KEYS.get(name.split(".", 1)[0], ())


def _own_arn_of(arn: str, service: str, accounts: set[str]) -> bool:
    """An ARN of `service`'s own resources (a log group for CloudWatch Logs) in an own account."""
    m = _ARN_ACCOUNT.match(arn)
    return bool(m and m.group(1) in accounts and arn.split(":")[2] == service.split(".", 1)[0])


def _own_source_arn(arn: str, accounts: set[str], own_bucket: OwnBucket) -> bool:
    """An ARN in an own account (no wildcard in its account), or a bucket of the stack named whole:
    a bucket ARN carries no account, so a name the stack does not define may be anyone's bucket."""
    m = _ARN_ACCOUNT.match(arn)
    if m and m.group(1):
        return m.group(1) in accounts
    bucket = arn.split(":::", 1)[-1].split("/", 1)[0]
    return bool(_S3_ARN.match(arn)) and not re.search(r"[*?]", bucket) and own_bucket(bucket)


def outsiders(st: Statement, accounts: set[str], orgs: set[str] = frozenset(), own_bucket: OwnBucket = _no_bucket) -> list[str]:
    """What an Allow statement admits outside `accounts` / `orgs` (empty: nothing); `own_bucket`
    tells the stack's buckets (an `aws:SourceArn` naming one pins a service). Raises
    `UnknownValueError` where a deciding principal or condition value is only known after apply."""
    if not st.allow:
        return []
    if st.raw.get("NotPrincipal") is not None:
        return ["`NotPrincipal` under Allow (it admits every principal it does not name, in any account)"]
    principal = st.principal
    if principal is UNKNOWN:
        raise unknown("Principal")
    if principal is None:
        return []  # an identity policy's statement: no principal to judge
    entries = [("AWS", principal)] if isinstance(principal, str) else [(k, v) for k, vs in principal.items() for v in vs]
    out = []
    for kind, value in entries:
        if value is UNKNOWN:
            raise unknown("Principal", kind)
        if kind == "Service" and value != "*":
            if not _source_pinned(st, accounts, orgs, str(value), own_bucket):
                out.append(
                    f"Service `{value}` for any account (no aws:SourceAccount, nor an aws:SourceArn of this account's "
                    "resources or the stack's buckets, pins it to this one)"
                )
            continue
        if value == "*" or kind != "AWS" or account_of(str(value)) not in accounts:
            out.append(f"`{value}`" if kind == "AWS" else f"{kind} `{value}`")
    if out and _pinned(st, accounts, orgs):
        return [o for o in out if o.startswith("Service")]
    return out
