"""Every rule of the pack, through the analyzer protocol as the engine drives it: a stack that passes
everything, then one mutation per failure mode (policies/policydata.py), each caught by its rule."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate
from meridian.errors import BadInput

from . import policydata
from .helpers import ROOT

PACK = ROOT / "policies"


def _load(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MUTATION_CASES = [(rule, i, what) for rule, muts in policydata.MUTATIONS.items() for i, (what, _) in enumerate(muts)]


class Pack:
    """One analyzer process for the whole session; `run` reconfigures it when asked for another config."""

    def __init__(self, analyzer: Analyzer):
        self.analyzer = analyzer
        self.info = analyzer.wait_ready()
        self._current = None

    def configure(self, config: dict) -> None:
        key = json.dumps(config, sort_keys=True)
        if key != self._current:
            self.analyzer.configure(effective_config(self.info, config, "test config"))
            self._current = key

    def run(self, resources: list[dict], config: dict | None = None):
        self.configure(policydata.CONFIG if config is None else config)
        return evaluate(self.analyzer, [Subject.from_dict(r) for r in resources])

    def run_only(self, rule: str, resources: list[dict]):
        """Only `rule` enabled (the others skipped by the SDK): what one mutation test needs, several times faster."""
        settings = {
            k: {s: v for s, v in e.items() if s != "enforcementLevel"}
            for k, e in policydata.CONFIG.items()
            if isinstance(e, dict)
        }
        return self.run(
            resources, {**settings, "all": "disabled", rule: {**settings.get(rule, {}), "enforcementLevel": "mandatory"}}
        )


@pytest.fixture(scope="session")
def pack():
    with Analyzer(PACK) as analyzer:
        yield Pack(analyzer)


def test_the_valid_stack_passes_every_rule(pack):
    assert pack.run(policydata.valid_stack()) == []


@pytest.mark.parametrize("rule,index,what", MUTATION_CASES, ids=[f"{r}-{i}" for r, i, _ in MUTATION_CASES])
def test_each_mutation_is_caught_by_its_rule(pack, rule, index, what):
    violations = pack.run_only(rule, policydata.mutated(rule, index))
    assert violations, f"{rule} missed: {what}"
    assert {v.policy for v in violations} == {rule}
    for v in violations:
        assert v.level == "mandatory", v
        assert " must " in v.message, v.message
        if pack.info.policy(rule).kind == "resource":
            assert v.urn.startswith("urn:pulumi:test::meridian::"), v


def test_every_rule_has_metadata_a_reviewer_can_act_on_and_a_failing_example(pack):
    names = [p.name for p in pack.info.policies]
    assert len(names) == len(set(names)) >= 25
    for p in pack.info.policies:
        assert p.name in policydata.MUTATIONS, f"{p.name} has no failing example"
        assert p.description.startswith("Checks that ") and " Why: " in p.description, p.name
        assert p.remediation and p.severity and p.tags, p.name
        assert all("type" in s and "description" in s for s in p.schema.values()), p.name
        assert p.name == p.name.lower() and p.name.count("-") >= 2, p.name


def test_every_area_module_contributes_and_main_builds_the_pack_only():
    main = (PACK / "__main__.py").read_text()
    for area in ("residency", "encryption", "exposure", "iam", "tags", "resilience", "tenancy", "cost"):
        assert f"*{area}.POLICIES" in main
    assert main.count("PolicyPack(") == 1
    for source in PACK.glob("*.py"):
        text = source.read_text()
        assert "from components" not in text and "import meridian" not in text and "from meridian" not in text, source


def test_absent_properties_take_the_provider_default(pack):
    stack = policydata.valid_stack()
    eks = policydata.find(stack, "eks")
    del eks["inputs"]["vpcConfig"]["endpointPublicAccess"]  # default: public, 0.0.0.0/0
    found = {v.policy for v in pack.run(stack)}
    assert found == {"eks-cluster-endpoint-restricted"}


def test_policy_documents_as_objects_are_read_like_strings(pack):
    stack = policydata.valid_stack()
    policydata.find(stack, "deploy")["inputs"]["policy"] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    assert "iam-policy-no-full-admin" in {v.policy for v in pack.run(stack)}


def test_one_unknown_value_hides_no_other_resource(pack):
    """No fail-open: the group whose CIDR is only known after apply is reported on its own (advisory,
    unverifiable), and the other group's open SSH port is still a mandatory violation."""
    stack = policydata.valid_stack()
    policydata.find(stack, "lb-sg")["inputs"]["ingress"][0]["cidrBlocks"] = [policydata.UNKNOWN]
    policydata.MUTATIONS["ec2-security-group-ingress-restricted"][0][1](stack)  # db-sg open to 0.0.0.0/0 on 5432
    found = [v for v in pack.run(stack) if v.policy == "ec2-security-group-ingress-restricted"]
    by_urn = {v.urn: v for v in found}
    lb, db = (policydata.urn("aws:ec2/securityGroup:SecurityGroup", n) for n in ("lb-sg", "db-sg"))
    assert by_urn[db].level == "mandatory" and "5432" in by_urn[db].message
    assert by_urn[lb].level == "advisory" and by_urn[lb].message.startswith("unverifiable at preview: ")
    assert not any("can't run" in v.message for v in found)


