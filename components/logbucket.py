"""The access-log bucket: where a region's load balancer writes its access logs.

ALB log delivery writes only to buckets under SSE-S3 (`AES256`): the one bucket of the stack
without a customer KMS key, which is why it holds nothing but these logs (the policy pack admits
SSE-S3 only on a bucket a load balancer logs to and no tenant's data is tagged in). Otherwise it
is guarded like every bucket: no public access, owner-enforced objects, versioned, TLS only, and
logs expire after `retention_days` (never sooner than the recovery window the pack demands).

The bucket policy lets ELB log delivery write under `<prefix>/AWSLogs/<account>/`: the region's
Elastic Load Balancing account (regions opened before August 2022; `aws.elb.get_service_account`)
and the `logdelivery.elasticloadbalancing.amazonaws.com` service principal (the later regions).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.bucket import bucket_policy

LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


def log_delivery_statements(bucket_arn: str, prefix: str, account_id: str, elb_account_arn: str) -> list[dict]:
    """ELB may put objects under its log prefix for this account, and nothing else."""
    logs = f"{bucket_arn}/{prefix}/AWSLogs/{account_id}/*"
    return [
        {
            "Sid": "ElbAccountWritesLogs",
            "Effect": "Allow",
            "Principal": {"AWS": elb_account_arn},
            "Action": "s3:PutObject",
            "Resource": logs,
        },
        {
            "Sid": "ElbServiceWritesLogs",
            "Effect": "Allow",
            "Principal": {"Service": LOG_DELIVERY_SERVICE},
            "Action": "s3:PutObject",
            "Resource": logs,
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    ]


def access_log_policy(bucket_arn: str, prefix: str, account_id: str, elb_account_arn: str) -> str:
    document = json.loads(bucket_policy(bucket_arn))
    document["Statement"] += log_delivery_statements(bucket_arn, prefix, account_id, elb_account_arn)
    return json.dumps(document)


def access_log_bucket(
    name: str, *, parent: pulumi.Resource, prefix: str, retention_days: int, force_destroy: bool = False
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """The log bucket and its guards, children of `parent` (a function, like components.keys.customer_key:
    the bucket belongs to the load balancer's component). Returns the bucket and its policy: what
    the load balancer must wait for (ELB checks it can write when logging is turned on)."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix must be a plain path without leading or trailing '/', got {prefix!r}")
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    bucket = aws.s3.Bucket(f"{name}-bucket", force_destroy=force_destroy, opts=pulumi.ResourceOptions(parent=parent))
    under = pulumi.ResourceOptions(parent=bucket)
    block = aws.s3.BucketPublicAccessBlock(
        f"{name}-no-public",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=under,
    )
    aws.s3.BucketOwnershipControls(
        f"{name}-owner", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=under
    )
    aws.s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=under)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-sse",
        bucket=bucket.id,
        # ALB log delivery accepts no other encryption (see the module docstring)
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=under,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-expiry",
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-logs",
                "status": "Enabled",
                "filter": {"prefix": f"{prefix}/"},
                "expiration": {"days": retention_days},
                "noncurrent_version_expiration": {"noncurrent_days": retention_days},
            }
        ],
        opts=under,
    )
    invoke = pulumi.InvokeOutputOptions(parent=parent)
    account_id = aws.get_caller_identity_output(opts=invoke).account_id
    elb_account = aws.elb.get_service_account_output(opts=invoke).arn
    policy = aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=bucket.id,
        policy=pulumi.Output.all(bucket.arn, account_id, elb_account).apply(
            lambda v: access_log_policy(v[0], prefix, v[1], v[2])
        ),
        opts=pulumi.ResourceOptions(parent=bucket, depends_on=[block]),  # a policy naming other principals lands after the block
    )
    return bucket, policy
