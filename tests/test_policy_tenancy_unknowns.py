"""Unknowns in the tenancy and access rules, replayed on the us stack's real plan through the
analyzer: every namespace label, tag map and ARN that tenant-role-isolated, tenant-namespace-guarded
or tenant-data-access reads, unknown at preview, draws that rule's advisory naming the value: never
a violation (the platform namespace's unknown labels once made the broker "held by tenant
namespaces": 22 mandatory violations) and never silence (a role or attachment whose role is
unknown and built from no role of the stack)."""

from __future__ import annotations

import json

import pytest

from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture


def one(resources, name: str, type_part: str) -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def P(name: str) -> str:
    return f"us-us-east-1-{name}"


def set_input(name: str, type_part: str, prop: str, value, *, at: str = ""):
    """Set `prop` of `name`'s inputs (under the dict `at`, dotted), keeping its dependency links."""

    def mutate(resources):
        node = one(resources, name, type_part)["inputs"]
        for step in filter(None, at.split(".")):
            node = node[step]
        node[prop] = value

    return mutate


def unlinked(name: str, type_part: str, prop: str):
    """`prop` unknown and built from nothing in the stack (its dependency link dropped)."""

    def mutate(resources):
        r = one(resources, name, type_part)
        r["inputs"][prop] = UNKNOWN
        gone = r["propertyDependencies"].pop(prop, [])
        r["dependencies"] = [d for d in r["dependencies"] if d not in gone]

    return mutate


TENANCY, GUARDED, DATA = "tenant-role-isolated", "tenant-namespace-guarded", "tenant-data-access"


def in_both_clusters(namespace: str, key: str, value):
    """The namespace's metadata `key` set in both regions' clusters (else the other cluster's namespace
    of the same name tells the tenant)."""

    def mutate(resources):
        for region in ("us-east-1", "us-west-2"):
            one(resources, f"us-{region}-{namespace}", "Namespace")["inputs"]["metadata"][key] = value

    return mutate


UNKNOWNS = [
    (
        "acme's namespace names, in both clusters",
        in_both_clusters("t-acme-ns", "name", UNKNOWN),
        {TENANCY, GUARDED, DATA},
        "name",
    ),
    (
        "acme's namespace labels, in both clusters",
        in_both_clusters("t-acme-ns", "labels", UNKNOWN),
        {TENANCY, GUARDED, DATA},
        "label",
    ),
    (
        "the platform namespace's labels, in both clusters",
        in_both_clusters("api-ns", "labels", UNKNOWN),
        {TENANCY, GUARDED, DATA},
        "label",
    ),
    ("acme's silo bucket's tags", set_input(P("t-acme-silo-bucket"), "s3/bucket:Bucket", "tags", UNKNOWN), {TENANCY}, "tags"),
    (
        "the platform namespace's labels",
        set_input(P("api-ns"), "Namespace", "labels", UNKNOWN, at="metadata"),
        {TENANCY, GUARDED},
        "labels",
    ),
    (
        "the platform namespace's tenant label",
        set_input(P("api-ns"), "Namespace", "meridian.io/tenant", UNKNOWN, at="metadata.labels"),
        {TENANCY},
        "meridian.io/tenant",
    ),
    (
        "acme's namespace labels",
        set_input(P("t-acme-ns"), "Namespace", "labels", UNKNOWN, at="metadata"),
        {TENANCY, GUARDED},
        "labels",
    ),
    (
        "acme's namespace tenant label",
        set_input(P("t-acme-ns"), "Namespace", "meridian.io/tenant", UNKNOWN, at="metadata.labels"),
        {TENANCY, GUARDED},
        "meridian.io/tenant",
    ),
    ("the shared tenant role's tags", set_input(P("tenant-identity-role"), "role:Role", "tags", UNKNOWN), {TENANCY}, "tags"),
    ("the broker role's tags", set_input(P("tenant-identity-broker"), "role:Role", "tags", UNKNOWN), {TENANCY}, "tags"),
    ("the lb-controller role's tags", set_input(P("lb-controller-role"), "role:Role", "tags", UNKNOWN), {TENANCY}, "tags"),
    (
        "acme's key tags (the ABAC statements rely on them)",
        set_input(P("t-acme-key"), "kms/key", "tags", UNKNOWN),
        {TENANCY},
        "tags",
    ),
    ("globex's key tags", set_input(P("t-globex-key"), "kms/key", "tags", UNKNOWN), {TENANCY, DATA}, "tag"),
    ("acme's association's tags", set_input(P("t-acme-identity"), "podIdentity", "tags", UNKNOWN), {TENANCY}, "tags"),
    (
        "acme's association's namespace",
        set_input(P("t-acme-identity"), "podIdentity", "namespace", UNKNOWN),
        {TENANCY, DATA},
        "namespace",
    ),
    (
        "the broker association's namespace",
        set_input(P("tenant-identity-broker-identity"), "podIdentity", "namespace", UNKNOWN),
        {TENANCY, DATA},
        "namespace",
    ),
    (
        "acme's association's role ARN, built from no role",
        unlinked(P("t-acme-identity"), "podIdentity", "roleArn"),
        {TENANCY, DATA},
        "roleArn",
    ),
    (
        "the broker association's role ARN, built from no role",
        unlinked(P("tenant-identity-broker-identity"), "podIdentity", "roleArn"),
        {TENANCY, DATA},
        "roleArn",
    ),
    (
        "an attachment's role, built from no role",
        unlinked(P("lb-controller-policy-attachment"), "Attachment", "role"),
        {TENANCY, DATA},
        "role",
    ),
    (
        "an attachment's policy ARN, built from no policy",
        unlinked(P("lb-controller-policy-attachment"), "Attachment", "policyArn"),
        {TENANCY, DATA},
        "policyArn",
    ),
]


