"""SecureBucket: an S3 bucket that cannot be made public, is versioned, KMS-encrypted and TLS-only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


def tls_only_policy(bucket_arn: str) -> str:
    """Deny every request that does not arrive over TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


@dataclass(frozen=True, kw_only=True)
class SecureBucketArgs:
    kms_key_arn: pulumi.Input[str]
    """Default encryption key for objects written without one."""
    tags: dict[str, str] | None = None
    bucket_name: pulumi.Input[str] | None = None
    """A physical name when something else must know it in advance (an ABAC policy); else auto-named."""


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:storage:SecureBucket", name, None, opts)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=True),  # tenant data lives here
        )
        under = pulumi.ResourceOptions(parent=self.bucket)
        aws.s3.BucketPublicAccessBlock(
            f"{name}-no-public",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=under,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-owner", bucket=self.bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=under
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id, versioning_configuration={"status": "Enabled"}, opts=under
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-sse",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key_arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=under,
        )
        aws.s3.BucketPolicy(f"{name}-tls-only", bucket=self.bucket.id, policy=self.bucket.arn.apply(tls_only_policy), opts=under)
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
