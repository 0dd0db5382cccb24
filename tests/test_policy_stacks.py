"""The pack on the real stacks: zero mandatory violations in every preview, and realistic mutations
of the real resources (as the program registers them, with property dependencies) each caught by
the rule that should catch them. Plus the CLI: bad policy config exits 2, a violation exits 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate, load_policy_config

from .helpers import REGISTRATIONS_SCRIPT, ROOT, STACKS, run_meridian


@pytest.fixture(scope="session")
def real_resources():
    procs = {
        s: subprocess.Popen(
            [sys.executable, "-c", REGISTRATIONS_SCRIPT, str(ROOT), s], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for s in ("us", "apac")
    }
    out = {}
    for s, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        out[s] = json.loads(stdout)
    return out


@pytest.fixture(scope="session")
def stack_pack():
    with Analyzer(ROOT / "policies") as analyzer:
        info = analyzer.wait_ready()
        configured = {}

        def run(stack: str, resources: list[dict]):
            if configured.get("stack") != stack:
                path = ROOT / "policies" / "config" / f"{stack}.json"
                analyzer.configure(effective_config(info, load_policy_config(path), path))
                configured["stack"] = stack
            return evaluate(analyzer, [Subject.from_dict(r) for r in resources])

        yield run


@pytest.mark.parametrize("stack", STACKS)
def test_real_stacks_have_no_mandatory_violation(previews, stack):
    policy = previews[stack].plan["policy"]
    assert policy["evaluated"] is True and policy["config"] == f"policies/config/{stack}.json"
    mandatory = [v for v in policy["violations"] if v["level"] == "mandatory"]
    assert mandatory == [], json.dumps(mandatory, indent=1)
    registered = sum(1 for r in previews[stack].plan["resources"] if r["type"] != "pulumi:pulumi:Stack")
    assert policy["resources_analyzed"] == registered
    assert policy["policies"] >= 25
    assert "policy: passed" in previews[stack].cli.out


def _one(resources, type_, pred=lambda r: True):
    return next(r for r in resources if r["type"] == type_ and pred(r))


def _caught(violations, rule, urn=None):
    hits = [v for v in violations if v.policy == rule and v.level == "mandatory"]
    assert hits, f"{rule} did not catch it; got {[(v.policy, v.message) for v in violations]}"
    if urn is not None:
        assert urn in {v.urn for v in hits}, (urn, hits)
    return hits


@pytest.mark.slow
def test_unmutated_real_resources_pass(real_resources, stack_pack):
    for stack in ("us", "apac"):
        assert [v for v in stack_pack(stack, real_resources[stack]) if v.level == "mandatory"] == []


@pytest.mark.slow
def test_real_database_with_encryption_off(real_resources, stack_pack):
    resources = json.loads(json.dumps(real_resources["us"]))
    cluster = _one(resources, "aws:rds/cluster:Cluster")
    cluster["inputs"]["storageEncrypted"] = False
    _caught(stack_pack("us", resources), "rds-storage-encrypted", cluster["urn"])


@pytest.mark.slow
def test_real_bucket_made_public(real_resources, stack_pack):
    resources = json.loads(json.dumps(real_resources["us"]))
    block = _one(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    block["inputs"]["blockPublicAcls"] = False
    block["inputs"]["restrictPublicBuckets"] = False
    _caught(stack_pack("us", resources), "s3-bucket-public-access-blocked", block["urn"])


@pytest.mark.slow
def test_real_tenant_role_widened_to_everything(real_resources, stack_pack):
    # Tenants reach AWS through EKS Pod Identity (components.tenantidentity): a tenant's association
    # carries no session policy (EKS takes one only with session tags off); one reaching everything must be caught.
    resources = json.loads(json.dumps(real_resources["us"]))
    access = _one(
        resources, "aws:eks/podIdentityAssociation:PodIdentityAssociation", lambda r: r["name"].endswith("-t-globex-identity")
    )
    assert "policy" not in access["inputs"]
    access["inputs"]["policy"] = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    hits = _caught(stack_pack("us", resources), "tenant-role-isolated", access["urn"])
    assert any('Resource "*"' in v.message and "globex" in v.message for v in hits)


@pytest.mark.slow
def test_real_resource_moved_outside_the_zone(real_resources, stack_pack):
    resources = json.loads(json.dumps(real_resources["us"]))
    key = _one(resources, "aws:kms/key:Key", lambda r: "-t-acme-" in r["name"])
    key["inputs"]["region"] = "eu-west-1"
    _caught(stack_pack("us", resources), "aws-resource-region-allowed", key["urn"])
    provider = _one(resources, "pulumi:providers:aws", lambda r: r["name"] == "us-west-2")
    provider["inputs"]["region"] = "ap-southeast-1"
    urns = {v.urn for v in _caught(stack_pack("us", resources), "aws-resource-region-allowed")}
    assert provider["urn"] in urns and len(urns) > 50  # the provider and everything it creates


@pytest.mark.slow
def test_real_eu_pool_bucket_behind_cloudfront(previews, stack_pack):
    """CloudFront's edges cache and serve from every region: EU data behind it leaves the zone."""
    resources = json.loads(json.dumps(previews["eu"].plan["resources"]))
    pool = _one(resources, "aws:s3/bucket:Bucket", lambda r: "tenant-pool-data" in r["name"])
    cdn = {
        **pool,
        "urn": pool["urn"].replace("aws:s3/bucket:Bucket::", "aws:cloudfront/distribution:Distribution::") + "-cdn",
        "type": "aws:cloudfront/distribution:Distribution",
        "name": pool["name"] + "-cdn",
        "inputs": {
            "enabled": True,
            "origins": [{"originId": "pool", "domainName": f"{pool['name']}.s3.{pool['region']}.amazonaws.com"}],
            "defaultCacheBehavior": {"targetOriginId": "pool", "viewerProtocolPolicy": "https-only"},
        },
        "dependencies": [pool["urn"]],
        "propertyDependencies": {"origins": [pool["urn"]]},
    }
    resources.append(cdn)
    _caught(stack_pack("eu", resources), "aws-data-path-destination-in-zone", cdn["urn"])


