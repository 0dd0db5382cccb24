"""Customer-managed KMS keys: one way to make them, so every key gets the same guarantees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.policydocs import service_key_policy

# AWS's longest window (7-30 days): a scheduled deletion can be cancelled for this long (the pack's
# kms-key-rotation-and-policy requires at least this, through the generated policy config)
DELETION_WINDOW_DAYS = 30


def customer_key(
    name: str,
    description: str,
    *,
    parent: pulumi.Resource,
    service_principals: Sequence[str] = (),
    provider: aws.Provider | None = None,
    tags: Mapping[str, str] | None = None,
    guards: Sequence[dict] = (),
) -> aws.kms.Key:
    """A KMS key with rotation, a `DELETION_WINDOW_DAYS` deletion window and an account-scoped policy (plus the AWS
    service principals that must use it directly, and `guards`: Deny statements that hold whatever
    IAM grants). Protected: what it encrypts is unreadable without it."""
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent, provider=provider)).account_id
    principals, denies = list(service_principals), list(guards)
    return aws.kms.Key(
        name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=DELETION_WINDOW_DAYS,
        policy=account_id.apply(lambda acct: service_key_policy(acct, principals, denies)),
        tags=dict(tags) if tags else None,
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, protect=True),
    )