def test_unknown_documents_are_unverifiable_resource_by_resource(pack):
    stack = policydata.valid_stack()
    policydata.find(stack, "deploy")["inputs"]["policy"] = policydata.UNKNOWN  # a document only known after apply
    policydata.find(stack, "t-acme-data-access")["inputs"]["policy"] = policydata.UNKNOWN
    policydata.find(stack, "pool-tls-only")["inputs"]["policy"] = policydata.UNKNOWN
    policydata.find(stack, "alerts")["inputs"]["kmsMasterKeyId"] = policydata.UNKNOWN
    violations = pack.run(stack)
    assert violations and all(v.level == "advisory" and v.message.startswith("unverifiable at preview: ") for v in violations), (
        violations
    )
    assert {(v.policy, v.urn.rsplit("::", 1)[-1]) for v in violations} >= {
        ("iam-policy-no-full-admin", "deploy"),
        ("tenant-role-isolated", "t-acme-data-access"),
        ("s3-bucket-tls-only", "pool-tls-only"),
        ("sns-topic-encrypted", "alerts"),
    }
    # What is known is still judged: Action "*" in a document whose Resource is unknown.
    policydata.find(stack, "deploy")["inputs"]["policy"] = {
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": policydata.UNKNOWN}]
    }
    assert [v.level for v in pack.run(stack) if v.policy == "iam-policy-no-full-admin" and v.urn.endswith("::deploy")] == [
        "mandatory"
    ]
    # Residency must be provable at preview: an unknown region fails (mutation 'region computed').
    found = [
        v for v in pack.run(policydata.mutated("aws-resource-region-allowed", 2)) if v.policy == "aws-resource-region-allowed"
    ]
    assert found and found[0].level == "mandatory" and "must be known" in found[0].message


def test_a_tag_based_backup_selection_covers_exactly_the_resources_with_its_tags(pack):
    """As the real stacks select their data: ARN patterns plus a stack-tag condition. The tags decide,
    resource by resource: one bucket whose tag is only known after apply is unverifiable alone."""
    stack = policydata.valid_stack()
    selection = policydata.find(stack, "backup-everything")
    selection["inputs"]["resources"] = ["arn:aws:s3:::*", "arn:aws:rds:*:*:cluster:*"]
    selection["propertyDependencies"].pop("resources")
    selection["inputs"]["conditions"] = [{"stringEquals": [{"key": "aws:ResourceTag/meridian:stack", "value": policydata.STACK}]}]
    assert [v for v in pack.run(stack) if v.policy == "backup-plan-coverage"] == []
    policydata.find(stack, "pool-bucket")["inputs"]["tags"]["meridian:stack"] = policydata.UNKNOWN
    policydata.find(stack, "pool-replica-bucket")["inputs"]["tags"]["meridian:stack"] = "another-stack"
    found = {v.urn.rsplit("::", 1)[-1]: v for v in pack.run(stack) if v.policy == "backup-plan-coverage"}
    assert set(found) == {"pool-bucket", "pool-replica-bucket"}
    assert found["pool-bucket"].level == "advisory" and found["pool-bucket"].message.startswith("unverifiable at preview")
    assert found["pool-replica-bucket"].level == "mandatory"


