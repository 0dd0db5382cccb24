"""Security review 17, replayed on the us stack's real plan through the analyzer: the tenant trust pin
compares the cluster's full ARN (partition, the cluster's region, the stack's account, a cluster the
stack defines); the shared (session-tag) tenant role named on a tenant key's resource side (key
policy, `aws:kms/keyPolicy`, grant) without the session-tag condition; `ForAllValues:` on a
single-valued key taken as no constraint. Each attack is a mandatory violation of its rule."""

from __future__ import annotations

import copy
import json

import pytest

from .test_policy_review16 import (  # noqa: F401 (cell_judge: the cell's plan, a module fixture)
    ACCOUNT,
    CELL,
    CLUSTER_TAG,
    DATA,
    ISOLATED,
    NS,
    TENANT_ROLE,
    _cell_resource,
    acme_key_statement,
    cell_judge,
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
        condition["StringEquals"][CLUSTER_TAG] = arns
        if drop_account:
            condition["StringEquals"].pop("aws:SourceAccount")

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


def without_key_denies(mutation):
    """acme's key policy without its Deny statements (other tenants' sessions), then `mutation`."""

    def mutate(resources):
        key = one(resources, ACME_KEY, "kms/key:Key")
        doc = json.loads(key["inputs"]["policy"])
        doc["Statement"] = [st for st in doc["Statement"] if st["Effect"] != "Deny"]
        key["inputs"]["policy"] = json.dumps(doc)
        mutation(resources)

    return mutate


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
RESOURCE_SIDE = [
    ("O28 acme's key policy lets the shared tenant role decrypt", acme_key_statement(shared_role_on_acme_key())),
    (
        "O28 acme's key policy lets the shared tenant role decrypt under another tag",
        acme_key_statement(shared_role_on_acme_key({"StringEquals": {"aws:PrincipalTag/kubernetes-namespace": "t-globex"}})),
    ),
    ("O27 a separate aws:kms/keyPolicy lets the shared tenant role decrypt acme's key", key_policy_resource),
    ("O22 a grant on acme's key to the shared tenant role", grant_to_shared_role),
]
ATTACKS += [(f"{what}, the key's tenant denies dropped", without_key_denies(m), DATA) for what, m in RESOURCE_SIDE]
FOR_ALL_VALUES = [
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
ATTACKS += FOR_ALL_VALUES


def tenant_keys_of(resource: str):
    return tenant_statement(
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": resource,
            "Condition": {"StringEquals": {"aws:ResourceTag/meridian:namespace": NS}},
        }
    )


ATTACKS += [
    ("N08 Decrypt on key/* of any account", tenant_keys_of("arn:aws:kms:us-east-1:*:key/*"), ISOLATED),
    ("N08 Decrypt on key/* of a foreign account", tenant_keys_of("arn:aws:kms:us-east-1:999988887777:key/*"), ISOLATED),
    ("N12 Decrypt on key/* of every region", tenant_keys_of(f"arn:aws:kms:*:{ACCOUNT}:key/*"), ISOLATED),
    ("N12 Decrypt on key/* of another zone's region", tenant_keys_of(f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/*"), ISOLATED),
    (
        "N11 objects of the bucket named just like the namespace",
        tenant_statement({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::{NS}/*"}),
        ISOLATED,
    ),
]

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


@pytest.mark.parametrize("what,mutation", RESOURCE_SIDE, ids=[r[0] for r in RESOURCE_SIDE])
def test_the_shared_role_on_acme_key_is_held_by_the_keys_own_denies(judge, what, mutation):
    """As review 17 wrote them (O22, O27, O28), acme's key policy keeps its Deny for sessions tagged with another
    tenant's namespace; an explicit Deny in a key policy overrides any Allow and any grant
    (https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html), so the evaluator finds no other
    tenant reaching the key. Without the denies (the attacks above) it does. tenant-role-isolated refuses them either
    way, crediting no Deny (test_policy_review17_keyside.py)."""
    assert [v.message for v in judge(mutation) if v.policy == DATA and v.level == "mandatory"] == [], what


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_twin_passes_the_whole_pack(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


def cell_grant(key_id: str, linked_to: str | None = None):
    """A KMS grant in the cell to the platform's tenant role (the role its tenants' associations name)."""

    def mutate(resources):
        role = next(r for r in resources if "podIdentityAssociation" in r["type"])["inputs"]["roleArn"]
        grant = _cell_resource(
            "aws:kms/grant:Grant", "acme-grant", {"keyId": key_id, "granteePrincipal": role, "operations": ["Decrypt"]}
        )
        if linked_to:
            key = one(resources, linked_to, "kms/key:Key")
            grant["propertyDependencies"] = {"keyId": [key["urn"]]}
            grant["dependencies"] = [key["urn"]]
        resources.append(grant)

    return mutate


def test_c24_a_cell_granting_on_the_platforms_tenant_key_is_a_mandatory_violation(cell_judge):  # noqa: F811
    found = cell_judge(cell_grant(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/c9a76d15-49d9-4957-ac9a-c9a76d1549d9"))
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory" and "of a cell must open only" in v.message]
    assert hits, [(v.policy, v.level, v.message) for v in found]


def test_a_cell_grant_on_its_own_key_is_not_a_lane_violation(cell_judge):  # noqa: F811
    found = cell_judge(cell_grant(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/own", linked_to="us-us-east-1-t-wonka-key"))
    assert [v.message for v in found if "of a cell must open only" in v.message] == []