@pytest.mark.parametrize("what,mutation,rules,prop", UNKNOWNS, ids=[u[0] for u in UNKNOWNS])
def test_an_unknown_tenancy_value_is_each_rules_advisory_never_a_violation(judge, what, mutation, rules, prop):
    found = judge(mutation)
    assert [(v.policy, v.message) for v in found if v.level == "mandatory"] == [], what
    for rule in rules:
        advisories = [v.message for v in found if v.policy == rule]
        assert advisories, (what, rule, [(v.policy, v.message) for v in found])
        assert all(m.startswith("unverifiable at preview: ") for m in advisories), (what, rule, advisories)
        assert any(prop in m for m in advisories), (what, rule, advisories)


# --- a customer-managed policy attached by ARN (world.StackPolicies) ----------------------------

LB_POLICY, LB_ATTACHMENT = P("lb-controller-policy"), P("lb-controller-policy-attachment")


def _by_arn(resources):
    """The lb-controller's attachment names its policy by ARN only (its link dropped)."""
    unlinked(LB_ATTACHMENT, "Attachment", "policyArn")(resources)
    attachment = one(resources, LB_ATTACHMENT, "Attachment")
    attachment["inputs"]["policyArn"] = "arn:aws:iam::123456789012:policy/" + LB_POLICY + "-1ef5ee4"


def _grants_tenant_data(resources):
    policy = one(resources, LB_POLICY, "iam/policy:Policy")
    doc = json.loads(policy["inputs"]["policy"])
    doc["Statement"].append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/tenants/*"})
    policy["inputs"]["policy"] = json.dumps(doc)


def test_a_policy_whose_path_is_unknown_named_by_arn_is_an_advisory_not_a_drop_nor_a_stand_in(judge):
    """Its document might grant tenant data (it does here): which policy the ARN is, is known only after apply."""

    def mutation(resources):
        _grants_tenant_data(resources)
        set_input(LB_POLICY, "iam/policy:Policy", "path", UNKNOWN)(resources)
        _by_arn(resources)

    found = judge(mutation)
    assert [(v.policy, v.message) for v in found if v.level == "mandatory"] == []
    advisories = [v.message for v in found if v.policy == DATA]
    assert any("unverifiable at preview: " in m and LB_POLICY in m and "path" in m for m in advisories), advisories


def test_a_policy_of_the_stack_named_by_its_auto_named_arn_is_read_not_replaced_by_every_action(judge):
    """The twin: with its path known, the ARN is the policy's (its auto-name), so its own document
    decides: nothing for the controller's policy as rendered, a violation once it grants tenant data."""
    assert judge(_by_arn) == []
    found = judge(lambda resources: (_grants_tenant_data(resources), _by_arn(resources)))
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory"]
    assert hits and all("s3:GetObject" in v.message and "every action" not in v.message for v in hits), hits
