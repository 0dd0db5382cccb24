"""Day two on AWS (the second AWS review's N4-N7): what the next `up`, the drift job and the plan job
meet once the stack has run for a while. Each test reads the rendered plans or the config models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.tagging import TAG_STACK
from meridian.engine.policy.generated import generated
from meridian.preflight.refresh import granted_actions, refresh_policy, uncovered
from stackconfig import ConfigError, parse_config
from tests.helpers import ROOT, STACKS, full_project_copy, of_type, run_meridian, small_raw_config

RDS_VERSIONED = (
    "aws:rds/globalCluster:GlobalCluster",
    "aws:rds/cluster:Cluster",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:rds/instance:Instance",
)


# --- N6: minor versions are AWS's ----------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_database_member_names_the_major_version_only(previews, stack):
    """Members upgrade their minor version themselves (auto_minor_version_upgrade): a pinned minor
    is a difference the next `up` after an AWS upgrade tries to undo."""
    members = [r for t in RDS_VERSIONED for r in of_type(previews[stack].plan, t)]
    assert len(members) >= 3
    for member in members:
        inputs = member["inputs"]
        assert str(inputs["engineVersion"]).isdigit(), f"{member['urn']}: engine version {inputs['engineVersion']} pins a minor"
        if member["type"] != "aws:rds/globalCluster:GlobalCluster" and member["type"] != "aws:rds/cluster:Cluster":
            assert inputs.get("autoMinorVersionUpgrade") is True, f"{member['urn']}: who applies the minor versions?"


@pytest.mark.parametrize("stack", ["us", "eu"])
def test_the_global_cluster_leaves_its_version_to_aws(previews, stack):
    """The provider reads a global cluster's version back as the running minor (16.6), unlike a
    cluster's: without ignoreChanges every `up` after an automatic minor upgrade modifies it."""
    (global_cluster,) = of_type(previews[stack].plan, "aws:rds/globalCluster:GlobalCluster")
    assert "engineVersion" in global_cluster.get("ignoreChanges", [])


@pytest.mark.parametrize("stack", STACKS)
def test_no_function_reserves_concurrency(previews, stack):
    """A new account's Lambda concurrency quota can be 10, and AWS refuses a reservation that leaves
    fewer than 10 unreserved: the first `up` would fail on the cap enforcer."""
    functions = of_type(previews[stack].plan, "aws:lambda/function:Function")
    assert functions
    for function in functions:
        assert function["inputs"].get("reservedConcurrentExecutions") in (None, -1), function["urn"]


def test_a_pinned_minor_version_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        parse_config(small_raw_config(database={"engine": "postgres", "engine_version": "16.4"}))
    assert "meridian:database.engine_version" in str(err.value)
    assert parse_config(small_raw_config(database={"engine": "postgres", "engine_version": "17"})).database.engine_version == "17"


def test_the_component_refuses_a_minor_version_too():
    from components.database import DatabaseRegion, ReplicatedDatabaseArgs

    side = {"provider": None, "vpc_id": "vpc", "data_subnet_ids": [], "client_security_group_id": "sg", "cidr": "10.0.0.0/16"}
    with pytest.raises(ValueError, match="major version only"):
        ReplicatedDatabaseArgs(
            engine="postgres",
            engine_version="16.4",
            instance_class="db.r6g.large",
            readers=0,
            backup_retention_days=35,
            primary=DatabaseRegion(region="us-east-1", **side),
            dr=DatabaseRegion(region="us-west-2", **side),
        )


# --- N7: an account that already runs its Access Analyzers ----------------------------------------------

ANALYZER = "aws:accessanalyzer/analyzer:Analyzer"
ACCOUNT_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"


def _edited_copy(tmp_path: Path, stack: str, **sections) -> Path:
    project = full_project_copy(tmp_path)
    path = project / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    for key, value in sections.items():
        doc["config"][f"meridian:{key}"] = value
    path.write_text(yaml.safe_dump(doc))
    return project