@pytest.mark.slow
def test_real_eu_aws_native_bucket_through_a_us_east_1_provider(previews, stack_pack):
    """The eu stack may hold an AWS provider in us-east-1 (the failover alarms); an aws-native
    provider there and a bucket through it are neither excepted nor a reviewed type."""
    resources = json.loads(json.dumps(previews["eu"].plan["resources"]))
    stack_urn = next(r["urn"] for r in resources if r["type"] == "pulumi:pulumi:Stack")
    provider = {
        "urn": stack_urn.replace("pulumi:pulumi:Stack::", "pulumi:providers:aws-native::").rsplit("::", 1)[0] + "::native",
        "type": "pulumi:providers:aws-native",
        "name": "native",
        "custom": True,
        "parent": stack_urn,
        "provider": None,
        "inputs": {"region": "us-east-1"},
        "dependencies": [],
        "propertyDependencies": {},
    }
    bucket = {
        **provider,
        "urn": provider["urn"].replace("pulumi:providers:aws-native::native", "aws-native:s3:Bucket::native-bucket"),
        "type": "aws-native:s3:Bucket",
        "name": "native-bucket",
        "provider": provider["urn"],
        "inputs": {},
    }
    resources += [provider, bucket]
    violations = stack_pack("eu", resources)
    _caught(violations, "aws-resource-region-allowed", bucket["urn"])
    _caught(violations, "pack-resource-type-reviewed", bucket["urn"])


