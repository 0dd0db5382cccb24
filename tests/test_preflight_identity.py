"""Preflight `identity`: the three stacks pass; each class it exists for fails when the old shape is
put back into a recorded plan (issue 24, findings 1, 5 and 6).

The program runs once per stack (in a subprocess: the SDK's runtime is global); each failing case
changes a copy of the recorded `us` plan the way the old code rendered it, and runs the real check.
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.protobuf import json_format, struct_pb2

from meridian.engine.plan import Plan
from meridian.preflight.checks import CHECKS, Context
from meridian.preflight.identity import check_identity
from stackconfig import load_stack

from .helpers import ROOT, STACKS

pytestmark = pytest.mark.slow  # the plans come from offline runs of the program

DUMP = r"""
import pickle, sys
from pathlib import Path
from meridian.engine.plan import Plan
from meridian.engine.run import run_program
run = run_program(Path(sys.argv[1]), sys.argv[2])
Path(sys.argv[3]).write_bytes(pickle.dumps(Plan("meridian", sys.argv[2], run.registrations, run.outputs)))
"""

ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, tuple[Plan, object]]:
    out = tmp_path_factory.mktemp("preflight-identity")

    def record(stack: str) -> tuple[Plan, object]:
        path = out / f"{stack}.pickle"
        proc = subprocess.run(
            [sys.executable, "-c", DUMP, str(ROOT), stack, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return pickle.loads(path.read_bytes()), load_stack(ROOT, stack)

    with ThreadPoolExecutor(len(STACKS)) as pool:
        return dict(zip(STACKS, pool.map(record, STACKS), strict=True))


def changed(plan: Plan, token: str, where, change) -> Plan:
    """A copy of the plan with `change(inputs)` applied to every registration of `token` matching `where`."""
    regs = copy.deepcopy(plan.registrations)
    hits = 0
    for reg in regs:
        if reg.type == token and where(reg):
            inputs = json_format.MessageToDict(reg.inputs)
            change(inputs)
            reg.inputs = json_format.ParseDict(inputs, struct_pb2.Struct())
            reg._dict = None
            hits += 1
    assert hits, f"no {token} matched"
    return Plan(plan.project, plan.stack, regs, plan.outputs)


def judged(plan: Plan, cfg) -> list[str]:
    result = check_identity(Context.of(plan, cfg))
    return [f.problem for f in result.findings]


@pytest.mark.parametrize("stack", STACKS)
def test_the_real_stacks_pass(recorded, stack):
    plan, cfg = recorded[stack]
    result = check_identity(Context.of(plan, cfg))
    assert result.passed, [f.problem for f in result.findings]
    # every association, the broker's chain per region, each tenant's session policy, every namespace with pods
    assert result.checked >= 2 * (2 * len(cfg.tenants) + 3), result.checked
    assert "identity" in CHECKS


def _tenant_association(reg) -> bool:
    return reg.name.endswith("-t-acme-identity")


def test_a_session_policy_with_session_tags_on_fails(recorded):
    """Finding 1, the old shape: a tenant association carrying its session policy, tags left on."""
    plan, cfg = recorded["us"]
    policy = json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/tenants/t-acme/*"}]}
    )
    broken = changed(plan, ASSOCIATION, _tenant_association, lambda i: i.update(policy=policy))
    problems = judged(broken, cfg)
    assert len(problems) == 2 and all("without `disableSessionTags = true`" in p for p in problems), problems


def test_session_tags_off_under_a_role_that_reads_them_fails(recorded):
    """The provider's way out (tags off) breaks the role: its ABAC statements read the namespace tag."""
    plan, cfg = recorded["us"]
    broken = changed(plan, ASSOCIATION, _tenant_association, lambda i: i.update(disableSessionTags=True))
    problems = judged(broken, cfg)
    assert problems and all("turns Pod Identity's session tags off" in p for p in problems), problems
    assert all("aws:PrincipalTag/kubernetes-namespace" in p for p in problems)


def _tenant_role(reg) -> bool:
    return reg.name.endswith("-tenant-identity-role")


def _broker_requires(conditions: dict):
    def change(inputs: dict) -> None:
        doc = json.loads(inputs["assumeRolePolicy"])
        for st in doc["Statement"]:
            if st.get("Sid") == "ServiceBroker":
                st["Condition"] = conditions
        inputs["assumeRolePolicy"] = json.dumps(doc)

    return change


