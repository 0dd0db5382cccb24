"""TenantPool: one region's shared home for pool-tier tenant data (a secure bucket and its key).

Pool tenants get a prefix `tenants/t-<id>/` in this bucket and every object there is encrypted with
the tenant's own key, named on each PUT: the bucket policy refuses a PUT under `tenants/` without an
explicit SSE-KMS key, and tenant sessions reach only their own key (components.bucket). The pool
key is the bucket's default for anything else (nothing tenant-owned; no tenant session may use it).
Silo tenants get a bucket of their own (see Tenant).

Replication to the dr region (components.dr) copies the whole tenant root under one rule and
encrypts the replicas with the dr pool's key: S3 takes one replica key per rule, and a rule per
tenant would stop at S3's 1,000 rules per bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.bucket import SecureBucket, SecureBucketArgs, TenantDataRules
from components.keys import customer_key
from components.naming import TENANT_ROOT


@dataclass(frozen=True, kw_only=True)
class TenantPoolArgs:
    region: str
    """AWS region; must match the provider passed in `opts.providers`."""
    force_destroy: bool = False
    """`pulumi destroy` deletes the bucket with every object version in it (outside production only);
    False: the delete fails on a non-empty bucket until it is emptied by hand."""


class TenantPool(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    versioning: aws.s3.BucketVersioning

    def __init__(self, name: str, args: TenantPoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:tenant:TenantPool", name, None, opts)
        key = customer_key(f"{name}-key", f"{name}: default encryption of the shared tenant bucket", parent=self)
        bucket = SecureBucket(
            f"{name}-data",
            SecureBucketArgs(
                kms_key_arn=key.arn, tenant_data=TenantDataRules(prefix_root=TENANT_ROOT), force_destroy=args.force_destroy
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bucket_name = bucket.bucket_name
        self.bucket_arn = bucket.arn
        self.key_arn = key.arn
        self.versioning = bucket.versioning
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn, "key_arn": self.key_arn})