def test_a_tag_based_backup_selection_sees_the_providers_default_tags(pack):
    """The stacks tag through provider `default_tags`: a bucket without its own stack tag is selected
    through its provider's, and its own tag still wins over the provider's (as AWS merges them)."""
    stack = policydata.valid_stack()
    selection = policydata.find(stack, "backup-everything")
    selection["inputs"]["resources"] = ["arn:aws:s3:::*", "arn:aws:rds:*:*:cluster:*"]
    selection["propertyDependencies"].pop("resources")
    selection["inputs"]["conditions"] = [{"stringEquals": [{"key": "aws:ResourceTag/meridian:stack", "value": policydata.STACK}]}]
    replica = policydata.find(stack, "pool-replica-bucket")  # in the dr region, whose provider carries default tags
    del replica["inputs"]["tags"]["meridian:stack"]
    assert [v for v in pack.run(stack) if v.policy == "backup-plan-coverage"] == []
    replica["inputs"]["tags"]["meridian:stack"] = "another-stack"
    found = [v.urn.rsplit("::", 1)[-1] for v in pack.run(stack) if v.policy == "backup-plan-coverage"]
    assert found == ["pool-replica-bucket"]


def test_a_selection_of_the_global_primary_alone_covers_the_database(pack):
    """An Aurora global secondary (no master credentials, data from the primary) is a replica: a
    selection naming the primary cluster covers the database; one naming only the secondary does not."""
    stack = policydata.valid_stack()
    selection = policydata.find(stack, "backup-everything")
    primary, secondary = (policydata.find(stack, n)["urn"] for n in ("db-primary-cluster", "db-dr-cluster"))
    selection["inputs"]["resources"] = ["arn:aws:rds:primary-cluster-arn", "arn:aws:s3:::*"]
    selection["propertyDependencies"]["resources"] = [primary]
    selection["inputs"]["conditions"] = [{"stringEquals": [{"key": "aws:ResourceTag/meridian:stack", "value": policydata.STACK}]}]
    assert [v for v in pack.run(stack) if v.policy == "backup-plan-coverage"] == []
    selection["propertyDependencies"]["resources"] = [secondary]
    found = [v.urn for v in pack.run(stack) if v.policy == "backup-plan-coverage"]
    assert found == [primary]


def test_tenant_isolation_still_follows_links_when_the_document_is_unknown(pack):
    stack = policydata.mutated("tenant-role-isolated", 2)  # reaches globex's key (a property dependency)
    policydata.find(stack, "t-acme-data-access")["inputs"]["policy"] = policydata.UNKNOWN
    assert "tenant-role-isolated" in {v.policy for v in pack.run(stack) if v.level == "mandatory"}


def test_config_sets_levels_and_settings(pack):
    stack = policydata.mutated("rds-storage-encrypted", 0)
    advisory = {**policydata.CONFIG, "rds-storage-encrypted": "advisory"}
    assert [v.level for v in pack.run(stack, advisory) if v.policy == "rds-storage-encrypted"] == ["advisory"]
    disabled = {**policydata.CONFIG, "rds-storage-encrypted": {"enforcementLevel": "disabled"}}
    assert not [v for v in pack.run(stack, disabled) if v.policy == "rds-storage-encrypted"]
    stricter = {**policydata.CONFIG, "rds-backup-retention-sufficient": {"minRetentionDays": 30}}
    assert {v.policy for v in pack.run(policydata.valid_stack(), stricter)} == {"rds-backup-retention-sufficient"}
    everything_advisory = {**policydata.CONFIG, "all": "advisory"}
    assert {v.level for v in pack.run(policydata.mutated("s3-bucket-tls-only", 0), everything_advisory)} == {"advisory"}