def test_a_broker_trust_requiring_inherited_transitive_tags_fails(recorded):
    """Finding 5, the old shape: the tenant role trusts the broker only with the tags a tenant pod's
    session has, which the broker's own Pod Identity session already carries transitively."""
    plan, cfg = recorded["us"]
    old = {
        "StringLike": {"aws:RequestTag/kubernetes-namespace": "t-*"},
        "StringEquals": {"aws:RequestTag/eks-cluster-arn": "arn:aws:eks:us-east-1:123456789012:cluster/c"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["kubernetes-namespace", "eks-cluster-arn"]},
    }
    broken = changed(plan, "aws:iam/role:Role", _tenant_role, _broker_requires(old))
    problems = judged(broken, cfg)
    assert len(problems) == 2, problems  # one per region
    assert all("eks-cluster-arn, kubernetes-namespace" in p and "STS refuses" in p for p in problems)


def test_a_chain_over_the_session_tag_limit_fails(recorded):
    plan, cfg = recorded["us"]
    many = {"StringEquals": {f"aws:RequestTag/k{i}": "v" for i in range(45)}}
    problems = judged(changed(plan, "aws:iam/role:Role", _tenant_role, _broker_requires(many)), cfg)
    assert problems and all("51 tags, over STS's 50" in p for p in problems), problems


def _old_tenant_egress(inputs: dict) -> None:
    """The tenant NetworkPolicy as the old code rendered it: DNS, the database, 443 outside private ranges."""
    spec = inputs["spec"]
    private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    spec["egress"] = [rule for rule in spec["egress"] if any(p.get("port") in (53, 5432) for p in rule.get("ports", []))] + [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": private}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]


def test_tenant_egress_without_the_agent_or_the_endpoints_fails(recorded):
    """Finding 6, the old shape: 443 outside the private ranges only, so no credentials from the agent
    and no interface endpoint (they answer on private addresses in the VPC)."""
    plan, cfg = recorded["us"]
    broken = changed(plan, NETWORK_POLICY, lambda r: r.name.endswith("-t-acme-allow-needed"), _old_tenant_egress)
    problems = judged(broken, cfg)
    assert len(problems) == 2, problems  # t-acme in each region
    for p in problems:
        assert "namespace t-acme" in p and "the EKS Pod Identity agent" in p
        assert "the sts interface endpoint" in p and "the secretsmanager interface endpoint" in p
        assert "DNS" not in p and "public endpoints" not in p


def test_a_platform_namespace_fenced_without_its_allows_fails(recorded):
    """The service's namespace under a default deny alone: no DNS, no credentials, no AWS."""
    plan, cfg = recorded["us"]
    broken = changed(plan, NETWORK_POLICY, lambda r: r.name.endswith("-api-allow-needed"), lambda i: i["spec"].update(egress=[]))
    problems = judged(broken, cfg)
    platform = [p for p in problems if "namespace platform" in p]
    assert platform and len(platform) == len(problems), problems
    assert all("DNS" in p and "agent" in p and "public endpoints" in p for p in platform)


def test_a_policy_that_selects_other_pods_does_not_isolate_these(recorded):
    """Kubernetes semantics: egress is isolated only by policies selecting the pod; one selecting
    other labels leaves the service's pods unrestricted (and so passing)."""
    plan, cfg = recorded["us"]

    def other_pods(inputs: dict) -> None:
        inputs["spec"].update(podSelector={"matchLabels": {"app": "something-else"}}, egress=[])

    broken = changed(
        plan, NETWORK_POLICY, lambda r: r.name.endswith("-api-allow-needed") or r.name.endswith("-api-default-deny"), other_pods
    )
    assert check_identity(Context.of(broken, cfg)).passed


def test_egress_coverage_is_remembered_by_everything_it_depends_on():
    """_uncovered is memoised (every tenant namespace carries the same NetworkPolicies): needs and
    blocks that differ only in what a careless key would leave out get their own answers."""
    import ipaddress as ip

    from meridian.preflight.identity import Need, _uncovered

    net = ip.ip_network
    public = Need("public", "TCP", 443, addresses=(net("0.0.0.0/0"),))
    public_but_private = Need("public", "TCP", 443, addresses=(net("0.0.0.0/0"),), excluding=(net("10.0.0.0/8"),))
    all_but_private = [(net("0.0.0.0/0"), [net("10.0.0.0/8")])]
    everything = [(net("0.0.0.0/0"), [])]
    assert _uncovered(public, all_but_private) == (net("10.0.0.0/8"),)
    assert _uncovered(public_but_private, all_but_private) == ()  # the same blocks, another `excluding`
    assert _uncovered(public, everything) == ()  # the same cidr, without its except
    assert _uncovered(public, all_but_private) == (net("10.0.0.0/8"),)  # asked again: the same answer
