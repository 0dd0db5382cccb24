"""S3: a pool bucket with every guard, its replica in the dr region, replication, and access logs to a log bucket
of the pool's region."""

from __future__ import annotations

import json

from .base import (
    ACCOUNT,
    DELETE,
    DR,
    PRIMARY,
    Builder,
    Mutations,
    add,
    add_statement,
    drop,
    resource,
    set_input,
    stack_tags,
    urn,
)
from .keys import DR_KEY, DR_KEY_ARN, KEY_ARN, PLATFORM_KEY

BUCKET = "aws:s3/bucket:Bucket"
POOL, REPLICA, LOGS = urn(BUCKET, "pool-bucket"), urn(BUCKET, "pool-replica-bucket"), urn(BUCKET, "access-logs-bucket")


def build(b: Builder) -> None:
    for name, region, key in (
        ("pool", PRIMARY, PLATFORM_KEY),
        ("pool-replica", DR, DR_KEY),
        ("access-logs", PRIMARY, PLATFORM_KEY),
    ):
        prov = b.providers[region]
        bucket = b.add(BUCKET, f"{name}-bucket", {}, region=region, provider=prov)
        on = {"bucket": [bucket]}
        b.add(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{name}-no-public",
            {
                "bucket": f"{name}-bucket-1234567",
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            region=region,
            provider=prov,
            parent=bucket,
            deps=on,
            tags=False,
        )
        b.add(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{name}-versioning",
            {"bucket": f"{name}-bucket-1234567", "versioningConfiguration": {"status": "Enabled"}},
            region=region,
            provider=prov,
            parent=bucket,
            deps=on,
            tags=False,
        )
        b.add(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{name}-sse",
            {
                "bucket": f"{name}-bucket-1234567",
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": KEY_ARN if region == PRIMARY else DR_KEY_ARN,
                        },
                        "bucketKeyEnabled": True,
                    }
                ],
            },
            region=region,
            provider=prov,
            parent=bucket,
            deps={"bucket": [bucket], "rules": [key]},
            tags=False,
        )
        arn = f"arn:aws:s3:::{name}-bucket-1234567"
        b.add(
            "aws:s3/bucketPolicy:BucketPolicy",
            f"{name}-tls-only",
            {
                "bucket": f"{name}-bucket-1234567",
                "policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "DenyInsecureTransport",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": [arn, f"{arn}/*"],
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                ),
            },
            region=region,
            provider=prov,
            parent=bucket,
            deps={"bucket": [bucket], "policy": [bucket]},
            tags=False,
        )
    b.add(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "pool-replication",
        {
            "bucket": "pool-bucket-1234567",
            "role": f"arn:aws:iam::{ACCOUNT}:role/replication",
            "rules": [
                {
                    "id": "all",
                    "status": "Enabled",
                    "destination": {
                        "bucket": "arn:aws:s3:::pool-replica-bucket-1234567",
                        "storageClass": "STANDARD",
                        "encryptionConfiguration": {"replicaKmsKeyId": DR_KEY_ARN},
                    },
                }
            ],
        },
        deps={"bucket": [POOL], "rules": [REPLICA]},
        tags=False,
    )
    b.add(
        "aws:s3/bucketLoggingV2:BucketLoggingV2",
        "pool-access-logs",
        {"bucket": "pool-bucket-1234567", "targetBucket": "access-logs-bucket-1234567", "targetPrefix": "access/pool/"},
        deps={"bucket": [POOL]},
        tags=False,
    )


LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def lifecycle(days: int, *, noncurrent: bool = False) -> dict:
    """A lifecycle configuration of the pool bucket expiring objects (or old versions) after `days`."""
    expiry = {"noncurrentVersionExpiration": {"noncurrentDays": days}} if noncurrent else {"expiration": {"days": days}}
    return resource(
        LIFECYCLE,
        "pool-lifecycle",
        {"bucket": "pool-bucket-1234567", "rules": [{"id": "expire", "status": "Enabled", "filter": {}, **expiry}]},
        deps={"bucket": [POOL]},
    )


MUTATIONS: Mutations = {
    "s3-lifecycle-keeps-retention": [
        ("a lifecycle rule expiring objects after a day", add(lifecycle(1))),
        ("a lifecycle rule expiring noncurrent versions after a day", add(lifecycle(1, noncurrent=True))),
    ],
    "s3-bucket-encrypted": [
        (
            "default encryption switched to SSE-S3",
            set_input("pool-sse", "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256"),
        ),
        ("a bucket without default-encryption config", drop("pool-sse")),
        (
            "replicas written without a customer key",
            set_input("pool-replication", "rules.0.destination.encryptionConfiguration", DELETE),
        ),
    ],
    "s3-bucket-tls-only": [
        ("the TLS-only bucket policy removed", drop("pool-tls-only")),
        (
            "a bucket policy that allows instead of denying plain HTTP",
            set_input(
                "pool-tls-only",
                "policy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                "Action": "s3:GetObject",
                                "Resource": "*",
                            }
                        ]
                    }
                ),
            ),
        ),
    ],
    "s3-bucket-public-access-blocked": [
        ("the bucket made public: public access block off", set_input("pool-no-public", "blockPublicPolicy", False)),
        ("a bucket without a public access block", drop("pool-replica-no-public")),
        ("a public-read canned ACL", set_input("pool-bucket", "acl", "public-read")),
        (
            "a bucket policy open to everyone",
            add_statement(
                "pool-tls-only",
                {
                    "Sid": "Public",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::pool-bucket-1234567/*",
                },
            ),
        ),
        (
            "Principal * allowed under a condition",
            add_statement(
                "pool-tls-only",
                {
                    "Sid": "FromVpce",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::pool-bucket-1234567/*",
                    "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1"}},
                },
            ),
        ),
        (
            "the bucket's inline policy open to everyone",
            set_input(
                "pool-bucket",
                "policy",
                json.dumps(
                    {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": "*",
                                "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::pool-bucket-1234567/*",
                            }
                        ]
                    }
                ),
            ),
        ),
        (
            "a BucketAcl grant to AllUsers",
            add(
                resource(
                    "aws:s3/bucketAcl:BucketAcl",
                    "pool-acl",
                    {
                        "bucket": "pool-bucket-1234567",
                        "accessControlPolicy": {
                            "owner": {"id": "o"},
                            "grants": [
                                {
                                    "permission": "READ",
                                    "grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
                                }
                            ],
                        },
                    },
                    deps={"bucket": [POOL]},
                )
            ),
        ),
        (
            "a BucketV2 without a public access block",
            add(resource("aws:s3/bucketV2:BucketV2", "legacy", {"tags": stack_tags(PRIMARY)})),
        ),
    ],
    "s3-bucket-versioning-enabled": [
        ("versioning suspended", set_input("pool-versioning", "versioningConfiguration.status", "Suspended")),
        ("a bucket without versioning", drop("pool-replica-versioning")),
    ],
    "s3-bucket-access-logging": [
        ("a bucket without access logs", drop("pool-access-logs")),
    ],
}
