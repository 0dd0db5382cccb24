"""Tenant objects: each tenant's blobs in its own place in S3, under its own KMS key, reached only
through credentials scoped to that tenant.

For every tenant the service assumes the tenant data role (`TenantData.role_arn`) naming the
tenant in one session tag, `meridian-tenant` = the tenant's namespace, and passes a session policy
naming only the tenant's prefix, bucket and key (`session_policy`). It cannot pass the tags a
tenant pod's session carries (`kubernetes-namespace`, `eks-cluster-arn`): its own EKS Pod Identity
session already has them, they are transitive, and STS refuses a request tag whose key an inherited
one has (components.tenantidentity). The session's permissions are the intersection of the role's
brokered statements and that session policy, and the bucket and key policies refuse a brokered
session anything of another tenant: the S3 client used for a tenant cannot reach another tenant's
objects or key, whatever the request. Every PUT names the tenant's key explicitly (SSE-KMS); the
bucket policies refuse a PUT under a tenant prefix that does not.

Storage quota: the tenant's `storage_gb` bounds the bytes under its prefix (current versions).
Usage is counted from a listing once per process and kept up to date by this process's own writes;
replicas of the service each keep their own count, so concurrent writers through several replicas
can overshoot by what they write between listings (docs/tenancy-and-cost.md).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Protocol, runtime_checkable

from service.settings import ObjectStorage, TenantData

TENANT_TAG = "meridian-tenant"  # the broker's own session tag key: the Pod Identity keys are inherited
SESSION_SECONDS = 3600
REFRESH_BEFORE_S = 300  # renew a tenant's session this long before it expires
GIB = 1 << 30


def session_policy(
    bucket_arn: str, prefix: str, key_arn: str, *, replica_key_arn: str | None = None, region: str | None = None
) -> str:
    """Objects under the tenant's prefix, listing limited to it, and the tenant's key: nothing else.
    A pool tenant's replicas from the other region are under the region's pool key (`replica_key_arn`):
    decrypting with it is allowed only through S3 in `region`, for the bucket or the tenant's prefix
    (components.tenantidentity.replica_contexts). The session policy of the service's AssumeRole for the tenant."""
    replicas = []
    if replica_key_arn is not None:
        if region is None:
            raise ValueError("a replica key needs the region whose S3 decrypts with it")
        replicas.append(
            {
                "Sid": "TenantReplicas",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": replica_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/{prefix}*"]},
                },
            }
        )
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TenantObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"{bucket_arn}/{prefix}*",
                },
                {
                    "Sid": "TenantListing",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket_arn,
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                },
                {
                    "Sid": "TenantKey",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
                    "Resource": key_arn,
                },
                *replicas,
            ],
        }
    )


class ObjectsUnavailable(Exception):
    """Object storage cannot serve now (unreachable, throttling, not configured): 503 + Retry-After."""


class StorageFull(Exception):
    """The write would take the tenant past its storage quota."""

    def __init__(self, used: int, limit: int):
        super().__init__(f"{used} of {limit} bytes used")
        self.used, self.limit = used, limit


class OverBudget(Exception):
    """The tenant's key refuses new data keys: the cap enforcer tagged it over budget (components.cost)."""


WRITE_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Encrypt")


def refused_by_the_cap(exc, key_arn: str) -> bool:
    """Whether S3 refused a write because KMS explicitly denied the tenant's own key. The tenant role's
    only explicit deny of these actions on a session's own key is the over-budget one
    (components.tenantidentity); a missing grant or another key reads "no ... policy allows", a
    wiring fault of ours that stays a 500. S3 passes KMS's message on in its AccessDenied."""
    error = exc.response.get("Error", {})
    message = error.get("Message", "")
    return (
        error.get("Code") in ("AccessDenied", "KMS.AccessDeniedException", "AccessDeniedException")
        and "explicit deny" in message
        and any(action in message for action in WRITE_KEY_ACTIONS)
        and key_arn.rsplit("/", 1)[-1] in message
    )


class ObjectStore(Protocol):
    async def put(self, tenant: str, key: str, body: bytes, limit_bytes: int) -> dict: ...
    async def get(self, tenant: str, key: str) -> bytes | None: ...
    async def delete(self, tenant: str, key: str) -> bool: ...
    async def list(self, tenant: str, prefix: str, after: str | None, limit: int) -> tuple[list[dict], bool]: ...


@runtime_checkable
class FollowsTenants(Protocol):
    """An object store whose tenants are told when the served set changes (`S3Objects`)."""

    def set_tenants(self, tenants: dict[str, TenantData]) -> None: ...


