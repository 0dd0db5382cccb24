"""The tenant role's policies and tenant cluster pairs (review aws-19, finding 2): the data statements
admit the region's clusters by name patterns whose size does not grow with the pairs, and which admit
no cluster another stack names (components.naming.cluster_name); the trust keeps exact ARNs, and
`stackconfig.CLUSTER_PAIRS_MAX` is the most pairs whose trust fits IAM's default 2,048 characters for
the longest stack name and region the config allows."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.naming import cluster_name, silo_bucket_prefix
from components.tenantidentity import abac_policy, pair_cluster_patterns, trust_policy
from meridian.preflight.limits import ROLE_INLINE, TRUST_POLICY
from stackconfig import ZONE_REGIONS
from stackconfig.models import CLUSTER_PAIRS_MAX, TRUST_POLICY_CHARS

ACCOUNT = "123456789012"
REGIONS = sorted({r for regions in ZONE_REGIONS.values() for r in regions})
LONGEST_REGION = max(REGIONS, key=len)
LONGEST_STACK = "a" * 24  # stackconfig.StackName: at most 24 characters
STACK_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,22}[a-z0-9]", fullmatch=True)
BROKER = f"arn:aws:iam::{ACCOUNT}:role/{'b' * 64}"  # the longest role name IAM allows


def _arn(stack: str, region: str, pair: int = 0) -> str:
    return f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{cluster_name(stack, region, pair)}"


def _admits(patterns: list[str], value: str) -> bool:
    """IAM's `StringLike`: `*` any run of characters, `?` exactly one, everything else literal."""
    return any(re.fullmatch("".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in p), value) for p in patterns)


def _chars(document: str) -> int:
    return len("".join(document.split()))  # as IAM counts: whitespace excluded


def _pairs(stack: str, region: str, n: int) -> list[str]:
    return [_arn(stack, region, k) for k in range(1, n + 1)]


def _data_policy(stack: str, region: str, pairs: int) -> str:
    return abac_policy(
        account_id=ACCOUNT,
        region=region,
        cluster_arn=_arn(stack, region),
        pool_bucket_arn=f"arn:aws:s3:::{'p' * 63}",
        pool_key_arn=f"arn:aws:kms:{region}:{ACCOUNT}:key/{'0' * 36}",
        silo_bucket_prefix=silo_bucket_prefix(ACCOUNT, stack, region),
        prefix_root="tenants/",
        service_namespace="meridian",
        tenant_cluster_arns=_pairs(stack, region, pairs),
    )


@settings(max_examples=300, deadline=None)
@given(stack=STACK_NAMES, other=STACK_NAMES, region=st.sampled_from(REGIONS), pairs=st.integers(1, 99))
def test_the_patterns_admit_the_stacks_own_clusters_and_no_other_stacks(stack, other, region, pairs):
    patterns = pair_cluster_patterns(_arn(stack, region), _pairs(stack, region, pairs))
    assert all(_admits(patterns, _arn(stack, region, k)) for k in range(pairs + 1))
    if other != stack:
        assert not any(_admits(patterns, _arn(other, region, k)) for k in range(100))
    # another region's or account's cluster of the same name is not admitted either
    elsewhere = next(r for r in REGIONS if r != region)
    assert not _admits(patterns, _arn(stack, region, 1).replace(f":{ACCOUNT}:", ":210987654321:"))
    assert not _admits(patterns, _arn(stack, region, 1).replace(f":{region}:", f":{elsewhere}:"))


@pytest.mark.parametrize(
    ("stack", "other"),
    [
        ("us", "us-us-east-1-eks-x"),  # a stack named like this stack's clusters: its own end in `-eks` / `-<k>`
        ("us", "us-us-east-1-eks"),
        ("us-us-east-1-eks", "us"),
        ("a", "a-us-east-1-eks-1"),
    ],
)
def test_stack_names_that_embed_another_stacks_cluster_name_are_not_admitted(stack, other):
    patterns = pair_cluster_patterns(_arn(stack, "us-east-1"), _pairs(stack, "us-east-1", 42))
    assert not any(_admits(patterns, _arn(other, "us-east-1", k)) for k in range(100))


def test_a_tenant_cluster_not_named_after_the_regions_own_is_refused():
    with pytest.raises(ValueError, match="is not named"):
        pair_cluster_patterns(_arn("us", "us-east-1"), [_arn("eu", "us-east-1", 1)])
    with pytest.raises(ValueError, match="is not named"):
        pair_cluster_patterns(_arn("us", "us-east-1"), [f"{_arn('us', 'us-east-1')}-x1"])


def test_the_data_policy_does_not_grow_with_the_pairs():
    sizes = {n: _chars(_data_policy(LONGEST_STACK, LONGEST_REGION, n)) for n in (1, 9, 10, 50, 99)}
    assert sizes[1] == sizes[9] and sizes[10] == sizes[50] == sizes[99]
    assert sizes[99] <= ROLE_INLINE.maximum, sizes
    # the pod statements name the region's own cluster and patterns only, never a pair's ARN
    doc = json.loads(_data_policy("us", "us-east-1", 12))
    pods = next(s for s in doc["Statement"] if s["Sid"] == "PoolObjects")
    own = _arn("us", "us-east-1")
    assert pods["Condition"]["StringLike"]["aws:PrincipalTag/eks-cluster-arn"] == [own, f"{own}-?", f"{own}-??"]


def test_without_pairs_the_pod_statements_name_the_own_cluster_exactly():
    doc = json.loads(_data_policy("us", "us-east-1", 0))
    pods = next(s for s in doc["Statement"] if s["Sid"] == "PoolObjects")
    assert pods["Condition"]["StringEquals"]["aws:PrincipalTag/eks-cluster-arn"] == _arn("us", "us-east-1")
    assert "aws:PrincipalTag/eks-cluster-arn" not in pods["Condition"]["StringLike"]


def _trust_chars(stack: str, region: str, pairs: int) -> int:
    return _chars(trust_policy(ACCOUNT, _arn(stack, region), BROKER, _pairs(stack, region, pairs)))


def test_the_pair_ceiling_is_where_the_longest_trust_stops_fitting():
    assert TRUST_POLICY_CHARS == TRUST_POLICY.maximum
    assert _trust_chars(LONGEST_STACK, LONGEST_REGION, CLUSTER_PAIRS_MAX) <= TRUST_POLICY.maximum
    assert _trust_chars(LONGEST_STACK, LONGEST_REGION, CLUSTER_PAIRS_MAX + 1) > TRUST_POLICY.maximum


@pytest.mark.parametrize("region", REGIONS)
def test_every_zone_stack_fits_at_the_ceiling(region):
    assert _trust_chars(LONGEST_STACK, region, CLUSTER_PAIRS_MAX) <= TRUST_POLICY.maximum
    assert _chars(_data_policy(LONGEST_STACK, region, CLUSTER_PAIRS_MAX)) <= ROLE_INLINE.maximum