@pytest.mark.slow
def test_real_replication_to_an_archive_bucket_with_the_link_kept(real_resources, stack_pack):
    """The destination ARN is built from the dr bucket's (the property dependency stays), but names another bucket."""
    resources = json.loads(json.dumps(real_resources["us"]))
    replication = _one(resources, "aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    destination = replication["inputs"]["rules"][0]["destination"]
    destination["bucket"] += "-archive"
    _caught(stack_pack("us", resources), "aws-replication-destination-allowed", replication["urn"])


@pytest.mark.slow
def test_real_primary_record_without_health_check(real_resources, stack_pack):
    resources = json.loads(json.dumps(real_resources["us"]))
    record = _one(
        resources,
        "aws:route53/record:Record",
        lambda r: r["inputs"].get("failoverRoutingPolicies", [{}])[0].get("type") == "PRIMARY",
    )
    del record["inputs"]["healthCheckId"]
    record["propertyDependencies"].pop("healthCheckId", None)
    _caught(stack_pack("us", resources), "route53-failover-record-ready", record["urn"])


@pytest.mark.slow
def test_real_tenant_without_budget(real_resources, stack_pack):
    resources = [r for r in json.loads(json.dumps(real_resources["us"])) if not r["name"].startswith("us-cost-tenant-initech")]
    hits = _caught(stack_pack("us", resources), "budgets-tenant-budget-exists")
    assert [v.message.split(" must")[0] for v in hits] == ["Tenant initech"]


@pytest.mark.slow
def test_real_database_without_dr_member(real_resources, stack_pack):
    resources = json.loads(json.dumps(real_resources["apac"]))  # RDS postgres with a cross-region replica
    replica = _one(resources, "aws:rds/instance:Instance", lambda r: r["name"].endswith("-replica"))
    resources.remove(replica)
    writer = _one(resources, "aws:rds/instance:Instance", lambda r: r["name"].endswith("-writer"))
    _caught(stack_pack("apac", resources), "rds-database-dr-member", writer["urn"])
    resources = json.loads(json.dumps(real_resources["us"]))  # Aurora global: drop the secondary's instance
    resources = [
        r for r in resources if not (r["type"] == "aws:rds/clusterInstance:ClusterInstance" and "us-west-2" in r["name"])
    ]
    _caught(stack_pack("us", resources), "rds-database-dr-member", _one(resources, "aws:rds/globalCluster:GlobalCluster")["urn"])


@pytest.mark.slow
def test_real_tenant_namespace_without_default_deny(real_resources, stack_pack):
    resources = [r for r in json.loads(json.dumps(real_resources["us"])) if not r["name"].endswith("-t-acme-default-deny")]
    hits = _caught(stack_pack("us", resources), "tenant-namespace-guarded")
    assert len(hits) == 2  # the namespace in each region's cluster


# --- through the CLI ----------------------------------------------------------------------------


@pytest.fixture
def project_with_pack(project_copy):
    shutil.copytree(ROOT / "policies", project_copy / "policies", ignore=shutil.ignore_patterns("__pycache__"))
    for cell in ROOT.glob("Pulumi.*-cell-*.yaml"):  # the platform's config lists its cells' tenant namespaces
        shutil.copy(cell, project_copy / cell.name)
    return project_copy


@pytest.mark.slow
def test_missing_policy_config_exits_2_naming_the_file(project_with_pack):
    (project_with_pack / "policies" / "config" / "eu.json").unlink()
    cli = run_meridian("preview", "--stack", "eu", "--project-dir", str(project_with_pack))
    assert cli.code == 2, cli.err
    assert "policies/config/eu.json: policy config not found" in cli.err and "Traceback" not in cli.err + cli.out


@pytest.mark.slow
def test_unparseable_policy_config_exits_2(project_with_pack):
    (project_with_pack / "policies" / "config" / "us.json").write_text('{"rds-storage-encrypted": "mandatory",}')
    cli = run_meridian("policy", "--stack", "us", "--project-dir", str(project_with_pack))
    assert cli.code == 2 and "us.json: not valid JSON (line 1" in cli.err and "Traceback" not in cli.err


@pytest.mark.slow
def test_invalid_policy_settings_exit_2(project_with_pack):
    path = project_with_pack / "policies" / "config" / "apac.json"
    cfg = json.loads(path.read_text())
    cfg["rds-backup-retention-sufficient"]["minRetentionDays"] = "two weeks"
    path.write_text(json.dumps(cfg))
    cli = run_meridian("policy", "--stack", "apac", "--project-dir", str(project_with_pack))
    assert cli.code == 2, cli.out + cli.err
    assert "policies/config/apac.json: invalid policy config" in cli.err and "minRetentionDays: must be an integer" in cli.err


@pytest.mark.slow
def test_mandatory_violation_exits_1_grouped_by_rule_and_in_the_plan(project_with_pack, tmp_path):
    path = project_with_pack / "policies" / "config" / "us.json"
    cfg = json.loads(path.read_text())
    cfg["rds-backup-retention-sufficient"] = {"enforcementLevel": "mandatory", "minRetentionDays": 30}
    # the stack keeps 14 days: every rule whose retention comes from the stack config follows it (the plan passes them)
    for rule in ("backup-plan-coverage", "backup-vault-lock-enabled", "s3-lifecycle-keeps-retention"):
        cfg[rule] = {**cfg.get(rule, {}), "enforcementLevel": "mandatory", "minRetentionDays": 14}
    stack_file = project_with_pack / "Pulumi.us.yaml"
    stack_file.write_text(stack_file.read_text() + "  meridian:dr: {backup_retention_days: 14}\n")  # the stack keeps 14
    cfg["aws-resource-required-tags"] = {"enforcementLevel": "advisory", "requiredTags": ["meridian:stack", "owner"]}
    path.write_text(json.dumps(cfg))
    out = tmp_path / "plan.json"
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project_with_pack), "--json", str(out))
    assert cli.code == 1, cli.err
    assert "MANDATORY rds-backup-retention-sufficient" in cli.out and "ADVISORY aws-resource-required-tags" in cli.out
    assert cli.out.index("MANDATORY") < cli.out.index("ADVISORY")
    assert "policy: FAILED" in cli.out
    plan = json.loads(out.read_text())
    violations = plan["policy"]["violations"]
    assert {v["policy"] for v in violations if v["level"] == "mandatory"} == {"rds-backup-retention-sufficient"}
    assert all(set(v) == {"policy", "level", "urn", "message"} for v in violations)
    clusters = {r["urn"] for r in plan["resources"] if r["type"] == "aws:rds/cluster:Cluster"}
    assert clusters and clusters <= {v["urn"] for v in violations if v["policy"] == "rds-backup-retention-sufficient"}
    assert all("propertyDependencies" in r for r in plan["resources"])