def test_residency_exception_is_narrow(pack):
    """The exception covers its types inside its component only: the failover alarm set, not every topic."""
    config = copy.deepcopy(policydata.CONFIG)
    config["aws-resource-region-allowed"]["regionExceptions"] = [
        {"region": "eu-west-1", "component": "meridian:failover:Failover", "types": ["aws:sns/topic:Topic"]}
    ]
    stack = policydata.valid_stack()
    alerts = policydata.find(stack, "alerts")
    alerts["inputs"]["region"] = "eu-west-1"
    alerts["urn"] = alerts["urn"].replace("::aws:sns/topic:Topic::", "::meridian:failover:Failover$aws:sns/topic:Topic::")
    region_rule = "aws-resource-region-allowed"
    assert [v for v in pack.run(stack, config) if v.policy == region_rule] == []
    stack = policydata.valid_stack()
    policydata.find(stack, "alerts")["inputs"]["region"] = "eu-west-1"  # the same type outside the component
    policydata.find(stack, "flowlogs")["inputs"]["region"] = "eu-west-1"  # not an excepted type
    assert sorted(v.urn for v in pack.run(stack, config) if v.policy == region_rule) == sorted(
        [policydata.urn("aws:sns/topic:Topic", "alerts"), policydata.urn("aws:cloudwatch/logGroup:LogGroup", "flowlogs")]
    )


def test_bad_config_lists_every_problem(pack):
    bad = {
        "no-such-rule": "mandatory",
        "rds-storage-encrypted": "sometimes",
        "rds-backup-retention-sufficient": {"minRetentionDays": "14", "maxDays": 3},
        "rds-database-dr-member": {"enforcementLevel": "mandatory"},
    }
    with pytest.raises(BadInput) as err:
        effective_config(pack.info, bad, "policies/config/x.json")
    text = str(err.value)
    # five in the file, the five residency rules left without their required `allowedRegions`, and the
    # target group rule without the RTO target it bounds a health check by
    assert text.startswith("policies/config/x.json: invalid policy config (11 problems)")
    assert "lb-target-group-health-checked.rtoTargetSeconds: required setting is missing" in text
    assert "provider-account-and-endpoints-in-zone.allowedRegions: required setting is missing" in text
    assert "aws-data-path-destination-in-zone.allowedRegions: required setting is missing" in text
    assert "aws-resource-region-allowed.allowedRegions: required setting is missing" in text
    assert "sns-subscription-endpoint-in-zone.allowedRegions: required setting is missing" in text
    for needle in (
        "no-such-rule: unknown policy",
        "rds-storage-encrypted.enforcementLevel: must be one of",
        "minRetentionDays: must be an integer",
        "maxDays: unknown setting",
        "rds-database-dr-member.drRegion: required setting is missing",
    ):
        assert needle in text


def test_every_enabled_policy_is_configured_with_an_explicit_level(pack):
    config = effective_config(pack.info, policydata.CONFIG, "x")
    assert set(config) == {p.name for p in pack.info.policies}
    assert all(level in ("advisory", "mandatory", "disabled", "remediate") for level, _ in config.values())
    assert config["aws-resource-required-tags"][1]["requiredTags"][0] == "meridian:stack"  # schema default filled in


def test_check_functions_can_be_called_directly_with_plain_dicts():
    sys.path.insert(0, str(PACK))
    try:
        encryption = _load("meridian_policy_encryption_test", PACK / "encryption.py")
        iam = _load("meridian_policy_iam_test", PACK / "iam.py")
    finally:
        sys.path.remove(str(PACK))
    key = "arn:aws:kms:us-east-1:123456789012:key/1111-platform"
    assert (
        encryption.check_rds_storage_encrypted("aws:rds/cluster:Cluster", {"storageEncrypted": True, "kmsKeyId": key}, {}, None)
        == []
    )
    assert encryption.check_rds_storage_encrypted(
        "aws:rds/cluster:Cluster", {"storageEncrypted": True, "kmsKeyId": "x"}, {}, None
    )
    assert encryption.check_rds_storage_encrypted("aws:rds/cluster:Cluster", {}, {}, None)
    doc = json.dumps({"Statement": [{"Effect": "Allow", "Action": "iam:Pass*", "Resource": ["*"]}]})
    assert iam.check_no_passrole_wildcard("aws:iam/policy:Policy", {"policy": doc}, {}, None)


