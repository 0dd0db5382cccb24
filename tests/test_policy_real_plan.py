"""Attacks from the security review, replayed on the us stack's real plan through the analyzer: the
runtime backstops removed or disarmed, and a role of a service that runs code reading tenant data.
Each mutated plan must draw the named rule's mandatory violation; the plan as rendered draws none."""

from __future__ import annotations

import copy
import json

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate

from .helpers import ROOT

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture


def one(resources, name_part: str, type_part: str = "") -> dict:
    return next(r for r in resources if name_part in r["name"] and type_part in r["type"])


def remove_backstops(resources):
    kinds = ("accountPublicAccessBlock", "accessanalyzer", "ValidatingAdmissionPolicy")
    resources[:] = [r for r in resources if not any(k in r["type"] for k in kinds)]


def pab_off(resources):
    one(resources, "", "accountPublicAccessBlock")["inputs"].update({"blockPublicPolicy": False, "restrictPublicBuckets": False})


def binding_audit_only(resources):
    one(resources, "us-us-east-1-admission-meridian-tenant-workloads-binding")["inputs"]["spec"]["validationActions"] = ["Audit"]


def binding_narrowed(resources):
    spec = one(resources, "us-us-east-1-admission-meridian-tenant-workloads-binding")["inputs"]["spec"]
    spec["matchResources"] = {"namespaceSelector": {"matchLabels": {"meridian.io/tenant": "none"}}}


def policy_fails_open(resources):
    policy = next(
        r
        for r in resources
        if r["name"] == "us-us-east-1-admission-meridian-tenant-role-bindings"
        and r["type"].endswith(":ValidatingAdmissionPolicy")
    )
    policy["inputs"]["spec"]["failurePolicy"] = "Ignore"


def ec2_role_reads_tenant_data(resources):
    like = one(resources, "tenant-pool-data-tls-only")
    trust = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role = copy.deepcopy(like)
    base = like["urn"].rsplit("::", 2)[0]
    role.update(
        type="aws:iam/role:Role",
        name="box-role",
        urn=f"{base}::aws:iam/role:Role::box-role",
        inputs={"name": "box-role", "assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [trust]})},
        dependencies=[],
        propertyDependencies={},
    )
    attach = copy.deepcopy(role)
    attach.update(
        type="aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        name="box-ro",
        urn=f"{base}::aws:iam/rolePolicyAttachment:RolePolicyAttachment::box-ro",
        inputs={"role": "box-role", "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"},
        dependencies=[role["urn"]],
        propertyDependencies={"role": [role["urn"]]},
    )
    resources += [role, attach]


def _tenant_role_entry(**inputs):
    def mutate(resources):
        entry = copy.deepcopy(one(resources, "", "aws:eks/accessEntry:AccessEntry"))
        entry["name"] += "-tenant"
        entry["urn"] += "-tenant"
        role = one(resources, "us-us-east-1-tenant-identity-role", "aws:iam/role:Role")
        entry["inputs"] = {
            **entry["inputs"],
            "principalArn": f"arn:aws:iam::123456789012:role/meridian/tenants/{role['inputs'].get('name', role['name'])}",
            **inputs,
        }
        resources.append(entry)

    return mutate


ATTACKS = [
    (
        "an access entry for the tenant role in system:masters",
        _tenant_role_entry(kubernetesGroups=["system:masters"]),
        "eks-access-platform-roles-only",
    ),
    ("an EC2_LINUX access entry for the tenant role", _tenant_role_entry(type="EC2_LINUX"), "eks-access-platform-roles-only"),
    ("every runtime backstop removed", remove_backstops, "runtime-backstops-enforced"),
    ("the account public access block turned off", pab_off, "runtime-backstops-enforced"),
    ("the tenant workloads' admission binding on Audit", binding_audit_only, "runtime-backstops-enforced"),
    ("the admission binding narrowed to no namespace", binding_narrowed, "runtime-backstops-enforced"),
    ("an admission policy failing open", policy_fails_open, "runtime-backstops-enforced"),
    ("an EC2 role with AmazonS3ReadOnlyAccess", ec2_role_reads_tenant_data, "tenant-data-access"),
]


@pytest.fixture(scope="module")
def judge(previews):
    plan = previews["us"].plan["resources"]
    config = json.loads((ROOT / "policies" / "config" / "us.json").read_text())
    with Analyzer(ROOT / "policies") as analyzer:
        analyzer.configure(effective_config(analyzer.wait_ready(), config, "us"))

        def run(mutation=None):
            resources = copy.deepcopy(plan)
            if mutation:
                mutation(resources)
            return evaluate(analyzer, [Subject.from_dict(r) for r in resources])

        yield run


def test_the_rendered_plan_draws_no_violation(judge):
    assert [(v.policy, v.message) for v in judge()] == []


@pytest.mark.parametrize("what,mutation,rule", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_attack_on_the_real_plan_is_a_mandatory_violation(judge, what, mutation, rule):
    found = [v for v in judge(mutation) if v.policy == rule]
    assert found and all(v.level == "mandatory" for v in found), (what, [(v.policy, v.level, v.message) for v in judge(mutation)])
