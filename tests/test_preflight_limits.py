"""Preflight against AWS's document-size limits, quotas and argument constraints, on synthetic plans
(fast: no program run), and the replication design that keeps the pool's documents the same size
for 1 pool tenant or 1,000 (issue 24, finding 7).

The old design is rebuilt here as it was: a replication rule and two key ARNs (source, replica) per
pool tenant in the pool's replication role policy.
"""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
from google.protobuf import json_format, struct_pb2

from components.dr import TenantKeysByTag, decrypt_source_statement, encrypt_replicas_statement, replication_policy
from components.naming import tenant_data_prefix
from components.recovery import replicated_buckets
from meridian.engine.plan import Plan
from meridian.engine.recorder import Registration
from meridian.preflight import constraints, limits, quotas
from meridian.preflight.checks import Context
from stackconfig import TenantSpec, load_stack

from .helpers import ROOT, run_meridian

ACCOUNT = "123456789012"
SOURCE = "arn:aws:s3:::us-us-east-1-tenant-pool-data-bucket-ed3f900"
REPLICA = "arn:aws:s3:::us-us-west-2-tenant-pool-data-bucket-e321cb3"
PROVIDER = "urn:pulumi:us::meridian::pulumi:providers:aws::us-east-1"


def key_arn(region: str, n: int) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{n:08x}-0000-4000-8000-{n:012x}"


def reg(token: str, name: str, inputs: dict, *, deps: tuple[str, ...] = (), id_: str = "") -> Registration:
    struct = json_format.ParseDict(inputs, struct_pb2.Struct())
    return Registration(
        urn=f"urn:pulumi:us::meridian::{token}::{name}",
        type=token,
        name=name,
        custom=True,
        parent="",
        provider=f"{PROVIDER}::id" if token.startswith("aws:") else "",
        dependencies=list(deps),
        property_dependencies={},
        wire=struct.SerializeToString(),
        id=id_ or name,
    )


def provider() -> Registration:
    struct = json_format.ParseDict(
        {"region": "us-east-1", "defaultTags": json.dumps({"tags": {"meridian:stack": "us"}})}, struct_pb2.Struct()
    )
    return Registration(PROVIDER, "pulumi:providers:aws", "us-east-1", True, "", "", [], {}, struct.SerializeToString(), id="id")


def context(*regs: Registration) -> Context:
    cfg = load_stack(ROOT, "us")
    return Context.of(Plan("meridian", "us", [provider(), *regs], {}), cfg)


