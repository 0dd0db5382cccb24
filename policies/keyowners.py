"""A tenant's KMS key protects that tenant's data only: nothing of the platform or of another tenant
is encrypted under it, the tenant's alias names it, not another tenant's key, and an alias whose name
claims a tenant (holds its namespace as a whole segment) targets that tenant's own key.

Keys are matched by ARN (the ARNs the plan resolves for the stack's tenant keys: access.arns), never
by the links a property keeps: a value changed by hand keeps its old link.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from access.arns import arns_of
from ruleutil import (
    KMS_KEYS,
    UNKNOWN,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    judge_each,
    key_tenant,
    known,
    peek,
    setting_bucket,
    tags_of,
    unknown,
)

ALIAS = "aws:kms/alias:Alias"
SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
# where a resource names the key that encrypts it (top level; SSE settings apart)
_KEY_PROPS = ("kmsKeyId", "kmsKeyArn", "kmsMasterKeyId", "kmsKey", "masterKeyId")


def _keys_named(resource: Any) -> list[Any]:
    if resource.resource_type in SSE:
        return [
            dig(rule, "applyServerSideEncryptionByDefault", "kmsMasterKeyId") for rule in as_list(dig(resource.props, "rules"))
        ]
    return [peek(resource.props, p) for p in _KEY_PROPS]


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
    users = [r for r in stack.resources if r.resource_type not in KMS_KEYS and r.resource_type != ALIAS]
    claims = _Claims(stack, namespaces or {}, platform_namespaces)
    return judge_each(users, lambda r: _user_problems(stack, r, tenant_keys, tag)) + judge_each(
        stack.of(ALIAS),
        lambda a: _alias_problems(stack, a, tenant_keys, tag) or _claim_problems(stack, a, tenant_keys, claims, tag),
    )


def _user_problems(stack: Stack, r: Any, tenant_keys: dict[str, set[str]], tag: str) -> list[tuple[str | None, Any]]:
    owners = {t for v in _keys_named(r) if isinstance(v, str) for t in tenant_keys.get(v, ())}
    if not owners:
        return []
    subject = r
    if r.resource_type in SSE:
        try:
            target = setting_bucket(stack, r)
        except UnknownValueError:
            return []  # the bucket rules report the unknown name
        if isinstance(target, Unverifiable):
            return []  # the bucket rules (and a cell's lane) report a bucket that is not the stack's
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
    return [
        (
            r.urn,
            f"{r.resource_type.rsplit(':', 1)[-1]} {r.name} ({whose}) must not be encrypted under tenant "
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
