"""The runtime backstops the program deploys (components.guardrails, components.admission,
components.logbucket) as each real stack's plan renders them, and the region-deny SCP template of
docs/operations.md."""

from __future__ import annotations

import json
import re

import pytest

from components.admission import TenantAdmissionArgs, admission_policies
from components.failover import METRICS_REGION, METRICS_TYPES
from components.naming import NAMESPACE_PREFIX
from components.oversight import compose_guardrails
from components.tenant import TENANT_LABEL
from stackconfig import ZONE_REGIONS, GuardrailSettings, load_stack

from .helpers import ROOT, STACKS

ANALYZER = "aws:accessanalyzer/analyzer:Analyzer"
ACCOUNT_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
LB = "aws:lb/loadBalancer:LoadBalancer"


def _by_type(plan: dict, type_: str) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _provider_region(plan: dict, resource: dict) -> str:
    ref = resource["provider"]  # the provider's URN (`<urn>::<id>` on the wire)
    provider = next(r for r in plan["resources"] if ref == r["urn"] or ref.startswith(r["urn"] + "::"))
    return provider["inputs"]["region"]


@pytest.mark.parametrize("stack", STACKS)
def test_each_region_has_both_access_analyzers_and_the_account_one_public_access_block(previews, stack):
    plan = previews[stack].plan
    regions = {r["inputs"]["region"] for r in plan["resources"] if r["type"] == "pulumi:providers:aws"} - {METRICS_REGION}
    stack_regions = {_provider_region(plan, lb) for lb in _by_type(plan, LB)}
    assert len(stack_regions) == 2 and stack_regions <= regions | {METRICS_REGION}
    analyzers = {(_provider_region(plan, a), a["inputs"]["type"]) for a in _by_type(plan, ANALYZER)}
    assert analyzers == {(r, t) for r in stack_regions for t in ("ACCOUNT", "ACCOUNT_UNUSED_ACCESS")}
    unused = [a for a in _by_type(plan, ANALYZER) if a["inputs"]["type"] == "ACCOUNT_UNUSED_ACCESS"]
    assert all(a["inputs"]["configuration"]["unusedAccess"]["unusedAccessAge"] == 90 for a in unused)
    (block,) = _by_type(plan, ACCOUNT_BLOCK)
    assert all(
        block["inputs"][f] is True for f in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    assert _provider_region(plan, block) == load_stack(ROOT, stack).regions.primary.region


def test_a_stack_that_does_not_own_the_account_guardrails_creates_none():
    assert compose_guardrails("us", False, {}, GuardrailSettings()) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_load_balancer_logs_to_its_own_sse_s3_bucket_that_elb_can_write(previews, stack):
    plan = previews[stack].plan
    resources = {r["urn"]: r for r in plan["resources"]}
    for lb in _by_type(plan, LB):
        logs = lb["inputs"]["accessLogs"]
        assert logs["enabled"] is True and logs["prefix"] == "alb"
        (bucket_urn,) = lb["propertyDependencies"]["accessLogs"]
        bucket = resources[bucket_urn]
        region = _provider_region(plan, lb)
        assert _provider_region(plan, bucket) == region
        subs = [r for r in plan["resources"] if bucket_urn in r["propertyDependencies"].get("bucket", [])]
        kinds = {r["type"].rsplit(":", 1)[-1]: r for r in subs}
        sse = kinds["BucketServerSideEncryptionConfiguration"]["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]
        assert sse == {"sseAlgorithm": "AES256"}
        policy = json.loads(kinds["BucketPolicy"]["inputs"]["policy"])
        writes = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
        assert {json.dumps(s["Principal"], sort_keys=True) for s in writes} == {
            json.dumps({"AWS": f"arn:aws:iam::{_elb_account(region)}:root"}),
            json.dumps({"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
        }
        name = logs["bucket"]
        assert all(
            s["Action"] == "s3:PutObject" and s["Resource"].startswith(f"arn:aws:s3:::{name}/alb/AWSLogs/") for s in writes
        )
        lifecycle = kinds["BucketLifecycleConfiguration"]["inputs"]["rules"][0]
        assert lifecycle["expiration"]["days"] >= 35 and lifecycle["noncurrentVersionExpiration"]["noncurrentDays"] >= 35
        assert kinds["BucketVersioning"]["inputs"]["versioningConfiguration"] == {"status": "Enabled"}


def _elb_account(region: str) -> str:
    from meridian.engine.mocks import ELB_ACCOUNTS

    return ELB_ACCOUNTS[region]


@pytest.mark.parametrize("stack", STACKS)
def test_every_cluster_gets_the_tenant_admission_policies_with_deny_bindings(previews, stack):
    plan = previews[stack].plan
    expected = admission_policies(TenantAdmissionArgs(tenant_label=TENANT_LABEL, namespace_prefix=NAMESPACE_PREFIX))
    clusters = {r["provider"] for r in plan["resources"] if r["type"] == "kubernetes:core/v1:Namespace"}
    assert len(clusters) == 2
    for provider in clusters:
        mine = [r for r in plan["resources"] if r.get("provider") == provider]
        policies = {r["inputs"]["metadata"]["name"]: r for r in mine if r["type"].endswith(":ValidatingAdmissionPolicy")}
        bindings = {r["inputs"]["metadata"]["name"]: r for r in mine if r["type"].endswith(":ValidatingAdmissionPolicyBinding")}
        assert set(policies) == set(bindings) == set(expected)
        for name, b in bindings.items():
            assert policies[name]["type"] == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
            assert policies[name]["inputs"]["spec"]["validations"] == expected[name]["validations"]
            assert b["inputs"]["spec"]["policyName"] == name
            assert b["inputs"]["spec"]["validationActions"] == ["Deny"]


@pytest.mark.parametrize("stack", STACKS)
def test_clusters_run_a_kubernetes_that_has_validating_admission_policy_v1(stack):
    version = load_stack(ROOT, stack).cluster.version
    assert tuple(int(p) for p in version.split(".")) >= (1, 30), version


def _scp() -> dict:
    text = (ROOT / "docs" / "operations.md").read_text()
    m = re.search(r"<!-- region-deny-scp: [^>]*-->\s*```json\n(.*?)```", text, re.S)
    assert m, "docs/operations.md lost its region-deny SCP block"
    return json.loads(m.group(1))


def test_the_region_deny_scp_template_denies_every_region_outside_the_zone():
    scp = _scp()
    first, second = scp["Statement"]
    for st in (first, second):
        assert st["Effect"] == "Deny" and st["Resource"] == "*"
        assert st["Condition"]["ArnNotLike"]["aws:PrincipalARN"], "a break-glass role must be exempt"
    zone = list(ZONE_REGIONS["eu"])
    assert first["Condition"]["StringNotEquals"]["aws:RequestedRegion"] == zone
    assert second["Condition"]["StringNotEquals"]["aws:RequestedRegion"] == [*zone, METRICS_REGION]
    # global services stay usable; the failover metrics' services are held by the second statement only
    for service in ("iam", "sts", "route53", "budgets", "organizations", "cloudfront"):
        assert f"{service}:*" in first["NotAction"]
    metrics_services = {t.split(":")[1].split("/")[0] for t in METRICS_TYPES}
    assert {f"{s}:*" for s in metrics_services} == set(second["Action"]) <= set(first["NotAction"])
    # nothing data-bearing escapes the first statement
    for service in ("s3", "rds", "dynamodb", "ec2", "eks", "secretsmanager", "backup", "lambda"):
        assert not any(a.startswith(f"{service}:") for a in first["NotAction"]), service