@pytest.mark.slow
def test_policy_config_drifted_from_the_stack_config_exits_2_naming_both(project_with_pack):
    path = project_with_pack / "policies" / "config" / "us.json"
    cfg = json.loads(path.read_text())
    cfg["aws-resource-region-allowed"]["allowedRegions"] = ["us-east-1"]  # edited here, not in Pulumi.us.yaml
    path.write_text(json.dumps(cfg))
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project_with_pack))
    assert cli.code == 2, cli.out + cli.err
    assert "policies/config/us.json is out of date with Pulumi.us.yaml" in cli.err and "--write-config" in cli.err
    fixed = run_meridian("policy", "--stack", "us", "--project-dir", str(project_with_pack), "--write-config")
    assert fixed.code == 0 and json.loads(path.read_text())["aws-resource-region-allowed"]["allowedRegions"] == [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    ]


@pytest.mark.slow
def test_no_policy_skips_the_pack(project_with_pack):
    (project_with_pack / "policies" / "config" / "us.json").unlink()  # not even read
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project_with_pack), "--no-policy")
    assert cli.code == 0, cli.err
    assert "policy: skipped (--no-policy)" in cli.out


@pytest.mark.slow
def test_analyzer_process_is_stopped_even_when_the_program_fails(project_with_pack):
    (project_with_pack / "__main__.py").write_text("raise ValueError('boom')\n")
    before = _analyzers()
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project_with_pack))
    assert cli.code == 1 and "boom" in cli.err
    assert _analyzers() - before == set()


def _analyzers() -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"pulumi.policy" in cmd and any(c.endswith(b"policies") for c in cmd):
                pids.add(int(entry))
    return pids
