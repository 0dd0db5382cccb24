"""A tenant's KMS key protects that tenant's data only: no resource of the platform or of another
tenant names it, in any input (by ARN, key id, alias name or ARN, or, where the value is unknown at
preview, a link to the key), the tenant's alias names it, not another tenant's key, and an alias whose
name claims a tenant (holds its namespace as a whole segment) targets that tenant's own key.

Keys are matched by value (the ARNs the plan resolves for the stack's tenant keys: access.arns, their
key ids and the aliases that target them); a link counts only where the value it built is unknown,
since a value changed by hand keeps its old link. Resources whose job is to govern keys are judged by
their own rules, not here: keys, aliases, key policies and grants (kms-key-rotation-and-policy,
tenant-data-access), IAM documents (tenant-data-access's evaluator: who may use which key), and
Kubernetes objects, which a KMS key cannot encrypt (a name in a workload's settings is data; what the
workload may do with the key is its role's and the key policy's). A bucket setting (SSE, policy,
replication, object) is its bucket's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from access.arns import arns_of
from ruleutil import (
    KMS_ALIAS,
    KMS_KEYS,
    UNKNOWN,
    Stack,
    Unverifiable,
    judge_each,
    judged_bucket,
    key_tenant,
    known,
    peek,
    tags_of,
    texts_of,
    unknown,
)

ALIAS = KMS_ALIAS
# resources that govern keys (judged by their own rules), and Kubernetes objects (no KMS encryption of their own)
_GOVERNING = ("aws:kms/", "aws:iam/", "aws-native:kms:", "aws-native:iam:", "kubernetes:", "pulumi:")
# where a resource names the key that encrypts it (top level): the message says "encrypted under"
_KEY_PROPS = frozenset(("kmsKeyId", "kmsKeyArn", "kmsMasterKeyId", "kmsKey", "masterKeyId", "rules"))
# a key id (UUID or multi-Region `mrk-`), or an alias name (in an alias ARN too)
_TOKENS = re.compile(r"mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|alias/[\w/.+=@-]+")


class _TenantKeys:
    """Every spelling of the stack's tenant keys: key id (the ARN's last part) and alias name -> tenants."""

    def __init__(self, stack: Stack, tenant_keys: dict[str, set[str]], tag: str):
        self.arns = tenant_keys
        self.by_token: dict[str, set[str]] = {}
        for arn, tenants in tenant_keys.items():
            self.by_token.setdefault(arn.rsplit("/", 1)[-1], set()).update(tenants)
        self.urns = {k.urn: key_tenant(stack, k, tag) for k in stack.of(*KMS_KEYS)}
        self.urns = {urn: t for urn, t in self.urns.items() if isinstance(t, str) and t}
        for alias in stack.of(ALIAS):
            name, target = peek(alias.props, "name"), peek(alias.props, "targetKeyId")
            owners = set(self.of_text(target)) if isinstance(target, str) else set()
            if target is UNKNOWN:
                owners = {self.urns[k.urn] for k in stack.linked(alias, "targetKeyId", *KMS_KEYS) if k.urn in self.urns}
            if owners and isinstance(name, str):
                self.by_token.setdefault(name, set()).update(owners)

    def of_text(self, text: str) -> set[str]:
        return {t for token in _TOKENS.findall(text) for t in self.by_token.get(token, ())} | self.arns.get(text, set())


def check_key_owners(
    stack: Stack,
    tenant_keys: dict[str, set[str]],
    tag: str,
    namespaces: dict[str, str] | None = None,
    platform_namespaces: Iterable[str] = (),
) -> list[tuple[str | None, Any]]:
    """`tenant_keys`: a tenant key's ARN -> the tenants whose keys the plan resolves to it; `namespaces`: each
    tenant namespace of the plan -> its tenant; `platform_namespaces`: a cell's platform's tenant namespaces
    (their keys are not in this plan). Judged resource by resource."""
    keys = _TenantKeys(stack, tenant_keys, tag)
    users = [r for r in stack.resources if not r.resource_type.startswith(_GOVERNING)]
    claims = _Claims(stack, namespaces or {}, platform_namespaces)
    return judge_each(users, lambda r: _user_problems(stack, r, keys, tag)) + judge_each(
        stack.of(ALIAS),
        lambda a: _alias_problems(stack, a, tenant_keys, tag) or _claim_problems(stack, a, tenant_keys, claims, tag),
    )


def _has_unknown(value: Any) -> bool:
    todo = [known(value)]
    while todo:
        v = todo.pop()
        if v is UNKNOWN:
            return True
        todo.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())
    return False


def _named_keys(stack: Stack, r: Any, keys: _TenantKeys) -> dict[str, set[str]]:
    """Top-level property -> the tenants whose key it names (by value, or by link where its value is unknown)."""
    found: dict[str, set[str]] = {}
    texts = stack.strings(r)  # read once per call, shared with the access model's ARN indexes
    if keys.by_token and (keys.of_text("\n".join(texts)) or any(t in keys.arns for t in texts)):
        for prop in r.props:
            owners = {t for text in texts_of(peek(r.props, prop)) for t in keys.of_text(text)}
            if owners:
                found[prop] = owners
    for prop, deps in r.property_dependencies.items():
        owners = {keys.urns[d.urn] for d in deps if d.urn in keys.urns}
        if owners and prop not in found and _has_unknown(peek(r.props, prop)):
            found[prop] = owners
    return found


def _user_problems(stack: Stack, r: Any, keys: _TenantKeys, tag: str) -> list[tuple[str | None, Any]]:
    named = _named_keys(stack, r, keys)
    if not named:
        return []
    owners = set().union(*named.values())
    subject = r
    if r.resource_type.startswith("aws:s3/") and peek(r.props, "bucket") is not None:
        target = judged_bucket(stack, r)
        if target is None:
            return []
        subject = target
    tenant = tags_of(subject.props).get(tag)
    if tenant is UNKNOWN:
        return [
            (r.urn, Unverifiable.at(f"tags.{tag}", f"whose resource is {subject.name}, under tenant {sorted(owners)}'s key?"))
        ]
    foreign = sorted(owners - {tenant})
    if not foreign:
        return []
    whose = f"tenant {tenant}'s" if tenant else "the platform's"
    props = sorted(p for p, o in named.items() if o - {tenant})
    what = "be encrypted under" if set(props) <= _KEY_PROPS else f"use (in {', '.join(f'`{p}`' for p in props)})"
    return [
        (
            r.urn,
            f"{r.resource_type.rsplit(':', 1)[-1]} {r.name} ({whose}) must not {what} tenant "
            f"{', '.join(foreign)}'s KMS key: that tenant's principals decrypt it, and offboarding the tenant "
            "(its key scheduled for deletion) makes it unreadable",
        )
    ]


def _alias_problems(stack: Stack, alias: Any, tenant_keys: dict[str, set[str]], tag: str) -> list[tuple[str | None, Any]]:
    value = peek(alias.props, "targetKeyId")
    built = {key_tenant(stack, k, tag) for k in stack.linked(alias, "targetKeyId", *KMS_KEYS)}
    built = {t for t in built if isinstance(t, str) and t}
    named = tenant_keys.get(value, set()) if isinstance(value, str) else set()
    if not (built and named and named != built):
        return []
    return [
        (
            alias.urn,
            f"KMS alias {alias.name}, built from tenant {', '.join(sorted(built))}'s key, must name that key, not tenant "
            f"{', '.join(sorted(named - built))}'s ({value}): whatever is written through the alias lands under the "
            "other tenant's key, which that tenant decrypts",
        )
    ]


class _Claims:
    """Which tenant an alias name claims: the tenant whose namespace (`t-acme`) it holds as a whole
    segment between separators (`/`, `-`, `_`, `:`, or an end), the longest such namespace when one
    tenant's namespace begins another's (`t-acme` and `t-acme-eu`)."""

    def __init__(self, stack: Stack, namespaces: dict[str, str], platform_namespaces: Iterable[str]):
        self.owner = dict(namespaces)
        self.platform = {str(ns) for ns in platform_namespaces} - set(namespaces)
        self.keys = {arns_of(stack).of(k) for k in stack.of(*KMS_KEYS)} - {None}  # ARNs of the plan's keys

    def of(self, name: str) -> str | None:
        """The namespace `name` claims (the longest one it holds), or None."""
        cuts = [i for i, c in enumerate(name) if c in _SEPARATORS]
        starts, ends = [0, *(i + 1 for i in cuts)], [*cuts, len(name)]
        found = [name[a:b] for a in starts for b in ends if b > a and (name[a:b] in self.owner or name[a:b] in self.platform)]
        return max(found, key=len) if found else None


_SEPARATORS = frozenset("/:_-")


def _claim_problems(
    stack: Stack, alias: Any, tenant_keys: dict[str, set[str]], claims: _Claims, tag: str
) -> list[tuple[str | None, Any]]:
    """An alias whose name claims a tenant must target that tenant's own key: operators, offboarding and
    anything that resolves keys by alias name (`alias/meridian/<stack>-<region>-t-<id>`, components.tenant)
    take what it targets for the tenant's key."""
    name = peek(alias.props, "name")
    if name is UNKNOWN:
        raise unknown("name")
    namespace = claims.of(name) if isinstance(name, str) else None
    if namespace is None:
        return []
    arn = arns_of(stack).key_named(stack, alias, "targetKeyId")
    deps = stack.linked(alias, "targetKeyId", *KMS_KEYS)
    if arn is not None:
        owners, in_plan = tenant_keys.get(arn, set()), arn in claims.keys
        if not owners and in_plan:  # a key of the plan whose tenant tag is unknown: whose key it is, nobody knows yet
            for key in stack.of(*KMS_KEYS):
                if arns_of(stack).of(key) == arn and key_tenant(stack, key, tag) is UNKNOWN:
                    raise unknown(f"key {key.name}'s tags", tag)
    elif known(peek(alias.props, "targetKeyId")) is UNKNOWN and len(deps) == 1:  # a first preview: the key it is built from
        owner = key_tenant(stack, deps[0], tag)
        if owner is UNKNOWN:
            raise unknown(f"key {deps[0].name}'s tags", tag)
        owners, in_plan, arn = ({owner} if owner else set()), True, f"key {deps[0].name}"
    else:
        return [(alias.urn, Unverifiable.at("targetKeyId", f"which key alias {name}, named for namespace {namespace}, targets"))]
    if namespace in claims.platform:
        if not in_plan:
            return [
                (
                    alias.urn,
                    Unverifiable(
                        f"unverifiable here: alias {name} is named for namespace {namespace} of the platform's tenants and "
                        f"targets {arn}, no key of this stack: whether it is that tenant's key only the platform's plan shows"
                    ),
                )
            ]
        tenant = "a tenant of the platform"
        whose = f"tenant {', '.join(sorted(owners))}'s key of this stack" if owners else "a key of this stack"
    else:
        if owners == {claims.owner[namespace]}:
            return []
        tenant = f"tenant {claims.owner[namespace]}"
        whose = (
            f"tenant {', '.join(sorted(owners))}'s key" if owners else "a platform key" if in_plan else "a key outside this plan"
        )
    return [
        (
            alias.urn,
            f"KMS alias {name} names namespace {namespace} ({tenant}), so it must target that "
            f"tenant's own key, not {whose} ({arn}): whatever is encrypted or looked up through the alias would land "
            "under a key the tenant does not own",
        )
    ]
