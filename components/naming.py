"""Physical names that fit AWS's limits by construction.

Logical names stay readable; wherever AWS takes a name from something unbounded (a tenant id, a
stack name), the name is a fixed-width stable hash plus a bounded readable part, and the
function proves the bound (`meridian preflight` checks every name of a plan against AWS's own
schemas as well).
"""

from __future__ import annotations

import hashlib

S3_BUCKET_MAX = 63  # AWS::S3::Bucket BucketName maxLength
TENANT_ID_MAX = 32  # stackconfig.TenantId
NAMESPACE_PREFIX = "t-"
TENANT_ROOT = "tenants/"  # every tenant's data prefix is under it, in the pool and in a silo bucket


def tenant_namespace(tenant_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{tenant_id}"


def tenant_data_prefix(tenant_id: str) -> str:
    """The tenant's key prefix in its bucket (pool or silo): named by namespace, as the ABAC role sees the caller."""
    return f"{TENANT_ROOT}{tenant_namespace(tenant_id)}/"


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


# Load balancers and target groups: names of at most 32 characters, and pulumi-aws auto-names them
# as `<logical name>-<7 random>` (refusing a longer result), so their logical names get 24.
ELB_NAME_MAX = 32
ELB_LOGICAL_MAX = ELB_NAME_MAX - 8
_COMPASS = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c"}


def region_code(region: str) -> str:
    """`us-east-1` -> `use1`, `ap-southeast-2` -> `apse2`, `eu-central-1` -> `euc1`: unique per region."""
    area, *words, number = region.split("-")
    code = ""
    for word in words:
        parts = [p for p in ("north", "south", "east", "west", "central") if p in word]
        code += "".join(_COMPASS[p] for p in sorted(parts, key=word.index)) or word[:2]
    return f"{area}{code}{number}"


def elb_logical_name(prefix: str, thing: str) -> str:
    """`<prefix>-<thing>`, or its first characters plus a stable hash when longer than pulumi-aws can
    auto-name within ELB's 32 characters."""
    readable = f"{prefix}-{thing}"
    if len(readable) <= ELB_LOGICAL_MAX:
        return readable
    digest = stable_hash(prefix, thing, n=6)
    return f"{readable[: ELB_LOGICAL_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def elb_prefix(stack: str, region: str) -> str:
    """The name of a region's load-balancing component, short enough that its children fit: `us-use1-lb`."""
    return f"{stack}-{region_code(region)}-lb"


def tenant_role_name(stack: str, region: str) -> str:
    """The logical name of a platform region's shared tenant role (components.tenancy builds its
    TenantIdentity `<stack>-<region>-tenant-identity`, whose role is `<that>-role`); AWS's name is it
    plus Pulumi's auto-name suffix. A cell's policy config lists these as the only roles its tenants may get."""
    return f"{stack}-{region}-tenant-identity-role"


def cluster_name(stack: str, region: str, pair: int = 0) -> str:
    """A region's EKS cluster: its own (pair 0, where the service runs) or tenant cluster pair k's
    (components.tenantclusters); also the Cluster component's name, which names its children."""
    return f"{stack}-{region}-eks" if pair == 0 else f"{stack}-{region}-eks-{pair}"