class S3Objects:
    """The ObjectStore over S3, one scoped session per tenant (boto3, run in worker threads)."""

    def __init__(self, storage: ObjectStorage, tenants: dict[str, TenantData], base_session=None):
        import boto3

        self.storage = storage
        self.tenants = tenants
        self._base = base_session or boto3.session.Session()  # the pod's own identity (Pod Identity / env)
        self._clients: dict[str, tuple[object, float]] = {}
        self._usage: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- credentials ------------------------------------------------------------------------------

    def _assume(self, tenant: str, data: TenantData):
        import boto3

        sts = self._base.client("sts", region_name=self.storage.region, endpoint_url=self.storage.endpoint_url)
        creds = sts.assume_role(
            RoleArn=data.role_arn,
            RoleSessionName=f"meridian-api-{tenant}"[:64],
            DurationSeconds=SESSION_SECONDS,
            Tags=[{"Key": TENANT_TAG, "Value": data.namespace}],
            Policy=session_policy(
                f"arn:aws:s3:::{data.bucket}",
                data.prefix,
                data.kms_key_arn,
                replica_key_arn=data.replica_key_arn,
                region=self.storage.region,
            ),
        )["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.storage.region,
        )
        client = session.client("s3", endpoint_url=self.storage.endpoint_url)
        return client, creds["Expiration"].timestamp()

    def set_tenants(self, tenants: dict[str, TenantData]) -> None:
        """The served tenants changed (service.tenants): a tenant whose data moved or went loses its
        cached session and usage; the others keep theirs."""
        with self._lock:
            stale = {t for t in {*self.tenants, *tenants} if self.tenants.get(t) != tenants.get(t)}
            self.tenants = dict(tenants)
            self._clients = {t: c for t, c in self._clients.items() if t not in stale}
            self._usage = {t: u for t, u in self._usage.items() if t not in stale}

    def client_of(self, tenant: str):
        """The S3 client whose credentials reach only `tenant`'s data (renewed before they expire)."""
        with self._lock:
            cached = self._clients.get(tenant)
            if cached is None or cached[1] - time.time() < REFRESH_BEFORE_S:
                cached = self._clients[tenant] = self._assume(tenant, self.tenants[tenant])
            return cached[0]

    def _call(self, tenant: str, fn):
        from botocore.exceptions import BotoCoreError, ClientError

        data = self.tenants.get(tenant)
        if data is None:
            raise ObjectsUnavailable(f"no object storage configured for tenant {tenant}")
        try:
            return fn(self.client_of(tenant), data)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or code in ("SlowDown", "Throttling", "ThrottlingException", "RequestTimeout"):
                raise ObjectsUnavailable(f"{code or status}: {exc}") from None
            raise  # AccessDenied and the like: a wiring fault of ours, logged as a 500
        except BotoCoreError as exc:  # endpoint unreachable, timeouts
            raise ObjectsUnavailable(f"{type(exc).__name__}: {exc}") from None

    # --- usage ------------------------------------------------------------------------------------

    def _used(self, client, data: TenantData, tenant: str) -> int:
        with self._lock:
            if tenant in self._usage:
                return self._usage[tenant]
        total = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=data.bucket, Prefix=data.prefix):
            total += sum(o["Size"] for o in page.get("Contents", ()))
        with self._lock:
            return self._usage.setdefault(tenant, total)

    def _add(self, tenant: str, delta: int) -> None:
        with self._lock:
            if tenant in self._usage:
                self._usage[tenant] = max(0, self._usage[tenant] + delta)

    @staticmethod
    def _size_of(client, data: TenantData, key: str) -> int | None:
        """The object's size, or None if absent. By listing, not HEAD: a session without an
        unconditioned s3:ListBucket gets 403, not 404, for a missing key (S3 hides existence), and
        the tenant's listing right is conditioned on its prefix."""
        full = data.prefix + key
        r = client.list_objects_v2(Bucket=data.bucket, Prefix=full, MaxKeys=1)
        return next((o["Size"] for o in r.get("Contents", ()) if o["Key"] == full), None)

    # --- the ObjectStore protocol -------------------------------------------------------------------

    async def put(self, tenant: str, key: str, body: bytes, limit_bytes: int) -> dict:
        def go(client, data: TenantData) -> dict:
            used = self._used(client, data, tenant)
            old = self._size_of(client, data, key) or 0
            if used - old + len(body) > limit_bytes:
                raise StorageFull(used, limit_bytes)
            from botocore.exceptions import ClientError

            try:
                r = client.put_object(
                    Bucket=data.bucket,
                    Key=data.prefix + key,
                    Body=body,
                    ContentType="application/octet-stream",
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=data.kms_key_arn,
                    BucketKeyEnabled=True,
                )
            except ClientError as exc:
                if refused_by_the_cap(exc, data.kms_key_arn):
                    raise OverBudget(
                        f"tenant {tenant} is over its monthly budget: new writes are refused until it is under it"
                    ) from None
                raise
            self._add(tenant, len(body) - old)
            return {"key": key, "size": len(body), "etag": r.get("ETag", "").strip('"')}

        return await asyncio.to_thread(self._call, tenant, go)

    async def get(self, tenant: str, key: str) -> bytes | None:
        def go(client, data: TenantData) -> bytes | None:
            from botocore.exceptions import ClientError

            try:
                return client.get_object(Bucket=data.bucket, Key=data.prefix + key)["Body"].read()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in ("NoSuchKey", "404"):
                    return None
                if code in ("AccessDenied", "403") and self._size_of(client, data, key) is None:
                    return None  # a missing key reads as 403 without bucket-wide listing rights
                raise

        return await asyncio.to_thread(self._call, tenant, go)

    async def delete(self, tenant: str, key: str) -> bool:
        def go(client, data: TenantData) -> bool:
            size = self._size_of(client, data, key)
            if size is None:
                return False
            client.delete_object(Bucket=data.bucket, Key=data.prefix + key)
            self._add(tenant, -size)
            return True

        return await asyncio.to_thread(self._call, tenant, go)

    async def list(self, tenant: str, prefix: str, after: str | None, limit: int) -> tuple[list[dict], bool]:
        def go(client, data: TenantData) -> tuple[list[dict], bool]:
            kw = {"Bucket": data.bucket, "Prefix": data.prefix + prefix, "MaxKeys": limit}
            if after:
                kw["StartAfter"] = data.prefix + after
            r = client.list_objects_v2(**kw)
            items = [{"key": o["Key"][len(data.prefix) :], "size": o["Size"]} for o in r.get("Contents", ())]
            return items, bool(r.get("IsTruncated"))

        return await asyncio.to_thread(self._call, tenant, go)


def from_settings(settings) -> S3Objects | None:
    """The settings' object storage, or None when they configure none."""
    if settings.objects is None:
        return None
    return S3Objects(settings.objects, {t.id: t.data for t in settings.tenants if t.data is not None})
