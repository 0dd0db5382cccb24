"""TenantPool: one region's shared home for pool-tier tenant data (a secure bucket and its key).

Pool tenants get a prefix `tenants/<id>/` in this bucket and encrypt with their own key;
silo tenants get a bucket of their own (see Tenant).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.bucket import SecureBucket, SecureBucketArgs
from components.policydocs import service_key_policy


@dataclass(frozen=True, kw_only=True)
class TenantPoolArgs:
    region: str
    """AWS region; must match the provider passed in `opts.providers`."""


class TenantPool(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TenantPoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:tenant:TenantPool", name, None, opts)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: default encryption of the shared tenant bucket",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=account_id.apply(service_key_policy),
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        bucket = SecureBucket(f"{name}-data", SecureBucketArgs(kms_key_arn=key.arn), opts=pulumi.ResourceOptions(parent=self))
        self.bucket_name = bucket.bucket_name
        self.bucket_arn = bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})
