"""Security review 17, replayed on the us stack's real plan through the analyzer: the tenant trust pin
compares the cluster's full ARN (partition, the cluster's region, the stack's account, a cluster the
stack defines); the shared (session-tag) tenant role named on a tenant key's resource side (key
policy, `aws:kms/keyPolicy`, grant) without the session-tag condition; `ForAllValues:` on a
single-valued key taken as no constraint. Each attack is a mandatory violation of its rule."""

from __future__ import annotations

import copy
import json

import pytest

from .test_policy_review16 import (
    ACCOUNT,
    DATA,
    ISOLATED,
    NS,
    TENANT_ROLE,
    acme_key_statement,
    key_arn,
    one,
    pool,
    role_arn,
    tenant_statement,
    tenant_trust,
)

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

OWN_CLUSTER = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/us-us-east-1-eks"
ACME_KEY = "us-us-east-1-t-acme-key"


def pinned(arns, drop_account: bool = False):
    def edit(condition):
        condition["ArnEquals"] = {"aws:SourceArn": arns}
        if drop_account:
            condition.pop("StringEquals", None)

    return tenant_trust(edit)


def sandbox_association(resources):
    """A copy of the lb-controller's association naming cluster `sandbox-eks`, and the tenant pin admitting it."""
    copied = copy.deepcopy(one(resources, "us-us-east-1-lb-controller-identity", "podIdentityAssociation"))
    copied["name"] = "sbx"
    copied["urn"] = copied["urn"].rsplit("::", 1)[0] + "::sbx"
    copied["inputs"]["clusterName"] = "sandbox-eks"
    resources.append(copied)
    pinned([OWN_CLUSTER, f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/sandbox-eks"])(resources)


def shared_role_on_acme_key(condition=None):
    def statement(resources):
        st = {
            "Sid": "Shared",
            "Effect": "Allow",
            "Principal": {"AWS": role_arn(resources, TENANT_ROLE)},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
        return {**st, "Condition": condition} if condition else st

    return statement


def key_policy_resource(resources):
    """acme's key policy plus the shared role's statement, as a separate `aws:kms/keyPolicy`."""
    key = one(resources, ACME_KEY, "kms/key:Key")
    doc = json.loads(key["inputs"]["policy"])
    doc["Statement"].append(shared_role_on_acme_key()(resources))
    resources.append(
        {
            **{k: key[k] for k in ("custom", "parent", "provider")},
            "urn": key["urn"].rsplit("::", 1)[0].rsplit("$", 1)[0] + "$aws:kms/keyPolicy:KeyPolicy::acme-kp",
            "type": "aws:kms/keyPolicy:KeyPolicy",
            "name": "acme-kp",
            "inputs": {"keyId": key_arn(ACME_KEY)(resources), "policy": json.dumps(doc)},
            "dependencies": [],
            "propertyDependencies": {},
        }
    )


def grant_to_shared_role(resources):
    key = one(resources, ACME_KEY, "kms/key:Key")
    resources.append(
        {
            **{k: key[k] for k in ("custom", "parent", "provider")},
            "urn": key["urn"].rsplit("::", 1)[0].rsplit("$", 1)[0] + "$aws:kms/grant:Grant::acme-shared-grant",
            "type": "aws:kms/grant:Grant",
            "name": "acme-shared-grant",
            "inputs": {
                "keyId": key_arn(ACME_KEY)(resources),
                "granteePrincipal": role_arn(resources, TENANT_ROLE),
                "operations": ["Decrypt"],
            },
            "dependencies": [],
            "propertyDependencies": {},
        }
    )


ATTACKS = [
    (
        "T11 the pin names a same-named cluster in another region",
        pinned(f"arn:aws:eks:us-east-2:{ACCOUNT}:cluster/us-us-east-1-eks"),
        ISOLATED,
    ),
    (
        "T11 the pin names a same-named cluster in another partition",
        pinned(f"arn:aws-cn:eks:us-east-1:{ACCOUNT}:cluster/us-us-east-1-eks"),
        ISOLATED,
    ),
    (
        "T12 the pin names a same-named cluster of a foreign account, SourceAccount dropped",
        pinned("arn:aws:eks:us-east-1:999988887777:cluster/us-us-east-1-eks", drop_account=True),
        ISOLATED,
    ),
    ("T16b an association naming a cluster makes it no cluster of the stack", sandbox_association, ISOLATED),
]
PENDING = [
    ("O28 acme's key policy lets the shared tenant role decrypt", acme_key_statement(shared_role_on_acme_key()), DATA),
    (
        "O28 acme's key policy lets the shared tenant role decrypt under another tag",
        acme_key_statement(shared_role_on_acme_key({"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "t-globex"}})),
        DATA,
    ),
    ("O27 a separate aws:kms/keyPolicy lets the shared tenant role decrypt acme's key", key_policy_resource, DATA),
    ("O22 a grant on acme's key to the shared tenant role", grant_to_shared_role, DATA),
    (
        "N02 ListBucket on the pool under ForAllValues s3:prefix",
        tenant_statement(
            lambda resources: {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": pool(resources),
                "Condition": {"ForAllValues:StringLike": {"s3:prefix": f"tenants/{NS}/*"}},
            }
        ),
        ISOLATED,
    ),
    (
        "N10 Decrypt on key/* under ForAllValues aws:ResourceTag",
        tenant_statement(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*",
                "Condition": {"ForAllValues:StringEquals": {"aws:ResourceTag/meridian:namespace": NS}},
            }
        ),
        ISOLATED,
    ),
]
ATTACKS += [pytest.param(*a, id=a[0], marks=pytest.mark.xfail(strict=True, reason="not fixed yet")) for a in PENDING]

TWINS = [
    ("the pin names the stack's own cluster by its full ARN", pinned(OWN_CLUSTER)),
    (
        "acme's key policy lets the shared tenant role decrypt for acme's sessions only",
        acme_key_statement(shared_role_on_acme_key({"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "t-acme"}})),
    ),
]


@pytest.mark.parametrize("what,mutation,rule", ATTACKS, ids=[a[0] if isinstance(a, tuple) else a.id for a in ATTACKS])
def test_each_attack_is_a_mandatory_violation_of_its_rule(judge, what, mutation, rule):
    found = judge(mutation)
    hits = [v for v in found if v.policy == rule and v.level == "mandatory"]
    assert hits and all(" must " in v.message for v in hits), (what, [(v.policy, v.level, v.message) for v in found])


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_twin_passes_the_whole_pack(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what
