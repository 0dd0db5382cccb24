"""tenant-data-access: who can reach a tenant's data, decided by an IAM evaluator (principalmapper).

Through the analyzer protocol as the engine drives it: both tenant identity designs pass; each way
in of issue 23's list is a mandatory violation that prints its path, in both designs; the issue's
false positives stay silent. Then the session model as an attacker would probe it (tags STS
refuses, a broker acting for the wrong tenant, unknowns), the tenancy matrix through the CLI, and
the evaluator's pin.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from typer.testing import CliRunner

from meridian.cli import app
from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate

from .helpers import ROOT
from .policydata import access as data
from .policydata import accessbypass as bypass

PACK = ROOT / "policies"
RULE = "tenant-data-access"
ENV = {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture(scope="module")
def pack():
    with Analyzer(PACK) as analyzer:
        info = analyzer.wait_ready()
        analyzer.configure(
            effective_config(info, {"all": "disabled", RULE: {**data.CONFIG[RULE], "enforcementLevel": "mandatory"}}, "test")
        )
        yield lambda resources: [v for v in evaluate(analyzer, [Subject.from_dict(r) for r in resources]) if v.policy == RULE]


def _rule():
    """The pack's modules, imported as the analyzer imports them (the pack's directory on the path)."""
    sys.path.insert(0, str(PACK))
    try:
        from access import reach, rule, world

        return rule, reach, world
    finally:
        sys.path.remove(str(PACK))


def _plain(resources):
    sys.path.insert(0, str(PACK))
    try:
        from access import explain

        return explain.from_plan(resources)
    finally:
        sys.path.remove(str(PACK))


@pytest.mark.parametrize("design", data.DESIGNS)
def test_both_identity_designs_pass(pack, design):
    assert pack(data.tenancy_stack(design)) == []


@pytest.mark.parametrize("design", data.DESIGNS)
@pytest.mark.parametrize("what", [w for w, _ in data.MISSES])
def test_each_way_in_is_a_mandatory_violation_with_its_path(pack, design, what):
    mutation = dict(data.MISSES)[what]
    found = pack(data.mutated(design, mutation))
    mandatory = [v for v in found if v.level == "mandatory"]
    assert mandatory, f"missed in the {design} design: {what}"
    assert any("Path: " in v.message and " -> " in v.message for v in mandatory), [v.message for v in mandatory]


@pytest.mark.parametrize("design", data.DESIGNS)
@pytest.mark.parametrize("what", [w for w, _ in data.LEGITIMATE])
def test_legitimate_setups_are_not_reported(pack, design, what):
    assert pack(data.mutated(design, dict(data.LEGITIMATE)[what])) == []


@pytest.mark.parametrize("design", data.DESIGNS)
@pytest.mark.parametrize("what", [w for w, _ in bypass.BYPASSES])
def test_each_bypass_left_by_the_last_review_is_a_mandatory_violation(pack, design, what):
    if design != "tagged-broker" and what in bypass.TAGGED_BROKER_ONLY:
        pytest.skip("the session-policy design's session policy stops it (see policydata.accessbypass)")
    found = pack(data.mutated(design, dict(bypass.BYPASSES)[what]))
    assert [v for v in found if v.level == "mandatory"], f"missed in the {design} design: {what}: {[v.message for v in found]}"


@pytest.mark.parametrize("design", data.DESIGNS)
@pytest.mark.parametrize("what", [w for w, _ in bypass.TWINS])
def test_each_legitimate_twin_of_a_bypass_passes(pack, design, what):
    assert [v.message for v in pack(data.mutated(design, dict(bypass.TWINS)[what]))] == []


@pytest.mark.parametrize("what", [w for w, _ in bypass.ADVISORIES])
def test_a_grant_to_a_role_outside_the_plan_that_reaches_no_tenant_data_is_an_advisory(pack, what):
    found = pack(data.mutated("tagged-broker", dict(bypass.ADVISORIES)[what]))
    assert [v.level for v in found] == ["advisory"], [v.message for v in found]
    assert "not in the plan" in found[0].message and "metrics-writer" in found[0].message


@pytest.mark.parametrize("what", [w for w, _ in bypass.UNKNOWNS])
def test_a_value_these_paths_need_unknown_at_preview_is_an_advisory(pack, what):
    found = pack(data.mutated("tagged-broker", dict(bypass.UNKNOWNS)[what]))
    assert [v.level for v in found] == ["advisory"], [v.message for v in found]


def test_a_foreign_target_role_names_the_association_and_the_account_and_is_quiet_once_listed():
    mutation = dict(bypass.BYPASSES)["a tenant's pod identity association chaining to another account's role (targetRoleArn)"]
    rule, _, _ = _rule()
    resources = _plain(data.mutated("tagged-broker", mutation))
    found = [m for _, m in rule.findings(resources, data.CONFIG[RULE])[3]]
    assert any(
        "Tenant acme's pods in t-acme" in m and "t-acme-identity" in m and f"a role of account {data.FOREIGN}" in m for m in found
    ), found
    assert rule.findings(resources, bypass.external_role_listed(data.CONFIG[RULE]))[3] == []


def test_a_canonical_user_and_an_unpinned_service_are_named_in_the_path(pack):
    canonical = pack(
        data.mutated("tagged-broker", dict(bypass.BYPASSES)["a pool bucket policy granting a CanonicalUser s3:GetObject"])
    )
    assert any("canonical user 79a59df900b949e5" in v.message and "statement Partner" in v.message for v in canonical)
    deputy = pack(
        data.mutated("tagged-broker", dict(bypass.BYPASSES)["log delivery granted PutObject on the pool with no condition"])
    )
    message = " ".join(v.message for v in deputy)
    assert "AWS service delivery.logs.amazonaws.com acting for another account" in message
    assert "statement ServiceWrites allows s3:PutObject" in message and "aws:SourceAccount" in message


def test_the_platform_secret_read_by_a_tenant_names_the_tenant_and_the_secret(pack):
    what = "a tenant role reading the platform's database secret (identity policy)"
    message = " ".join(v.message for v in pack(data.mutated("session-policy", dict(bypass.BYPASSES)[what])))
    assert "The platform's secrets must be reachable only by the platform" in message
    assert "tenant acme's workloads reach it" in message and "secret db-app-credential" in message


def test_a_foreign_grant_names_the_account_the_statement_and_the_resource(pack):
    found = pack(data.mutated("tagged-broker", dict(data.MISSES)["pool bucket policy allowing a foreign account s3:GetObject"]))
    message = " ".join(v.message for v in found)
    assert f"account {data.FOREIGN}" in message
    assert "bucket policy pool-policy: statement Partner allows s3:GetObject" in message
    assert "objects under tenants/t-acme/" in message and "objects under tenants/t-globex/" in message


def _findings(resources, tenant=None):
    rule, _, _ = _rule()
    return rule.findings(_plain(resources), data.CONFIG[RULE], tenant)


def _matrix(resources, tenant):
    rule, _, _ = _rule()
    world, reach, accesses, _ = rule.findings(_plain(resources), data.CONFIG[RULE], tenant)
    return rule.tenant_matrix(world, reach, accesses, tenant)


def test_the_broker_reaches_a_tenant_only_through_a_session_tagged_for_it():
    rows = _matrix(data.tenancy_stack("tagged-broker"), "acme")
    broker = [r for r in rows if r["who"] == "pods in platform as meridian-api"]
    assert broker and all(r["session_tags"].get("meridian-tenant") == "t-acme" for r in broker)
    assert all(r["session_tags"]["kubernetes-namespace"] == "platform" for r in broker)  # inherited, transitive
    assert {r["verdict"] for r in broker} == {"allowed: the platform, through a session for this tenant"}


def test_sts_refuses_to_overwrite_a_transitive_tag_so_todays_broker_gets_no_tenant_session():
    """Today's broker passes `kubernetes-namespace`, which its own pod identity session already carries."""
    rows = _matrix(data.tenancy_stack("session-policy"), "acme")
    assert [r for r in rows if "platform" in r["who"]] == []
    assert {r["who"] for r in rows if r["origin"] not in ("account", "operator")} == {"pods in t-acme as acme-app"}


