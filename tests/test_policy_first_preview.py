"""The first-preview view (computed outputs of resources being created are unknown, as a real first
`pulumi preview` gives them) and the policy config generated from the stack config."""

from __future__ import annotations

import json

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate, load_policy_config
from meridian.engine.policy.generated import drift, generated, merged, require_current
from meridian.errors import BadInput
from meridian.stackconfig import load_validated

from .helpers import ROOT, STACKS


@pytest.fixture(scope="module")
def first_preview_us(registrations):
    resources = registrations("us", first_preview=True)
    with Analyzer(ROOT / "policies") as analyzer:
        info = analyzer.wait_ready()
        path = ROOT / "policies" / "config" / "us.json"
        analyzer.configure(effective_config(info, load_policy_config(path), path))
        yield resources, lambda rs: evaluate(analyzer, [Subject.from_dict(r) for r in rs])


@pytest.mark.slow
def test_first_preview_lists_what_only_up_can_verify_and_fails_nothing(first_preview_us):
    resources, run = first_preview_us
    violations = run(resources)
    assert [v for v in violations if v.level == "mandatory"] == []
    unverifiable = [v for v in violations if v.message.startswith("unverifiable at preview: ")]
    assert unverifiable and all(v.level == "advisory" and v.urn for v in unverifiable)
    # as a real first preview: policy documents built from new ARNs cannot be judged yet
    assert {"iam-policy-no-full-admin", "tenant-role-isolated"} <= {v.policy for v in unverifiable}
    assert not any("can't run" in v.message for v in violations)


@pytest.mark.slow
def test_first_preview_still_fails_on_what_is_decidable(first_preview_us):
    resources, run = first_preview_us
    mutated = json.loads(json.dumps(resources))
    cluster = next(r for r in mutated if r["type"] == "aws:rds/cluster:Cluster")
    cluster["inputs"]["storageEncrypted"] = False
    group = next(r for r in mutated if r["type"] == "aws:ec2/securityGroup:SecurityGroup")
    group["inputs"]["ingress"] = [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]
    mandatory = {(v.policy, v.urn) for v in run(mutated) if v.level == "mandatory"}
    assert ("rds-storage-encrypted", cluster["urn"]) in mandatory
    assert ("ec2-security-group-ingress-restricted", group["urn"]) in mandatory


@pytest.mark.slow
def test_first_preview_lists_unknown_tag_maps_and_destinations(first_preview_us):
    """Unknowns are never silent: a role and an association whose whole tag map is computed (whose
    tenant?) and a copy whose destination is only known after apply each get their advisory."""
    resources, run = first_preview_us
    mutated = json.loads(json.dumps(resources))
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    association = next(r for r in mutated if r["type"] == "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    association["inputs"]["tags"] = unknown
    role = next(r for r in mutated if r["type"] == "aws:iam/role:Role")
    role["inputs"]["tags"] = unknown
    advisory = {(v.policy, v.urn): v.message for v in run(mutated) if v.level == "advisory"}
    for r in (association, role):
        assert advisory[("tenant-role-isolated", r["urn"])].startswith("unverifiable at preview: tags"), r["urn"]
    flow_log = next(r for r in mutated if r["type"] == "aws:ec2/flowLog:FlowLog")
    assert advisory[("aws-data-path-destination-in-zone", flow_log["urn"])].startswith("unverifiable at preview: logDestination")


@pytest.mark.parametrize("stack", STACKS)
def test_checked_in_policy_config_is_what_the_stack_config_generates(stack):
    cfg = load_validated(ROOT, stack)
    current = json.loads((ROOT / "policies" / "config" / f"{stack}.json").read_text())
    assert drift(current, cfg, stack, f"{stack}.json") is None, f"run `meridian policy --stack {stack} --write-config`"
    assert merged(current, cfg) == current  # regenerating changes nothing
    assert current["aws-resource-region-allowed"]["allowedRegions"] == list(cfg.allowed_regions)
    assert current["aws-replication-destination-allowed"]["allowedRegions"] == list(cfg.allowed_regions)
    assert current["aws-data-path-destination-in-zone"]["allowedRegions"] == list(cfg.allowed_regions)
    assert current["rds-database-dr-member"]["drRegion"] == cfg.regions.dr.region


def test_a_drifted_policy_config_names_both_files_and_the_fix(tmp_path):
    cfg = load_validated(ROOT, "eu")
    current = json.loads((ROOT / "policies" / "config" / "eu.json").read_text())
    current["rds-database-dr-member"]["drRegion"] = "eu-west-3"  # e.g. the dr region moved in Pulumi.eu.yaml only
    current["aws-replication-destination-allowed"]["allowedRegions"].pop()
    current["rds-backup-retention-sufficient"] = {"enforcementLevel": "advisory", "minRetentionDays": 30}  # hand-edited: kept
    message = drift(current, cfg, "eu", "policies/config/eu.json")
    assert message.startswith("policies/config/eu.json is out of date with Pulumi.eu.yaml")
    assert "rds-database-dr-member.drRegion" in message and "aws-replication-destination-allowed.allowedRegions" in message
    assert "meridian policy --stack eu --write-config" in message
    with pytest.raises(BadInput, match=r"^policies/config/eu.json is out of date"):
        require_current(tmp_path, tmp_path / "policies" / "config" / "eu.json", current, cfg, "eu")
    fixed = merged(current, cfg)
    assert drift(fixed, cfg, "eu", "x") is None
    assert fixed["rds-backup-retention-sufficient"] == {"enforcementLevel": "advisory", "minRetentionDays": 30}


def test_the_failover_alarm_exception_is_generated_only_outside_us_east_1():
    for stack in STACKS:
        exceptions = generated(load_validated(ROOT, stack))["aws-resource-region-allowed"]["regionExceptions"]
        if stack == "us":
            assert exceptions == []
        else:
            assert [(e["region"], e["component"]) for e in exceptions] == [
                ("us-east-1", "meridian:failover:Failover"),
                ("us-east-1", "meridian:dr:DisasterRecovery"),
                ("us-east-1", "meridian:alerts:AlertSubscriptions"),
            ]
