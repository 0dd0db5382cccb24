"""The ARN of each IAM role and user, KMS key, bucket and secret of the stack, read from the plan.

At preview the analyzer sees inputs, not outputs: an auto-named key's ARN appears only inside the
values other resources were built from (a bucket's SSE rule, a policy document, an alias). A value
is attributed to a resource by what it says and where it came from: a property built from exactly
one unresolved resource of a type, holding exactly one ARN of that type not attributed yet (in that
resource's region), is that resource's ARN; attributions repeat until nothing changes, so a document
naming six keys resolves as its keys are resolved elsewhere. Nothing is matched by counting links
alone: with two candidates and two ARNs, both stay unresolved (and the rule says so).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from ruleutil import KMS_KEY, KMS_KEYS, KMS_REPLICA_KEY, ROLE, S3_BUCKETS, UNKNOWN, Stack, known, peek, resource_region
from sdkhooks import shared

ALIAS = "aws:kms/alias:Alias"

SECRET = "aws:secretsmanager/secret:Secret"
USER = "aws:iam/user:User"
GROUP = "aws:iam/group:Group"

PATTERNS = {
    KMS_KEY: re.compile(r"arn:aws[\w-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+"),
    KMS_REPLICA_KEY: re.compile(r"arn:aws[\w-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+"),  # a replica's ARN is a key ARN
    SECRET: re.compile(r"arn:aws[\w-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+"),
    ROLE: re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w/+=,.@-]+"),
    USER: re.compile(r"arn:aws[\w-]*:iam::\d{12}:user/[\w/+=,.@-]+"),
    GROUP: re.compile(r"arn:aws[\w-]*:iam::\d{12}:group/[\w/+=,.@-]+"),
    **{t: re.compile(r"arn:aws[\w-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]") for t in S3_BUCKETS},
}
_REGIONAL = (KMS_KEY, KMS_REPLICA_KEY, SECRET)
_ACCOUNT = re.compile(r"arn:aws[\w-]*:[\w-]+:[a-z0-9-]*:(\d{12}):")


def _strings(value: Any) -> list[str]:
    value = known(value)
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


class Arns:
    """Resource URN -> ARN (or bucket name), for the types in `PATTERNS`; `account` is the stack's own."""

    def __init__(self, stack: Stack):
        self.by_urn: dict[str, str] = {}
        targets = {r.urn: r for t in PATTERNS for r in stack.of(t)}
        self._direct(stack, targets)
        links: list[tuple[str, list[Any], set[str]]] = []  # (type, deps of that type, ARNs of that type in the value)
        for r in stack.resources:
            for prop, deps in r.property_dependencies.items():
                wanted = [d for d in deps if d.urn in targets]
                if not wanted:
                    continue
                text = _strings(peek(r.props, prop))
                for type_ in {d.resource_type for d in wanted}:
                    found = {m for s in text for m in PATTERNS[type_].findall(s)}
                    if type_ in S3_BUCKETS:
                        found |= {m for t in S3_BUCKETS for s in text for m in PATTERNS[t].findall(s)}
                        if prop == "bucket":  # sub-resources name their bucket, not its ARN
                            found |= {f"arn:aws:s3:::{s}" for s in text if re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", s)}
                    if found:
                        links.append(
                            (
                                type_,
                                [
                                    d
                                    for d in wanted
                                    if d.resource_type == type_ or (type_ in S3_BUCKETS and d.resource_type in S3_BUCKETS)
                                ],
                                found,
                            )
                        )
        changed = True
        while changed:
            changed = False
            claimed = set(self.by_urn.values())
            for _type, deps, found in links:
                open_deps = [d for d in deps if d.urn not in self.by_urn]
                if len(open_deps) != 1:
                    continue
                dep = open_deps[0]
                free = sorted(a for a in found - claimed if self._fits(dep, a))
                if len(free) == 1:
                    self.by_urn[dep.urn] = free[0]
                    claimed.add(free[0])
                    changed = True
        # ARNs of keys and secrets that some value holds but no resource of the stack was resolved to
        claimed = set(self.by_urn.values())
        self.unattributed: dict[str, dict[str, str]] = {KMS_KEY: {}, SECRET: {}}
        for r in stack.resources:
            if r.resource_type in (KMS_KEY, KMS_REPLICA_KEY, SECRET):
                continue
            for s in stack.strings(r):
                for type_ in (KMS_KEY, SECRET):
                    if PATTERNS[type_].pattern.split(":")[2] in s:
                        for m in PATTERNS[type_].findall(s):
                            if m not in claimed:
                                self.unattributed[type_].setdefault(m, r.name)
        counts = Counter(m for a in self.by_urn.values() for m in _ACCOUNT.findall(a))
        if not counts:  # a first preview: no ARN placed yet, but documents name the account (roots, trusts)
            counts = Counter(m for r in stack.resources for text in stack.strings(r) for m in _ACCOUNT.findall(text))
        self.account: str | None = counts.most_common(1)[0][0] if counts else None
        # roles and users named but not placed: their ARN follows from the account once it is known
        for urn_, (kind, path, name) in self._named.items():
            if urn_ not in self.by_urn and self.account:
                self.by_urn[urn_] = f"arn:aws:iam::{self.account}:{kind}{path}{name}"

    def _direct(self, stack: Stack, targets: dict[str, Any]) -> None:
        self._named: dict[str, tuple[str, str, str]] = {}
        for urn_, r in targets.items():
            if r.resource_type in S3_BUCKETS:
                name = peek(r.props, "bucket")
                if isinstance(name, str) and name is not UNKNOWN:
                    self.by_urn[urn_] = f"arn:aws:s3:::{name}"
            elif r.resource_type in (ROLE, USER):
                name, path = peek(r.props, "name"), peek(r.props, "path", default="/")
                if isinstance(name, str) and isinstance(path, str):
                    self._named[urn_] = ("role" if r.resource_type == ROLE else "user", path, name)
        # a RolePolicy / attachment built from one role names it (auto-named roles): name + the role's path
        for r in stack.resources:
            for prop in ("role", "user"):
                deps = [d for d in r.property_dependencies.get(prop, []) if d.resource_type in (ROLE, USER)]
                value = peek(r.props, prop)
                if len(deps) == 1 and isinstance(value, str) and not value.startswith("arn:") and deps[0].urn not in self._named:
                    path = peek(deps[0].props, "path", default="/")
                    if isinstance(path, str):
                        kind = "role" if deps[0].resource_type == ROLE else "user"
                        self._named[deps[0].urn] = (kind, path, value)

    @staticmethod
    def _fits(resource: Any, arn: str) -> bool:
        if resource.resource_type not in _REGIONAL:
            return True
        region = resource_region(resource)
        return region is None or arn.split(":")[3] == region

    def of(self, resource: Any) -> str | None:
        return self.by_urn.get(resource.urn)

    def key_named(self, stack: Stack, holder: Any, prop: str) -> str | None:
        """The ARN of the KMS key `holder`'s `prop` names, as KMS reads it: a key ARN, else the one key it
        was built from, else (in the holder's own account and region, where KMS looks) a bare key ID or an
        alias name or ARN the plan ties to a key. None if the value is unknown, or an ID or alias the plan does
        not place (a key outside the plan, or one whose ARN the plan does not show)."""
        value = known(peek(holder.props, prop))
        if isinstance(value, str) and value.startswith("arn:") and ":alias/" not in value:
            return value  # KMS reads the value, whatever the property was built from
        deps = stack.linked(holder, prop, *KMS_KEYS)
        if len(deps) == 1 and self.of(deps[0]):
            return self.of(deps[0])
        if not isinstance(value, str) or not value:
            return None
        region = resource_region(holder)
        if value.startswith(("alias/", "arn:")):  # an alias: the key it targets, in the holder's region
            name = value.split(":", 5)[-1] if value.startswith("arn:") else value
            targets = {
                self.key_named(stack, alias, "targetKeyId")
                for alias in stack.of(ALIAS)
                if peek(alias.props, "name") == name and resource_region(alias) in (region, None)
            }
            return targets.pop() if len(targets) == 1 else None
        keys = {a for u, a in self.by_urn.items() if PATTERNS[KMS_KEY].fullmatch(a) and a.rsplit("/", 1)[-1] == value}
        keys = {a for a in keys if region is None or a.split(":")[3] == region}
        if len(keys) == 1:
            return keys.pop()
        placed = all(self.of(k) for k in stack.of(*KMS_KEYS))
        if keys or not placed or region is None or not self.account or not re.fullmatch(r"(mrk-)?[0-9a-fA-F-]{32,36}", value):
            return None  # which key it is could be one the plan does not place yet
        partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        return f"arn:{partition}:kms:{region}:{self.account}:key/{value}"  # no key of the plan: another key of the account

    def arns_of(self, type_: str) -> set[str]:
        return {a for u, a in self.by_urn.items() if PATTERNS[type_].fullmatch(a)}


def arns_of(stack: Stack) -> Arns:
    """The stack's `Arns`, built once per AnalyzeStack call for every rule that asks (kept on the `Stack`
    too: the call's cache key is as long as the stack)."""
    arns = getattr(stack, "_arns", None)
    if arns is None:
        arns = stack._arns = shared(("arns", *map(id, stack.resources)), lambda: Arns(stack))  # type: ignore[attr-defined]
    return arns


def account_of(arn: str) -> str | None:
    m = _ACCOUNT.match(arn)
    if m:
        return m.group(1)
    m = re.fullmatch(r"(\d{12})", arn)
    return m.group(1) if m else None


def parse_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