def test_a_broker_acting_for_one_tenant_must_not_reach_another():
    def widen(resources):
        policy = data.find(resources, "tenants-data-access")["inputs"]
        doc = json.loads(policy["policy"])
        for st in doc["Statement"]:
            if st.get("Sid") == "BrokerObjects":
                st["Resource"] = f"{data.POOL_ARN}/tenants/*"
        policy["policy"] = json.dumps(doc)

    _, _, _, found = _findings(data.mutated("tagged-broker", widen))
    assert any("a platform workload reaches it through a session whose tags do not name this tenant" in m for _, m in found)


def test_a_session_policy_is_not_what_isolates_in_the_shared_role():
    """acme's session policy opened to everything still meets the role's namespace tag: nothing leaks."""
    _, _, _, found = _findings(data.mutated("session-policy", data.acme_session_policy_widened()))
    assert found == []


def test_a_document_unknown_at_preview_is_an_advisory_naming_it_never_a_pass(pack):
    def unknown_policy(resources):
        data.find(resources, "lb-controller-access")["inputs"]["policy"] = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

    found = pack(data.mutated("tagged-broker", unknown_policy))
    assert [v.level for v in found] == ["advisory"]
    assert "unverifiable at preview" in found[0].message and "lb-controller-access" in found[0].message