def old_pool_replication(pool_tenants: int) -> tuple[str, list[dict]]:
    """Today's program before the fix: a key pair and a rule per pool tenant."""
    sources = [key_arn("us-east-1", i) for i in range(pool_tenants)]
    replicas = [key_arn("us-west-2", 10_000 + i) for i in range(pool_tenants)]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadReplicationConfig",
                "Effect": "Allow",
                "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                "Resource": SOURCE,
            },
            {
                "Sid": "ReadSourceVersions",
                "Effect": "Allow",
                "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                "Resource": f"{SOURCE}/*",
            },
            {
                "Sid": "WriteReplicas",
                "Effect": "Allow",
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                "Resource": f"{REPLICA}/*",
            },
            {
                "Sid": "DecryptSource",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": sorted(sources),
                "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
            },
            {
                "Sid": "EncryptReplicas",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": sorted(replicas),
                "Condition": {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}},
            },
        ],
    }
    rules = [rule(f"pool-{i}", i, tenant_data_prefix(f"tenant-{i:04d}"), replicas[i]) for i in range(pool_tenants)]
    return json.dumps(document), rules


def new_pool_replication() -> tuple[str, list[dict]]:
    """The program's own functions, as components.dr renders the pool's documents."""
    keys = TenantKeysByTag(stack="us", tag_key="meridian:namespace", namespace_pattern="t-*")
    decrypt = decrypt_source_statement(SOURCE, keys, "us-east-1", ACCOUNT)
    replica_key = key_arn("us-west-2", 99_999)
    encrypt = encrypt_replicas_statement([replica_key], "us-west-2", ACCOUNT, REPLICA)
    return replication_policy(SOURCE, REPLICA, decrypt, encrypt), [rule("pool-0", 0, "tenants/", replica_key)]


def rule(rule_id: str, priority: int, prefix: str, replica_key: str) -> dict:
    return {
        "id": rule_id,
        "priority": priority,
        "status": "Enabled",
        "filter": {"prefix": prefix},
        "deleteMarkerReplication": {"status": "Enabled"},
        "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
        "destination": {
            "bucket": REPLICA,
            "storageClass": "STANDARD",
            "encryptionConfiguration": {"replicaKmsKeyId": replica_key},
        },
    }


def pool_plan(document: str, rules: list[dict]) -> list[Registration]:
    role = reg("aws:iam/role:Role", "us-dr-pool-repl-role", {"assumeRolePolicy": "{}"}, id_="us-dr-pool-repl-role-d177f62")
    access = reg("aws:iam/rolePolicy:RolePolicy", "us-dr-pool-replication-access", {"role": role.id, "policy": document})
    config = reg(
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "us-dr-pool-replication",
        {"bucket": SOURCE.rsplit(":", 1)[-1], "role": "arn:aws:iam::123456789012:role/r", "rules": rules},
    )
    return [role, access, config]


# --- finding 7: the old shape fails, the new one fits at any tenant count --------------------------------------------


@pytest.mark.parametrize("pool_tenants", [60, 1000])
def test_the_old_pool_replication_policy_breaks_iams_inline_limit(pool_tenants):
    document, rules = old_pool_replication(pool_tenants)
    result = limits.check_limits(context(*pool_plan(document, rules)))
    problems = [f.problem for f in result.findings if "inline policies of one IAM role" in f.problem]
    assert len(problems) == 1, result.findings
    size = limits.iam_size(document)
    assert size > limits.ROLE_INLINE.maximum
    assert f"{size:,} characters (no whitespace), over AWS's 10,240" in problems[0]
    assert result.findings[0].urn.endswith("::us-dr-pool-repl-role")  # the role, not one of its policies


def test_59_pool_tenants_still_fit_the_old_shape_60_do_not():
    """Where the old design broke, as measured on the document: what the issue reported."""
    sizes = {n: limits.iam_size(old_pool_replication(n)[0]) for n in (59, 60)}
    assert sizes[59] <= limits.ROLE_INLINE.maximum < sizes[60]


def test_the_old_rule_per_tenant_passes_1000_rules_and_fails_past_it():
    _, rules = old_pool_replication(1001)
    result = limits.check_limits(context(*pool_plan(new_pool_replication()[0], rules)))
    assert [f.problem for f in result.findings if "replication rules" in f.problem] == [
        f"S3 replication rules of one bucket: 1,001 rules, over AWS's 1,000 ({limits.REPLICATION_RULES.source})"
    ]
    at_max = limits.check_limits(context(*pool_plan(new_pool_replication()[0], rules[:1000])))
    assert at_max.passed, at_max.findings


def test_the_new_pool_replication_fits_and_does_not_grow():
    document, rules = new_pool_replication()
    result = limits.check_limits(context(*pool_plan(document, rules)))
    assert result.passed, result.findings
    assert result.checked >= 3  # trust policy, the role's inline total, the rules
    assert limits.iam_size(document) < 2_000


def test_the_pool_replicates_under_one_rule_whatever_the_number_of_pool_tenants():
    def tenancy(region: str) -> SimpleNamespace:
        pool = SimpleNamespace(bucket_arn=f"arn:aws:s3:::{region}-pool", key_arn=key_arn(region, 1), versioning=object())
        return SimpleNamespace(pool=pool, tenants={})

    for n in (1, 60, 1000):
        tenants = [TenantSpec(id=f"tenant-{i:04d}", plan="starter", monthly_budget_usd=10) for i in range(n)]
        (pair,) = replicated_buckets("us", tenants, tenancy("us-east-1"), tenancy("us-west-2"))
        assert [(r.prefix, r.replica_key_arn) for r in pair.routes] == [("tenants/", key_arn("us-west-2", 1))]
        assert isinstance(pair.source_keys, TenantKeysByTag)


def test_the_tagged_decrypt_grant_names_no_key_and_binds_the_source_bucket():
    keys = TenantKeysByTag(stack="us", tag_key="meridian:namespace", namespace_pattern="t-*")
    statement = decrypt_source_statement(SOURCE, keys, "us-east-1", ACCOUNT)
    assert statement["Resource"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"
    assert statement["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [SOURCE, f"{SOURCE}/*"]
    assert statement["Condition"]["StringEquals"]["aws:ResourceTag/meridian:stack"] == "us"
    listed = decrypt_source_statement(SOURCE, [key_arn("us-east-1", 2), key_arn("us-east-1", 1)], "us-east-1", ACCOUNT)
    assert listed["Resource"] == sorted([key_arn("us-east-1", 1), key_arn("us-east-1", 2)])


# --- the other documents ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "key", "limit", "size"),
    [
        ("aws:s3/bucketPolicy:BucketPolicy", "policy", limits.BUCKET_POLICY, 20_481),
        ("aws:kms/key:Key", "policy", limits.KEY_POLICY, 32_769),
        ("aws:sns/topicPolicy:TopicPolicy", "policy", limits.TOPIC_POLICY, 30_721),
        ("aws:sqs/queuePolicy:QueuePolicy", "policy", limits.QUEUE_POLICY, 8_193),
        ("aws:iam/policy:Policy", "policy", limits.MANAGED_POLICY, 6_145),
        ("aws:iam/role:Role", "assumeRolePolicy", limits.TRUST_POLICY, 2_049),
    ],
)
def test_each_policy_document_fails_one_past_its_limit_and_passes_at_it(token, key, limit, size):
    def document(n: int) -> str:
        padding = n - len('{"Sid":""}')
        return '{"Sid":"' + "x" * padding + '"}'

    assert limits.measure(limit, document(size)) == size
    over = limits.check_limits(context(reg(token, "doc", {key: document(size)})))
    assert [f.problem.split(":")[0] for f in over.findings] == [limit.what]
    at = limits.check_limits(context(reg(token, "doc", {key: document(size - 1)})))
    assert at.passed, at.findings


def test_iam_counts_no_whitespace_and_a_role_sums_its_inline_policies():
    assert limits.iam_size('{"a": [1, 2]}\n') == len('{"a":[1,2]}')
    role = reg("aws:iam/role:Role", "r", {"assumeRolePolicy": "{}"}, id_="r-1")
    half = '{"Sid":"' + "x" * 5_200 + '"}'
    one = reg("aws:iam/rolePolicy:RolePolicy", "p1", {"role": "r-1", "policy": half})
    two = reg("aws:iam/rolePolicy:RolePolicy", "p2", {"role": "r-1", "policy": half})
    assert limits.check_limits(context(role, one)).passed
    (finding,) = limits.check_limits(context(role, one, two)).findings
    assert finding.urn == role.urn and "p1, p2" in finding.fix


def test_an_unknown_document_is_a_finding_not_a_pass():
    result = limits.check_limits(context(reg("aws:iam/policy:Policy", "p", {"policy": "[unknown]"})))
    assert not result.passed and "unknown" in result.findings[0].problem


def test_user_data_is_measured_before_base64_and_must_be_base64():
    import base64

    fits = base64.b64encode(b"x" * 16_384).decode()
    too_big = base64.b64encode(b"x" * 16_385).decode()
    token = "aws:ec2/launchTemplate:LaunchTemplate"
    assert limits.check_limits(context(reg(token, "lt", {"userData": fits}))).passed
    assert "16,385 bytes" in limits.check_limits(context(reg(token, "lt", {"userData": too_big}))).findings[0].problem
    assert "not base64" in limits.check_limits(context(reg(token, "lt", {"userData": "#!/bin/sh\necho"}))).findings[0].problem


def test_a_secret_value_is_measured_without_being_shown():
    value = "s" * 65_537
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": value}
    (finding,) = limits.check_limits(
        context(reg("aws:secretsmanager/secretVersion:SecretVersion", "v", {"secretString": secret}))
    ).findings
    assert "65,537 bytes" in finding.problem and value not in finding.problem + finding.fix


def test_tags_count_with_the_providers_default_tags():
    tags = {f"k{i}": "v" for i in range(49)}  # + meridian:stack from the provider = 50
    assert limits.check_limits(context(reg("aws:s3/bucket:Bucket", "b", {"tags": tags}))).passed
    over = limits.check_limits(context(reg("aws:s3/bucket:Bucket", "b", {"tags": {**tags, "k49": "v"}})))
    assert "51 tags, over AWS's 50" in over.findings[0].problem
    long = limits.check_limits(context(reg("aws:s3/bucket:Bucket", "b", {"tags": {"k" * 129: "v" * 257}})))
    assert len(long.findings) == 2


def test_two_replication_configurations_on_one_bucket_overwrite_each_other():
    document, rules = new_pool_replication()
    regs = pool_plan(document, rules)
    twin = reg(regs[2].type, "twin", json_format.MessageToDict(regs[2].inputs))
    assert "2 replication configurations" in limits.check_limits(context(*regs, twin)).findings[0].problem


# --- quotas ------------------------------------------------------------------------------------------------------------


def test_account_quotas_are_shared_by_the_stacks_naming_the_same_account(tmp_path):
    for stack, account in (("us", ACCOUNT), ("eu", ACCOUNT), ("apac", "210987654321")):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(f'config:\n  meridian:aws_account_id: "{account}"\n')
    assert quotas.sharing_stacks(tmp_path, ACCOUNT) == ["eu", "us"]
    roles = [reg("aws:iam/role:Role", f"r{i}", {"assumeRolePolicy": "{}"}) for i in range(501)]
    cfg = load_stack(ROOT, "us")
    alone = cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update={"stacks_per_account": 1})})
    ctx = Context.of(Plan("meridian", "us", [provider(), *roles], {}), alone, tmp_path)
    result = quotas.check_quotas(ctx)
    assert result.passed, "adjustable, and 2 x 501 is within the 5,000 Service Quotas grants: a warning, not a failure"
    (warning,) = result.warnings
    assert "IAM roles: this stack needs 501, over 500 available (account quota 1,000 / 2 stacks: eu, us name account" in warning
    assert "adjustable to 5,000: request 1,002" in warning
    assert "--service-code iam --quota-code L-FE177D64 --desired-value 1002" in warning


def test_an_account_quota_past_its_adjustable_maximum_fails(tmp_path):
    """2 stacks x 2,501 roles is past the 5,000 roles IAM grants at most: no request can make room."""
    for stack in ("us", "eu"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(f'config:\n  meridian:aws_account_id: "{ACCOUNT}"\n')
    cfg = load_stack(ROOT, "us")
    alone = cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update={"stacks_per_account": 1})})
    for n, passes in ((2_500, True), (2_501, False)):
        roles = [reg("aws:iam/role:Role", f"r{i}", {"assumeRolePolicy": "{}"}) for i in range(n)]
        result = quotas.check_quotas(Context.of(Plan("meridian", "us", [provider(), *roles], {}), alone, tmp_path))
        assert result.passed == passes, (n, result.findings)
        if not passes:
            (finding,) = result.findings
            assert f"IAM roles: this stack needs {n:,}, over 500 available" in finding.problem


def test_rules_per_security_group_count_each_source():
    sg = reg(
        "aws:ec2/securityGroup:SecurityGroup",
        "sg",
        {"ingress": [{"cidrBlocks": [f"10.0.{i}.0/24" for i in range(61)], "fromPort": 443, "toPort": 443, "protocol": "tcp"}]},
        id_="sg-1",
    )
    findings = quotas.check_quotas(context(sg)).findings
    assert [f.problem.split(":")[0] for f in findings] == ["Inbound rules in security group sg-1"]
    cfg = load_stack(ROOT, "us")
    raised = cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update={"raised": {"L-0EA8095F": 120}})})
    assert quotas.check_quotas(Context.of(Plan("meridian", "us", [provider(), sg], {}), raised)).passed


# --- constraints -------------------------------------------------------------------------------------------------------


def test_replication_must_wait_for_both_buckets_versioning():
    document, rules = new_pool_replication()
    role, access, config = pool_plan(document, rules)
    versionings = [
        reg(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"v-{arn[-7:]}",
            {"bucket": arn.rsplit(":", 1)[-1], "versioningConfiguration": {"status": "Enabled"}},
        )
        for arn in (SOURCE, REPLICA)
    ]
    racing = constraints.check_constraints(context(role, access, config, *versionings))
    assert len(racing.findings) == 2 and all("does not wait for the versioning" in f.problem for f in racing.findings)
    waiting = reg(config.type, config.name, json_format.MessageToDict(config.inputs), deps=tuple(v.urn for v in versionings))
    assert constraints.check_constraints(context(role, access, waiting, *versionings)).passed
    unversioned = constraints.check_constraints(context(role, access, waiting))
    assert len(unversioned.findings) == 2 and all("no versioning" in f.problem for f in unversioned.findings)


@pytest.mark.parametrize(
    ("token", "inputs", "expect"),
    [
        (
            "aws:backup/plan:Plan",
            {"rules": [{"ruleName": "r", "lifecycle": {"coldStorageAfter": 30, "deleteAfter": 100}}]},
            "less than 90",
        ),
        (
            "aws:backup/plan:Plan",
            {"rules": [{"ruleName": "r", "enableContinuousBackup": True, "lifecycle": {"deleteAfter": 60}}]},
            "at most 35",
        ),
        ("aws:backup/vaultLockConfiguration:VaultLockConfiguration", {"changeableForDays": 1}, "at least 3"),
        ("aws:cloudwatch/logGroup:LogGroup", {"retentionInDays": 10}, "retention_in_days 10"),
        ("aws:ec2/flowLog:FlowLog", {"logDestinationType": "cloud-watch-logs"}, "iam_role_arn"),
        ("aws:lb/listener:Listener", {"protocol": "HTTPS"}, "certificate_arn"),
        ("aws:route53/record:Record", {"aliases": [{"name": "x"}], "ttl": 60}, "alias record with ttl"),
        ("aws:eks/nodeGroup:NodeGroup", {"amiType": "AL2023_ARM_64_STANDARD", "instanceTypes": ["m7i.large"]}, "m7i.large"),
        ("aws:eks/nodeGroup:NodeGroup", {"amiType": "AL2023_x86_64_STANDARD", "instanceTypes": ["c7gn.large"]}, "c7gn.large"),
        ("aws:rds/cluster:Cluster", {"storageEncrypted": True, "globalClusterIdentifier": "g"}, "without kms_key_id"),
        ("aws:rds/cluster:Cluster", {"kmsKeyId": key_arn("us-west-2", 1), "masterUsername": "m"}, "a key in us-west-2"),
        ("aws:budgets/budgetAction:BudgetAction", {"actionType": "APPLY_IAM_POLICY", "definition": {}}, "iamActionDefinition"),
        ("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", {"clusterName": "c", "principalArn": "p"}, "no access entry"),
        ("aws:kms/replicaKey:ReplicaKey", {"primaryKeyArn": key_arn("us-east-1", 5)}, "not a key of this stack"),
    ],
)
def test_each_constraint_fails_on_the_combination_aws_refuses(token, inputs, expect):
    result = constraints.check_constraints(context(reg(token, "r", inputs)))
    assert any(expect in f.problem for f in result.findings), result.findings


def test_graviton_families_are_told_from_x86_ones():
    assert [
        constraints._is_graviton(t) for t in ("m7g.large", "c7gn.xlarge", "t4g.small", "r8g.large", "m7i.large", "g5.xlarge")
    ] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]


# --- the real program with synthetic tenants: 100 in `make test`, 1,000 in `make test-scale` --------------------------


@pytest.mark.slow
@pytest.mark.parametrize("tenants", [100, pytest.param(1000, marks=pytest.mark.scale)])
def test_preflight_at_scale_passes_limits_and_constraints(tmp_path, tenants):
    """`meridian preflight --stack eu --tenants N` (half pool tenants, half silo tenants with a
    bucket pair each): every document and argument rule holds for the real program. Quotas are
    judged too; the three stacks' configs name one account, so its IAM quotas are shared three ways
    and where tenants need them raised, each finding says which quota and how. At 100 tenants (`make
    test`, seconds) the same code runs as at 1,000: the synthetic tenants of both kinds, the program,
    and limits, constraints and quotas judging every tenant's documents and resources; what only the
    1,000-tenant run (`make test-scale`, minutes) shows is that the documents that grow with tenants
    stay under AWS's limits at the scale docs/operations.md claims."""
    out = tmp_path / "preflight.json"
    cli = run_meridian("preflight", "--stack", "eu", "--tenants", str(tenants), "--json", str(out), timeout=1800)
    report = {c["check"]: c for c in json.loads(out.read_text())["checks"]}
    for check in ("limits", "constraints"):
        assert report[check]["passed"], (check, report[check]["findings"][:5])
        assert report[check]["checked"] > tenants, check  # every tenant's documents and resources were judged
    assert report["quotas"]["checked"] > 20
    for finding in report["quotas"]["findings"]:
        assert "3 stacks: apac, eu, us name account" in finding["problem"] and "Service Quotas" in finding["fix"], finding
    assert cli.code == (0 if all(c["passed"] for c in report.values()) else 1), cli.out[-2000:]


# --- budget actions on a shared role (N3) and silo replication roles (roles per tenant) -------------------------------


def _tenant_caps(tenants: int) -> list[Registration]:
    """The cap design before the fix: a deny policy per tenant that its budget action attaches to the
    shared tenant role (both regions) when the tenant is over budget."""
    roles = [
        reg("aws:iam/role:Role", f"us-{r}-tenant-identity-role", {"path": "/meridian/tenants/"}, id_=f"us-{r}-role-1a2b3c4")
        for r in ("us-east-1", "us-west-2")
    ]
    actions = [
        reg(
            "aws:budgets/budgetAction:BudgetAction",
            f"us-cost-tenant-t{i}-cap",
            {
                "actionType": "APPLY_IAM_POLICY",
                "definition": {
                    "iamActionDefinition": {
                        "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/meridian/hard-caps/t{i}",
                        "roles": [r.id for r in roles],
                    }
                },
            },
        )
        for i in range(tenants)
    ]
    return [*roles, *actions]


def test_budget_actions_that_may_attach_more_policies_to_one_role_than_iam_allows_fail():
    over = limits.check_limits(context(*_tenant_caps(11)))
    assert sorted(f.urn.rsplit("::", 1)[1] for f in over.findings) == [
        "us-us-east-1-tenant-identity-role",
        "us-us-west-2-tenant-identity-role",
    ]
    assert all("11 budget actions may attach" in f.fix for f in over.findings), over.findings
    at = limits.check_limits(context(*_tenant_caps(10)))
    assert at.passed, at.findings


# --- Kubernetes Secrets ------------------------------------------------------------------------------------------


def test_a_kubernetes_secret_past_1_mib_fails_whatever_its_keys():
    """The settings file (a platform's inline tenants) and a cell's tenant file grow with tenants."""
    from meridian.engine.recorder import SECRET_SIG, SIG_KEY

    def secret(size: int) -> Registration:
        encoded = base64.b64encode(b"x" * 1_000).decode()
        string = {"tenants.json": "y" * (size - 1_000)}
        wrapped = {SIG_KEY: SECRET_SIG, "value": string}  # as the SDK sends a secret input
        return reg("kubernetes:core/v1:Secret", "tenants", {"data": {"a": encoded}, "stringData": wrapped})

    assert limits.check_limits(context(secret(1_048_576))).passed
    (finding,) = limits.check_limits(context(secret(1_048_577))).findings
    assert "Kubernetes Secret data, all keys together: 1,048,577 bytes, over AWS's 1,048,576" in finding.problem


def test_redacted_secrets_of_a_plan_read_back_are_noted_not_measured():
    result = limits.check_limits(
        context(
            reg("kubernetes:core/v1:Secret", "s", {"stringData": "[secret]"}),
            reg("aws:secretsmanager/secretVersion:SecretVersion", "v", {"secretString": "[secret]"}),
        )
    )
    assert result.passed and len([n for n in result.notes if "redacted in this plan" in n]) == 2
