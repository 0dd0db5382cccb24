"""A tenant's KMS key protects that tenant's data only: nothing of the platform or of another tenant
is encrypted under it, and the tenant's alias names it, not another tenant's key.

Keys are matched by ARN (the ARNs the plan resolves for the stack's tenant keys: access.arns), never
by the links a property keeps: a value changed by hand keeps its old link.
"""

from __future__ import annotations

from typing import Any

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
    peek,
    setting_bucket,
    tags_of,
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


def check_key_owners(stack: Stack, tenant_keys: dict[str, set[str]], tag: str) -> list[tuple[str | None, Any]]:
    """`tenant_keys`: a tenant key's ARN -> the tenants whose keys the plan resolves to it. Judged resource by resource."""
    users = [r for r in stack.resources if r.resource_type not in KMS_KEYS and r.resource_type != ALIAS]
    return judge_each(users, lambda r: _user_problems(stack, r, tenant_keys, tag)) + judge_each(
        stack.of(ALIAS), lambda a: _alias_problems(stack, a, tenant_keys, tag)
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