def test_a_literal_key_arn_the_plan_cannot_place_is_reported_for_the_key_it_may_be():
    """Keys match by ARN: a hand-written ARN beside a key the plan shows no ARN for is an advisory."""

    def hide_and_name(resources):
        resources[:] = [r for r in resources if r["name"] != "t-globex-key-alias"]
        data.find(resources, "lb-controller-access")["inputs"]["policy"] = json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-east-1:123456789012:key/bbbb-globex"}
                ]
            }
        )

    _, _, _, found = _findings(data.mutated("tagged-broker", hide_and_name))
    assert any("t-globex-key has no ARN in the plan" in m and "bbbb-globex" in m for _, m in found)


def test_the_evaluator_is_pinned_once_everywhere_to_the_release_the_shim_accepts():
    def pinned(path):
        found = re.findall(r"^principalmapper==([^\s#]+)", path.read_text(), re.MULTILINE)
        assert len(found) == 1, f"{path.name} must pin principalmapper exactly once"
        return found[0]

    source = (PACK / "access" / "simulator.py").read_text()
    declared = re.search(r'^PRINCIPALMAPPER = "([^"]+)"', source, re.MULTILINE).group(1)
    assert pinned(ROOT / "constraints.txt") == pinned(PACK / "requirements.txt") == declared
    assert f'"principalmapper=={declared}"' in (ROOT / "pyproject.toml").read_text()


def test_explain_prints_the_matrix_of_one_tenant_and_refuses_an_unknown_one():
    runner = CliRunner()
    result = runner.invoke(app, ["policy", "--stack", "us", "--explain", "--tenant", "acme", "--format", "json"], env=ENV)
    assert result.exit_code == 0, result.output
    matrix = json.loads(result.stdout)
    assert matrix["tenant"] == "acme" and "globex" in matrix["tenants"]
    own = [r for r in matrix["rows"] if r["who"] == "pods in t-acme as acme-app"]
    assert own and all(r["verdict"] == "allowed: the tenant's own workloads" for r in own)
    assert any("statement" in why for r in own for why in r["allowed_by"])
    # the AWS Backup documents the stack attaches are shipped: cited by statement, never taken as every action
    backup = "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup"
    cited = [why for r in matrix["rows"] for why in r["allowed_by"] if backup in why]
    assert cited and all(why.startswith(f"attached policy {backup}: statement ") for why in cited), cited
    assert not [r for r in matrix["rows"] if r["assumed"] or "treated as every action" in r["path"]]
    text = " ".join(runner.invoke(app, ["policy", "--stack", "us", "--explain", "--tenant", "acme"], env=ENV).output.split())
    assert "not allowed by the tenancy design" in text and "Counted, by who:" in text
    bad = runner.invoke(app, ["policy", "--stack", "us", "--explain", "--tenant", "nobody"], env=ENV)
    assert bad.exit_code == 2 and "'nobody' is not in the plan" in " ".join(bad.output.split())
    lone = runner.invoke(app, ["policy", "--stack", "us", "--explain"], env=ENV)
    assert lone.exit_code == 2 and "--explain needs --tenant" in " ".join(lone.output.split())
