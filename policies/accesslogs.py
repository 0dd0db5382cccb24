"""Where a tenant-data bucket's server access logs go: S3 writes one record per request (every tenant's
object keys, requesters and source addresses) into the target bucket, so the target reaches what the
bucket's readers reach of that metadata. For a bucket holding tenant data (the pool, a silo), the
target must be the stack's own bucket, in the source bucket's region, holding no tenant data itself:
a bucket of another account, of another region, or another tenant's is a violation; a target the plan
cannot name at preview is an advisory. (AWS itself delivers server access logs only to a bucket of the
source's region and account: https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html;
the pack refuses the rest before `pulumi up` does, and a same-region bucket of the stack that holds
tenant data, which AWS accepts.)

Settings read: `aws:s3/bucketLogging` (and `bucketLoggingV2`, normalise.py) and a bucket's inline
`logging` (a `BucketV2`'s `loggings`, normalise.py). A target is placed by its name (given name, prefix
or Pulumi auto-name: ruleutil.named_bucket), or, where the name is unknown at preview, by the one bucket
of the stack it was built from.
"""

from __future__ import annotations

from typing import Any

from ruleutil import (
    S3_BUCKETS,
    UNKNOWN,
    Stack,
    UnknownValueError,
    Unverifiable,
    dig,
    judge_each,
    judged_bucket,
    known,
    named_bucket,
    peek,
    resource_region,
    unknown,
)

BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"  # bucketLoggingV2 arrives as it (normalise.py)


def _target(stack: Stack, holder: Any, value: Any, linked: list[Any]) -> Any:
    """The stack bucket a `targetBucket` value names, None if none, or raise where unknown at preview."""
    if isinstance(value, str) and value is not UNKNOWN:
        return named_bucket(stack, value.removeprefix("arn:aws:s3:::"))
    if value is UNKNOWN and len(linked) == 1:
        return linked[0]
    raise unknown("targetBucket")


def check_access_log_targets(stack: Stack, data_buckets: dict[str, str]) -> list[tuple[str | None, Any]]:
    """`data_buckets`: the URN of each bucket holding tenant data -> whose ("tenant X" or "every tenant")."""

    def judge(source: Any, holder: Any, value: Any, linked: list[Any]) -> list[tuple[str | None, Any]]:
        whose = data_buckets.get(source.urn)
        if whose is None:
            return []
        kind = holder.resource_type.rsplit(":", 1)[-1]
        try:
            target = _target(stack, holder, value, linked)
        except UnknownValueError:
            return [
                (
                    holder.urn,
                    Unverifiable.at(
                        "targetBucket", f"where {kind} {holder.name} sends the access logs of {source.name} ({whose} data)"
                    ),
                )
            ]
        region, problem = resource_region(source), None
        if target is None:
            problem = f"{value!r}, no bucket of this stack (another account's, or one the plan does not define)"
        elif target.urn in data_buckets:
            problem = f"{target.name}, which holds {data_buckets[target.urn]} data"
        elif resource_region(target) != region:
            problem = f"{target.name}, in {resource_region(target)}, not {region}"
        if problem is None:
            return []
        return [
            (
                holder.urn,
                f"{kind} {holder.name} must send the server access logs of {source.name} ({whose} data) only to a bucket of "
                f"this stack in {region} that holds no tenant data, not to {problem}: each record names a tenant's object "
                "key, its requester and source address",
            )
        ]

    def judge_setting(setting: Any) -> list[tuple[str | None, Any]]:
        source = judged_bucket(stack, setting)
        if source is None:
            return []
        linked = stack.linked(setting, "targetBucket", *S3_BUCKETS)
        return judge(source, setting, known(peek(setting.props, "targetBucket")), linked)

    def judge_inline(bucket: Any) -> list[tuple[str | None, Any]]:
        logging = known(peek(bucket.props, "logging"))
        if logging is None:
            return []
        value = dig(logging, "targetBucket") if logging is not UNKNOWN else UNKNOWN
        return judge(bucket, bucket, value, stack.linked(bucket, "logging", *S3_BUCKETS))

    return judge_each(stack.of(BUCKET_LOGGING), judge_setting) + judge_each(stack.of(*S3_BUCKETS), judge_inline)
