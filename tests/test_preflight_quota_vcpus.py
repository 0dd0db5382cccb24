"""The EC2 On-Demand Standard vCPU quota (L-1216C47A): every On-Demand managed node group at its max
size, summed per region, against AWS's default or `meridian:quotas.raised`; what cannot be counted
(an instance type without a vCPU figure) is a finding naming it, never a pass."""

from __future__ import annotations

import copy

import pytest
from google.protobuf import json_format, struct_pb2

from meridian.engine.plan import Plan
from meridian.preflight.account import Account, AccountStack, check_account_quotas
from meridian.preflight.checks import CHECKS, Context
from meridian.preflight.quotas import instance_vcpus

from .helpers import recorded_plan

pytestmark = pytest.mark.slow  # the plan comes from an offline run of the program

CODE = "L-1216C47A"
NODES = "aws:eks/nodeGroup:NodeGroup"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return recorded_plan(tmp_path_factory.mktemp("vcpus"))


def node_groups_changed(plan: Plan, change, region: str = "us-east-1") -> Plan:
    """The plan with `change(inputs)` applied to the node groups of one region."""
    regs = copy.deepcopy(plan.registrations)
    for i, reg in enumerate(regs):
        if reg.type == NODES and plan.region_of(reg) == region:
            inputs = json_format.MessageToDict(reg.inputs)
            change(inputs)
            regs[i].inputs = json_format.ParseDict(inputs, struct_pb2.Struct())
            regs[i]._dict = None
    return Plan(plan.project, plan.stack, regs, plan.outputs)


def with_raised(cfg, raised: dict[str, int]):
    return cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update={"raised": raised})})


def vcpu_problems(plan: Plan, cfg) -> list[str]:
    result = CHECKS["quotas"](Context.of(plan, cfg))
    return [f.problem for f in result.findings if "On-Demand Standard" in f.problem]


def test_quota_the_shipped_stack_fits_its_declared_vcpu_quota(recorded):
    plan, cfg = recorded
    assert cfg.quotas.raised[CODE] == 64  # Pulumi.us.yaml declares the account's value
    result = CHECKS["quotas"](Context.of(plan, cfg))
    assert result.passed, result.findings
    assert CODE in result.encodes


def test_quota_vcpus_fail_at_aws_default_naming_the_region_and_what_is_needed(recorded):
    plan, cfg = recorded
    problems = vcpu_problems(plan, with_raised(cfg, {}))
    # one cluster per region: 9 nodes at max x 2 vCPUs of m7g.large
    assert sorted(problems) == [
        f"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (vCPUs) in {region}: this stack needs 18, "
        "over 5 available (https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html)"
        for region in ("us-east-1", "us-west-2")
    ]
    fix = next(f.fix for f in CHECKS["quotas"](Context.of(plan, with_raised(cfg, {}))).findings if "On-Demand" in f.problem)
    assert f"meridian:quotas.raised.{CODE}" in fix


def test_quota_vcpus_fail_on_an_oversize_node_group(recorded):
    plan, cfg = recorded
    big = node_groups_changed(plan, lambda i: i["scalingConfig"].update(maxSize=30))  # 60 vCPUs in us-east-1
    assert vcpu_problems(big, cfg) == []
    bigger = node_groups_changed(plan, lambda i: i["scalingConfig"].update(maxSize=33))  # 66 > 64
    (problem,) = vcpu_problems(bigger, cfg)
    assert "in us-east-1: this stack needs 66, over 64" in problem
    # the largest of several types decides (the Auto Scaling group may launch any)
    mixed = node_groups_changed(plan, lambda i: i.update(instanceTypes=["m7g.large", "m7g.2xlarge"]))
    (problem,) = vcpu_problems(mixed, cfg)
    assert "needs 72, over 64" in problem


def test_quota_vcpus_count_on_demand_only(recorded):
    plan, cfg = recorded
    tight = with_raised(cfg, {CODE: 18})
    on_demand = node_groups_changed(plan, lambda i: i.update(instanceTypes=["m7g.2xlarge"]))  # 72 vCPUs
    assert "in us-east-1: this stack needs 72, over 18" in " ".join(vcpu_problems(on_demand, tight))
    # Spot capacity counts against the Spot quota, not this one
    spot = node_groups_changed(plan, lambda i: i.update(capacityType="SPOT", instanceTypes=["m7g.2xlarge"]))
    assert vcpu_problems(spot, tight) == []


def test_quota_vcpus_refuse_an_instance_type_without_a_vcpu_figure(recorded):
    plan, cfg = recorded
    assert "g5.xlarge" not in instance_vcpus()
    gpu = node_groups_changed(plan, lambda i: i.update(instanceTypes=["g5.xlarge"]))
    (problem,) = vcpu_problems(gpu, cfg)
    assert "instance type g5.xlarge" in problem and "not counted" in problem
    unsized = node_groups_changed(plan, lambda i: i["scalingConfig"].pop("maxSize"))
    assert any("maximum size are not in its inputs" in p for p in vcpu_problems(unsized, cfg))


def test_quota_vcpus_default_to_eks_default_instance_type(recorded):
    plan, cfg = recorded
    # no instance types and no launch template: EKS launches t3.medium (2 vCPUs), counted as such
    bare = node_groups_changed(
        plan, lambda i: [i.pop("instanceTypes"), i.pop("launchTemplate"), i["scalingConfig"].update(maxSize=40)]
    )
    (problem,) = vcpu_problems(bare, cfg)
    assert "needs 80, over 64" in problem


def test_quota_vcpus_summed_over_the_account(recorded):
    plan, cfg = recorded
    result = check_account_quotas(Account("123456789012", [AccountStack("us", with_raised(cfg, {}), plan)]))
    assert any("On-Demand Standard" in f.problem and "in us-east-1" in f.problem for f in result.findings)
    gpu = node_groups_changed(plan, lambda i: i.update(instanceTypes=["g5.xlarge"]))
    result = check_account_quotas(Account("123456789012", [AccountStack("us", cfg, gpu)]))
    assert any("g5.xlarge" in f.problem for f in result.findings)
