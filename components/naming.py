"""Physical names that fit AWS's limits by construction.

Logical names stay readable; wherever AWS takes a name from something unbounded (a tenant id, a
stack name), the name is a fixed-width stable hash plus a bounded readable part, and the
function proves the bound (`meridian preflight` checks every name of a plan against AWS's own
schemas as well).
"""

from __future__ import annotations

import hashlib

S3_BUCKET_MAX = 63  # AWS::S3::Bucket BucketName maxLength
TENANT_ID_MAX = 32  # components.config.TenantId
NAMESPACE_PREFIX = "t-"


def tenant_namespace(tenant_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{tenant_id}"


def tenant_data_prefix(tenant_id: str) -> str:
    """The tenant's key prefix in its bucket (pool or silo): named by namespace, as the ABAC role sees the caller."""
    return f"tenants/{tenant_namespace(tenant_id)}/"


def stable_hash(*parts: str, n: int = 10) -> str:
    """Lowercase hex, the same for the same parts on every run and machine."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:n]


def silo_bucket_prefix(account_id: str, stack: str, region: str) -> str:
    """`mer-<10 hex>-`: bucket names are global across all accounts, so the prefix hashes the account,
    stack and region; it is also the literal part of the ABAC role's silo bucket ARN."""
    return f"mer-{stable_hash(account_id, stack, region)}-"


def silo_bucket_name(prefix: str, namespace: str) -> str:
    name = f"{prefix}{namespace}"
    if len(name) > S3_BUCKET_MAX:
        raise ValueError(f"silo bucket name {name!r} is {len(name)} characters, over S3's {S3_BUCKET_MAX}")
    return name


# The bound, proved once: prefix (15) + namespace prefix (2) + the longest tenant id.
assert len(silo_bucket_prefix("0" * 12, "s", "r")) + len(NAMESPACE_PREFIX) + TENANT_ID_MAX <= S3_BUCKET_MAX
