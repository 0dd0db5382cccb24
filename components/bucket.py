"""SecureBucket: an S3 bucket that cannot be made public, is versioned, KMS-encrypted and TLS-only.

A bucket holding tenant data (`TenantDataRules`) also refuses, in its policy, any PUT under the
tenant root (`tenants/`) that does not name its SSE-KMS key explicitly (the bucket's default key
is never a tenant's), any PUT there by a principal that is not a tenant session (neither a tenant
pod's `kubernetes-namespace` nor a brokered `meridian-tenant` session tag), and any object request
by a tenant session outside its own `tenants/<tenant>/`: one statement per kind of session, through
the session's own tag as a policy variable, and one refusing a tenant role's session that names no
tenant (components.tenantidentity.tenant_session_guards). The policy is the same size for one
tenant or 1,000. A silo bucket (one tenant, `key_arn` set) further refuses every PUT that names
another key than the tenant's. A pool bucket cannot list each tenant's key (20 KB policy limit
against 1,000 tenants): there the key is bound by the key's own policy, which only its tenant's
sessions may use (docs/tenancy-and-cost.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.naming import NAMESPACE_PREFIX
from components.tenantidentity import BROKERED_KEY, BROKERED_TAG, NAMESPACE_KEY, NAMESPACE_TAG, tenant_session_guards

KMS_KEY_HEADER = "s3:x-amz-server-side-encryption-aws-kms-key-id"
OBJECT_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]


@dataclass(frozen=True, kw_only=True)
class TenantDataRules:
    prefix_root: str = "tenants/"
    """Tenant data lives under `<prefix_root><namespace>/` (pool and silo alike)."""
    key_arn: pulumi.Input[str] | None = None
    """Silo: the one tenant key every object must name. Pool: None (bound by the sessions)."""


def tenant_data_statements(bucket_arn: str, prefix_root: str, key_arn: str | None) -> list[dict]:
    """The statements that bind tenant data to tenant sessions and explicit keys (see the module doc)."""
    tenant_objects = f"{bucket_arn}/{prefix_root}*"
    out = [
        {
            "Sid": "TenantWritesNameTheirKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": tenant_objects,
            "Condition": {"Null": {KMS_KEY_HEADER: "true"}},
        },
        {
            "Sid": "TenantWritesUseKms",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": tenant_objects,
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        {
            "Sid": "OnlyTenantSessionsWriteTenantData",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": tenant_objects,
            "Condition": {"StringNotLike": {NAMESPACE_KEY: f"{NAMESPACE_PREFIX}*"}, "Null": {BROKERED_KEY: "true"}},
        },
    ]
    # each kind of tenant session stays in the prefix its own tag names; a tenant role's session naming none reaches nothing
    guard = tenant_session_guards()
    deny = {"Effect": "Deny", "Principal": "*", "Action": OBJECT_ACTIONS}
    out += [
        {
            "Sid": "TenantSessionsStayInTheirPrefix",
            **deny,
            "NotResource": f"{bucket_arn}/{prefix_root}{NAMESPACE_TAG}/*",
            "Condition": guard["pod"],
        },
        {
            "Sid": "BrokeredSessionsStayInTheirTenantsPrefix",
            **deny,
            "NotResource": f"{bucket_arn}/{prefix_root}{BROKERED_TAG}/*",
            "Condition": guard["brokered"],
        },
        {"Sid": "TenantRoleSessionsNameATenant", **deny, "Resource": f"{bucket_arn}/*", "Condition": guard["untagged"]},
    ]
    if key_arn is not None:
        out.append(
            {
                "Sid": "TenantWritesUseTheTenantKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": tenant_objects,
                "Condition": {"StringNotEquals": {KMS_KEY_HEADER: key_arn}},
            }
        )
    return out


def bucket_policy(bucket_arn: str, tenant_data: TenantDataRules | None = None, key_arn: str | None = None) -> str:
    """Deny every request that does not arrive over TLS; for tenant data, the rules above."""
    statements = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if tenant_data is not None:
        statements += tenant_data_statements(bucket_arn, tenant_data.prefix_root, key_arn)
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


@dataclass(frozen=True, kw_only=True)
class SecureBucketArgs:
    kms_key_arn: pulumi.Input[str]
    """Default encryption key for objects written without one."""
    tags: dict[str, str] | None = None
    bucket_name: pulumi.Input[str] | None = None
    """A physical name when something else must know it in advance (an ABAC policy); else auto-named."""
    tenant_data: TenantDataRules | None = None
    """Set when the bucket holds tenant data: its policy then binds that data to tenant sessions and keys."""
    force_destroy: bool = False
    """`pulumi destroy` deletes the bucket with every object version in it (outside production only);
    False: the delete fails on a non-empty bucket until it is emptied by hand."""


class SecureBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning
    """What replication must wait for: `depends_on` the component does not reach the bucket's children."""
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:storage:SecureBucket", name, None, opts)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            tags=args.tags,
            force_destroy=args.force_destroy,
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
        self.versioning = aws.s3.BucketVersioning(
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
        rules = args.tenant_data
        policy = pulumi.Output.all(self.bucket.arn, rules.key_arn if rules else None).apply(
            lambda v: bucket_policy(v[0], rules, v[1])
        )
        # the logical name stays: renaming would replace the policy of every existing bucket
        aws.s3.BucketPolicy(f"{name}-tls-only", bucket=self.bucket.id, policy=policy, opts=under)
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