def test_taggable_type_list_matches_installed_pulumi_aws():
    proc = subprocess.run(
        [sys.executable, str(PACK / "tools" / "taggable_types.py")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads((PACK / "aws_taggable.json").read_text()), (
        "regenerate policies/aws_taggable.json"
    )


def test_catalog_is_generated_from_the_pack():
    from meridian.commands.policy import catalog_markdown
    from meridian.engine.policy.catalog_examples import EXAMPLES

    assert set(EXAMPLES) == set(policydata.MUTATIONS), "every rule needs one catalog example"
    generated = catalog_markdown(ROOT)
    committed = (ROOT / "docs" / "policies.md").read_text()
    assert committed == generated, "docs/policies.md is stale: run `meridian policy --catalog docs/policies.md`"
    for name in policydata.MUTATIONS:
        assert f"### {name}" in generated
    assert generated.count("**Example violation**") == len(policydata.MUTATIONS)


class _Reg:
    """What RecordingMonitor hands `on_register`, built from an example resource."""

    def __init__(self, r: dict):
        s = Subject.from_dict(r)
        self.urn, self.type, self.name, self.wire, self.parent = s.urn, s.type, s.name, s.wire, s.parent
        self.provider_urn, self.dependencies, self.property_dependencies = s.provider, s.dependencies, s.property_dependencies
        self.protect, self.custom = s.protect, s.custom


@pytest.mark.parametrize("threshold", [5, 10_000], ids=["with-helper", "single"])
def test_streaming_with_a_stack_helper_finds_what_evaluate_finds(pack, threshold, tmp_path):
    import contextlib

    from meridian.engine.policy import PolicyStream

    resources = policydata.mutated("tenant-role-isolated", 0)
    policydata.MUTATIONS["rds-storage-encrypted"][0][1](resources)
    policydata.MUTATIONS["route53-failover-record-ready"][1][1](resources)
    expected = sorted((v.policy, v.urn, v.message) for v in pack.run(resources))
    # the widened tenant role is caught twice: by its allowlist and by the access evaluator
    assert {p for p, _, _ in expected} == {
        "tenant-role-isolated",
        "tenant-data-access",
        "rds-storage-encrypted",
        "route53-failover-record-ready",
    }
    with contextlib.ExitStack() as scope:
        main = scope.enter_context(Analyzer(PACK))
        stream = PolicyStream(
            main,
            policydata.CONFIG,
            tmp_path / "config.json",
            "test",
            helper_factory=lambda: scope.enter_context(Analyzer(PACK)),
            helper_threshold=threshold,
        )
        for r in resources:
            stream.on_register(_Reg(r))
        report = stream.finish()
        assert len(stream.helpers) == (1 if threshold == 5 else 0)
    assert sorted((v.policy, v.urn, v.message) for v in report.violations) == expected
    assert report.analyzed == len(resources) - 1  # everything but the Stack itself
    assert report.timings.analyzer_cpu_s is not None and report.timings.waited_s >= 0


def test_pod_identity_abac_design_is_proven_isolated(pack):
    """The shared pod-identity role (one per region, tenants told apart by the session tag EKS sets)
    passes; its isolation rests on what the rule checks: only pods.eks.amazonaws.com may assume it."""
    assert [v for v in pack.run(policydata.abac_stack(), policydata.ABAC_CONFIG) if v.policy == "tenant-role-isolated"] == []


@pytest.mark.parametrize("index", range(len(policydata.ABAC_MUTATIONS)), ids=[w for w, _ in policydata.ABAC_MUTATIONS])
def test_pod_identity_abac_bypasses_are_caught(pack, index):
    resources = policydata.abac_stack()
    policydata.ABAC_MUTATIONS[index][1](resources)
    found = [v for v in pack.run(resources, policydata.ABAC_CONFIG) if v.policy == "tenant-role-isolated"]
    assert found and all(v.level == "mandatory" for v in found), policydata.ABAC_MUTATIONS[index][0]


def test_a_broker_no_tenant_can_reach_keeps_the_abac_role_proven(pack):
    """The reference service's broker (components.tenantidentity) may set a tenant's session tags:
    the shared role stays proven isolated while no tenant can reach the broker."""
    assert [v for v in pack.run(policydata.broker_stack(), policydata.ABAC_CONFIG) if v.policy == "tenant-role-isolated"] == []


@pytest.mark.parametrize("index", range(len(policydata.BROKER_MUTATIONS)), ids=[w for w, _ in policydata.BROKER_MUTATIONS])
def test_broker_bypasses_are_caught(pack, index):
    resources = policydata.broker_stack()
    policydata.BROKER_MUTATIONS[index][1](resources)
    found = [v for v in pack.run(resources, policydata.ABAC_CONFIG) if v.policy == "tenant-role-isolated"]
    assert found and all(v.level == "mandatory" for v in found), policydata.BROKER_MUTATIONS[index][0]


@pytest.mark.parametrize(
    "stack,what,expected",
    [
        ("abac", "a session policy on acme's association with session tags left on", "must not carry a session policy"),
        ("abac", "the shared role carrying the IAM tag meridian-tenant", "must not carry the IAM tag(s) meridian-tenant"),
        (
            "broker",
            "the tenant role trusting the broker to pass a tenant pod's own tags",
            "must require a `meridian-tenant` session tag",
        ),
        ("broker", "a brokered statement with the tenant variable inside a longer segment", "outside tenants/t-acme/"),
    ],
)
def test_the_identity_redesign_bypasses_are_caught_for_their_reason(pack, stack, what, expected):
    """The classes the redesign adds (issue 24: session policy vs session tags, transitive tags) are
    caught by the check written for them, not by a neighbour's."""
    cases = policydata.ABAC_MUTATIONS if stack == "abac" else policydata.BROKER_MUTATIONS
    (mutate,) = [m for w, m in cases if w.startswith(what)]
    resources = policydata.abac_stack() if stack == "abac" else policydata.broker_stack()
    mutate(resources)
    messages = [v.message for v in pack.run(resources, policydata.ABAC_CONFIG) if v.policy == "tenant-role-isolated"]
    assert any(expected in m for m in messages), messages


def test_decoding_once_per_request_changes_no_verdict(pack, tmp_path):
    """policies/sdkhooks.py memoises the SDK's per-policy decoding; the pack as shipped by the SDK
    (hooks not installed) must find exactly the same violations, resource and stack rules alike."""
    plain_pack = tmp_path / "policies"
    shutil.copytree(PACK, plain_pack, ignore=shutil.ignore_patterns("__pycache__"))
    main = (plain_pack / "__main__.py").read_text()
    assert "\nsdkhooks.install()" in main
    (plain_pack / "__main__.py").write_text(main.replace("\nsdkhooks.install()", "\npass"))
    resources = policydata.mutated("tenant-role-isolated", 0)
    for rule, index in (
        ("rds-storage-encrypted", 0),
        ("ec2-security-group-ingress-restricted", 0),
        ("aws-resource-required-tags", 0),
    ):
        policydata.MUTATIONS[rule][index][1](resources)
    policydata.find(resources, "deploy")["inputs"]["policy"] = policydata.UNKNOWN
    cached = sorted((v.policy, v.level, v.urn, v.message) for v in pack.run(resources))
    with Analyzer(plain_pack) as analyzer:
        info = analyzer.wait_ready()
        analyzer.configure(effective_config(info, policydata.CONFIG, "test config"))
        shipped = sorted(
            (v.policy, v.level, v.urn, v.message) for v in evaluate(analyzer, [Subject.from_dict(r) for r in resources])
        )
    assert cached == shipped and len({p for p, *_ in cached}) >= 5


def test_the_pack_reports_the_version_its_pulumipolicy_yaml_declares(pack):
    # the Python SDK's analyzer always answers 0.0.1; the CLI, and so the engine, report the file's
    declared = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())["version"]
    assert pack.info.version == str(declared) != "0.0.1"