@pytest.mark.slow
def test_relying_on_the_accounts_analyzers_creates_none_and_the_pack_agrees(tmp_path):
    """`guardrails.access_analyzer: existing`: no second account-level analyzer (AWS allows one per
    type, account and region), the public access block still; the pack then asks for no analyzer."""
    project = _edited_copy(tmp_path, "us", guardrails={"access_analyzer": "existing"})
    stale = run_meridian("preview", "--stack", "us", "--project-dir", str(project))
    assert stale.code == 2 and "runtime-backstops-enforced.regions" in stale.err  # the pack's config follows the stack's
    assert run_meridian("policy", "--stack", "us", "--project-dir", str(project), "--write-config").code == 0
    out = tmp_path / "us.json"
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project), "--json", str(out))
    assert cli.code == 0, cli.err + cli.out  # the policy pack runs in the preview
    plan = json.loads(out.read_text())
    assert of_type(plan, ANALYZER) == []
    assert len(of_type(plan, ACCOUNT_BLOCK)) == 1


def test_the_pack_wants_analyzers_in_both_regions_only_when_the_stack_creates_them():
    create = parse_config(small_raw_config())
    assert generated(create)["runtime-backstops-enforced"]["regions"] == [
        create.regions.primary.region,
        create.regions.dr.region,
    ]
    existing = parse_config(small_raw_config(guardrails={"access_analyzer": "existing"}))
    assert generated(existing)["runtime-backstops-enforced"]["regions"] == []
    with pytest.raises(ConfigError) as err:
        parse_config(small_raw_config(guardrails={"access_analyzer": "adopt"}))
    assert "meridian:guardrails.access_analyzer" in str(err.value)


# --- the backup selection's scope ------------------------------------------------------------------------

SELECTION = "aws:backup/selection:Selection"
DATABASES = ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance")


@pytest.mark.parametrize("stack", STACKS)
def test_the_backup_selection_takes_the_database_not_its_replicas_and_only_the_stacks_buckets(previews, stack):
    """AWS Backup ANDs `resources` with `conditions`, and a selection with neither takes every
    supported resource of the account: the database by ARN (its replicas hold the same data; an RDS
    `db:*` pattern took the in-region read replicas too), buckets only under the stack's tag."""
    plan = previews[stack].plan
    (selection,) = of_type(plan, SELECTION)
    inputs = selection["inputs"]
    assert inputs["conditions"] == [{"stringEquals": [{"key": "aws:ResourceTag/meridian:stack", "value": stack}]}]
    patterns = [p for p in inputs["resources"] if "*" in p]
    assert patterns == ["arn:aws:s3:::*"], f"{selection['urn']}: patterns beyond the stack's buckets: {patterns}"
    in_region = [r for t in DATABASES for r in of_type(plan, t) if r["region"] == selection["region"]]
    picked = {r["urn"] for r in in_region if r["urn"] in selection["propertyDependencies"].get("resources", [])}
    meant = {r["urn"] for r in in_region if not r["inputs"].get("replicateSourceDb")}
    assert len(meant) == 1 and picked == meant, f"picked {sorted(picked)}, meant {sorted(meant)}"
    assert len(inputs["resources"]) == 2  # the database's ARN and the bucket pattern, nothing else


# --- N4: what the drift job's refresh reads ---------------------------------------------------------------


def _types(plan: dict) -> set[str]:
    return {r["type"] for r in plan["resources"] if r.get("custom") and not r["type"].startswith("pulumi:providers:")}


def _documented_refresh_policy() -> dict:
    text = (ROOT / "docs" / "ci.md").read_text()
    block = text.split("<!-- refresh-policy: tests/test_daytwo_aws.py -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)


@pytest.mark.parametrize("stack", STACKS)
def test_the_plan_and_drift_role_reads_back_every_type_of_the_plan(previews, stack):
    """ReadOnlyAccess alone (the old role) cannot refresh a SecretVersion (GetSecretValue, and the
    customer key's Decrypt); the documented role's inline policy covers every type of the plan."""
    types = _types(previews[stack].plan)
    assert uncovered(types, {}) == {
        "aws:secretsmanager/secretVersion:SecretVersion": ["secretsmanager:GetSecretValue", "kms:Decrypt"]
    }
    documented = _documented_refresh_policy()
    assert documented == refresh_policy(TAG_STACK, list(STACKS)), "docs/ci.md's policy is not the generated one"
    assert uncovered(types, documented) == {}


def test_a_type_nobody_classified_fails_the_refresh_check():
    assert uncovered({"aws:sqs/queue:Queue"}, refresh_policy(TAG_STACK, ["us"])) == {"aws:sqs/queue:Queue": ["?"]}
    granted = granted_actions(refresh_policy(TAG_STACK, ["us"]))
    assert granted == {"secretsmanager:GetSecretValue", "kms:Decrypt"}  # reads only: nothing that writes
