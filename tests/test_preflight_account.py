"""Preflight of an AWS account (`meridian preflight --account/--zone`): quotas and document limits
summed over every stack deploying into it, on constructed plans (fast: no program run) of a zone's
platform and its cells, and two zones sharing one account. Each sum is tripped one count past what
AWS allows, and passes one count below; the real stacks pass through the CLI (`slow`).
"""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format, struct_pb2

from meridian.engine.plan import Plan
from meridian.engine.recorder import Registration
from meridian.preflight import account as acct
from meridian.preflight import quotas
from meridian.preflight.checks import Context
from stackconfig import load_stack

from .helpers import ROOT, run_meridian

ACCOUNT = "123456789012"


class StackPlan:
    """A constructed plan of one stack: an AWS provider per region, and the resources added."""

    def __init__(self, stack: str, regions: tuple[str, ...] = ("us-east-1", "us-west-2")):
        self.stack = stack
        self.regs: list[Registration] = []
        for region in regions:
            self._add("pulumi:providers:aws", region, {"region": region}, provider="")

    def provider(self, region: str) -> str:
        return f"urn:pulumi:{self.stack}::meridian::pulumi:providers:aws::{region}::id"

    def _add(self, token: str, name: str, inputs: dict, provider: str) -> None:
        self.regs.append(
            Registration(
                urn=f"urn:pulumi:{self.stack}::meridian::{token}::{name}",
                type=token,
                name=name,
                custom=True,
                parent="",
                provider=provider,
                dependencies=[],
                property_dependencies={},
                wire=json_format.ParseDict(inputs, struct_pb2.Struct()).SerializeToString(),
                id=name,
            )
        )

    def add(self, token: str, count: int, region: str = "us-east-1", inputs: dict | None = None, prefix: str = "r") -> StackPlan:
        for i in range(count):
            self._add(token, f"{self.stack}-{prefix}{len(self.regs)}-{i}", dict(inputs or {}), self.provider(region))
        return self

    def plan(self) -> Plan:
        return Plan("meridian", self.stack, self.regs, {})


@pytest.fixture(scope="module")
def cfgs():
    return {s: load_stack(ROOT, s) for s in ("us", "eu", "us-cell-001")}


def account_of(cfgs, *plans: StackPlan, raised: dict | None = None) -> acct.Account:
    stacks = []
    for p in plans:
        cfg = cfgs[p.stack] if p.stack in cfgs else cfgs["us-cell-001"]
        if raised:
            cfg = cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update=raised)})
        stacks.append(acct.AccountStack(p.stack, cfg, p.plan()))
    return acct.Account(ACCOUNT, stacks)


ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/policy:Policy"
BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
BUDGET = "aws:budgets/budget:Budget"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def quota_verdict(account: acct.Account, name: str) -> tuple[list[str], list[str]]:
    result = acct.check_account_quotas(account)
    return (
        [f.problem for f in result.findings if f.problem.startswith(name)],
        [w for w in result.warnings if w.startswith(name)],
    )


# --- each account-level sum, tripped by stacks that each pass alone ----------------------------------------------


@pytest.mark.parametrize(
    ("token", "quota", "default"),
    [
        (ROLE, "IAM roles", 1_000),
        (POLICY, "IAM customer managed policies", 1_500),
        (BUCKET, "S3 general purpose buckets", 10_000),
    ],
)
def test_an_adjustable_account_quota_over_its_default_asks_for_the_increase(cfgs, token, quota, default):
    """Split over a platform, its cell and another zone's platform, each far under the quota alone.
    IAM's two grant up to 5,000 (a warning: request it); S3 publishes no maximum (fails, naming the
    request, until meridian:quotas says it was granted)."""
    third = default // 3
    under = [
        StackPlan("us").add(token, third),
        StackPlan("us-cell-001").add(token, third),
        StackPlan("eu").add(token, default - 2 * third),
    ]
    assert quota_verdict(account_of(cfgs, *under), quota) == ([], [])
    over = [*under[:2], StackPlan("eu").add(token, default - 2 * third + 1)]
    account = account_of(cfgs, *over)
    findings, warnings = quota_verdict(account, quota)
    code = next(q.code for q in quotas.QUOTAS if q.name == quota)
    if token == BUCKET:
        (finding,) = [f for f in acct.check_account_quotas(account).findings if f.problem.startswith(quota)]
        assert not warnings and "Service Quotas publishes no maximum" in finding.problem
        what, said = finding.problem, finding.fix
    else:
        assert not findings, "adjustable within its maximum: a request, not a failure"
        (what,) = (said,) = warnings
    assert f"needs {default + 1:,} (eu {default - 2 * third + 1:,}, us {third:,}, us-cell-001 {third:,})" in what
    assert f"request an increase of quota {code} ({quota}) to {default + 1:,}" in said
    assert f"--quota-code {code} --desired-value {default + 1}" in said
    assert "--region us-east-1" in said  # IAM's and S3's account quotas are requested there
    raised = (
        {"iam_roles": default + 1, "iam_managed_policies": default + 1} if token != BUCKET else {"raised": {code: default + 1}}
    )
    assert quota_verdict(account_of(cfgs, *over, raised=raised), quota) == ([], [])


def test_a_raised_quota_declared_in_the_config_passes_and_its_maximum_fails(cfgs):
    over = [StackPlan("us").add(ROLE, 2_500), StackPlan("eu").add(ROLE, 2_500)]
    assert quota_verdict(account_of(cfgs, *over, raised={"iam_roles": 5_000}), "IAM roles") == ([], [])
    past = [StackPlan("us").add(ROLE, 2_500), StackPlan("eu").add(ROLE, 2_501)]
    (finding,), _ = quota_verdict(account_of(cfgs, *past), "IAM roles")
    assert "needs 5,001" in finding and "past the 5,000 Service Quotas grants" in finding


def test_stacks_declaring_different_quotas_for_one_account_are_told(cfgs):
    plans = [StackPlan("us").add(ROLE, 1), StackPlan("eu").add(ROLE, 1)]
    account = account_of(cfgs, *plans)
    eu = account.stacks[1]
    raised = eu.cfg.model_copy(update={"quotas": eu.cfg.quotas.model_copy(update={"iam_roles": 3_000})})
    account.stacks[1] = acct.AccountStack("eu", raised, eu.plan)
    (warning,) = [w for w in acct.check_account_quotas(account).warnings if "declare different values" in w]
    assert "meridian:quotas.iam_roles (eu 3,000, us 1,000)" in warning


def test_budgets_past_the_account_quota_fail(cfgs):
    """A tenant budget per tenant: three zones of 7,000 tenants are past AWS Budgets' 20,000 per account."""
    under = [StackPlan(s).add(BUDGET, n) for s, n in (("us", 5), ("us-cell-001", 9_995), ("eu", 10_000))]
    assert quota_verdict(account_of(cfgs, *under), "AWS Budgets") == ([], [])
    over = [StackPlan(s).add(BUDGET, n) for s, n in (("us", 5), ("us-cell-001", 9_996), ("eu", 10_000))]
    (finding,), warnings = quota_verdict(account_of(cfgs, *over), "AWS Budgets")
    assert not warnings and "needs 20,001" in finding and "no Service Quotas code to request" in finding


def test_kms_keys_are_summed_per_region_across_zones(cfgs):
    """Keys are a regional quota: 60,000 + 60,000 in two regions pass, in one region fail."""
    apart = [StackPlan("us").add(KEY, 60_000, "us-east-1"), StackPlan("eu", ("eu-west-1",)).add(KEY, 60_000, "eu-west-1")]
    assert quota_verdict(account_of(cfgs, *apart), "KMS customer managed keys") == ([], [])
    together = [StackPlan("us").add(KEY, 60_000, "us-east-1"), StackPlan("us-cell-001").add(KEY, 40_001, "us-east-1")]
    (finding,), _ = quota_verdict(account_of(cfgs, *together), "KMS customer managed keys")
    assert finding.startswith("KMS customer managed keys in us-east-1:") and "needs 100,001" in finding


def test_pod_identity_associations_of_a_platform_and_its_cells_add_up_per_cluster(cfgs):
    """Every cell adds its tenants' associations to the platform's clusters: 5,000 per cluster, not
    adjustable. Each stack alone is under it; the zone is not."""
    cluster = {"clusterName": "us-us-east-1-eks"}
    stacks = [StackPlan("us").add(ASSOCIATION, 1_000, inputs=cluster)]
    stacks += [StackPlan(f"us-cell-00{i}").add(ASSOCIATION, 1_000, inputs=cluster) for i in range(1, 5)]
    other = StackPlan("eu").add(ASSOCIATION, 4_000, inputs={"clusterName": "eu-eu-west-1-eks"})
    for s in stacks:
        assert quotas.check_quotas(Context.of(s.plan(), cfgs["us"])).passed  # each stack on its own
    assert quota_verdict(account_of(cfgs, *stacks, other), "Pod Identity associations") == ([], [])
    stacks[-1].add(ASSOCIATION, 1, inputs=cluster)
    (finding,), warnings = quota_verdict(account_of(cfgs, *stacks, other), "Pod Identity associations")
    assert not warnings
    assert finding.startswith("Pod Identity associations in cluster us-us-east-1-eks:") and "needs 5,001" in finding


def test_a_tenant_cluster_pair_is_counted_with_the_cells_on_it(cfgs):
    """A pair's cluster takes the associations of the cells placed on it (and the EBS CSI add-on's, which
    the add-on owns but EKS counts as the cluster's): one over 5,000 there fails naming that cluster, while
    the platform's own cluster, counted apart, passes."""
    own, pair = {"clusterName": "us-us-east-1-eks"}, {"clusterName": "us-us-east-1-eks-1"}
    addon = {**pair, "addonName": "aws-ebs-csi-driver", "podIdentityAssociations": [{"roleArn": "r", "serviceAccount": "s"}]}
    platform = StackPlan("us").add(ASSOCIATION, 3, inputs=own).add("aws:eks/addon:Addon", 1, inputs=addon)
    cells = [StackPlan("us-cell-001").add(ASSOCIATION, 4_000, inputs=own)]
    cells += [
        StackPlan("us-cell-002").add(ASSOCIATION, 2_500, inputs=pair),
        StackPlan("us-cell-003").add(ASSOCIATION, 2_499, inputs=pair),
    ]
    assert quota_verdict(account_of(cfgs, platform, *cells), "Pod Identity associations") == ([], [])
    cells[-1].add(ASSOCIATION, 1, inputs=pair)
    (finding,), _ = quota_verdict(account_of(cfgs, platform, *cells), "Pod Identity associations")
    assert finding.startswith("Pod Identity associations in cluster us-us-east-1-eks-1:"), finding
    assert "needs 5,001 (us 1, us-cell-002 2,500, us-cell-003 2,500)" in finding, finding


# --- document limits across stacks ------------------------------------------------------------------------------


def test_inline_policies_on_one_role_from_several_stacks_count_together(cfgs):
    """A cell adding an inline policy to the platform's role: each stack's share fits, together they do not."""
    document = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x" * 5_200}]}
    )
    on_role = {"role": "us-us-east-1-tenant-identity-role-c13bfbf", "policy": document}
    platform = StackPlan("us").add("aws:iam/rolePolicy:RolePolicy", 1, inputs=on_role)
    cell = StackPlan("us-cell-001").add("aws:iam/rolePolicy:RolePolicy", 1, inputs=on_role)
    for alone in (platform, cell):
        assert acct.check_account_limits(account_of(cfgs, alone)).passed
    result = acct.check_account_limits(account_of(cfgs, platform, cell))
    (finding,) = result.findings
    assert "inline policies of one IAM role, together" in finding.problem and "over AWS's 10,240" in finding.problem


def test_replication_of_one_bucket_from_two_stacks_overwrites(cfgs):
    rules = {"bucket": "mer-pool", "rules": [{"id": "r", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::x"}}]}
    platform = StackPlan("us").add("aws:s3/bucketReplicationConfig:BucketReplicationConfig", 1, inputs=rules)
    cell = StackPlan("us-cell-001").add("aws:s3/bucketReplicationConfig:BucketReplicationConfig", 1, inputs=rules)
    assert acct.check_account_limits(account_of(cfgs, platform)).passed
    (finding,) = acct.check_account_limits(account_of(cfgs, platform, cell)).findings
    assert "2 replication configurations for bucket mer-pool" in finding.problem


def test_replication_rules_of_one_bucket_past_1000_fail(cfgs):
    rule = {"status": "Enabled", "destination": {"bucket": "arn:aws:s3:::x"}}
    for n, passes in ((1_000, True), (1_001, False)):
        inputs = {"bucket": "b", "rules": [{**rule, "id": f"r{i}", "priority": i} for i in range(n)]}
        plan = StackPlan("us-cell-001").add("aws:s3/bucketReplicationConfig:BucketReplicationConfig", 1, inputs=inputs)
        result = acct.check_account_limits(account_of(cfgs, plan))
        assert result.passed == passes, result.findings[:1]


@pytest.mark.parametrize(
    ("token", "key", "limit"),
    [(POLICY, "policy", 6_144), (ROLE, "assumeRolePolicy", 2_048)],
)
def test_document_sizes_of_every_stack_are_judged(cfgs, token, key, limit):
    def doc(n: int) -> str:
        padding = "x" * (n - len(json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": ""}]}, separators=(",", ":"))))
        return json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": padding}]}, separators=(",", ":"))

    assert acct.check_account_limits(account_of(cfgs, StackPlan("us-cell-001").add(token, 1, inputs={key: doc(limit)}))).passed
    result = acct.check_account_limits(account_of(cfgs, StackPlan("us-cell-001").add(token, 1, inputs={key: doc(limit + 1)})))
    assert [f"{limit + 1:,} characters (no whitespace), over AWS's {limit:,}" in f.problem for f in result.findings] == [True]


# --- which stacks share an account --------------------------------------------------------------------------------


def test_stacks_are_grouped_by_account_and_those_naming_none_are_counted_in_each(cfgs):
    us, eu, cell = (cfgs[s] for s in ("us", "eu", "us-cell-001"))
    other = eu.model_copy(update={"aws_account_id": "210987654321"})
    nameless = eu.model_copy(update={"aws_account_id": None})
    groups = acct.group_accounts({"us": us, "us-cell-001": cell, "eu": other, "apac": nameless})
    assert groups == {"123456789012": (["us", "us-cell-001"], ["apac"]), "210987654321": (["eu"], ["apac"])}
    assert acct.group_accounts({"us": us.model_copy(update={"aws_account_id": None}), "eu": nameless}) == {
        None: ([], ["us", "eu"])
    }


def test_a_cell_shares_its_platforms_account_in_the_per_stack_share(tmp_path):
    """The old `sharing_stacks` read `meridian:aws_account_id` from each file: a cell's file names
    none (it is its platform's), so cells were left out of every account's share."""
    (tmp_path / "Pulumi.us.yaml").write_text(f'config:\n  meridian:aws_account_id: "{ACCOUNT}"\n')
    (tmp_path / "Pulumi.eu.yaml").write_text('config:\n  meridian:aws_account_id: "210987654321"\n')
    (tmp_path / "Pulumi.us-cell-001.yaml").write_text("config:\n  meridian:platform: us\n")
    assert sorted(quotas.sharing_stacks(tmp_path, ACCOUNT)) == ["us", "us-cell-001"]


def test_plan_json_reads_back_as_the_plan(cfgs):
    """`--plans DIR` reads what `meridian preview --json` writes: the same resources, regions and inputs."""
    plan = StackPlan("us").add(KEY, 2, "us-west-2").add(ROLE, 1, inputs={"assumeRolePolicy": "{}"}).plan()
    document = json.loads(json.dumps({"project": "meridian", "stack": "us", "resources": plan.resource_dicts}))
    again = acct.plan_from_document(document)
    assert again.resource_dicts == plan.resource_dicts
    assert {r.urn: again.region_of(r) for r in again.custom} == {r.urn: plan.region_of(r) for r in plan.custom}


# --- the CLI ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--account", "12345"], "an AWS account id is 12 digits"),
        (["--account", "210987654321"], "--account 210987654321: no stack deploys into it"),
        (["--zone", "us-cell-001"], "--zone 'us-cell-001': not a platform stack"),
        (["--account", ACCOUNT, "--zone", "us"], "not both"),
        (["--account", ACCOUNT, "--stack", "us"], "they do not take --stack"),
        (["--account", ACCOUNT, "--tenants", "10"], "--tenants/--cell-size fill a zone with synthetic cells to preview"),
        (["--plans", "/nonexistent"], "give one of --account ID"),
        (["--account", ACCOUNT, "--plans", "/nonexistent"], "--plans /nonexistent: not a directory"),
    ],
)
def test_bad_input_exits_2_naming_it(args, says):
    cli = run_meridian("preflight", *args)
    assert cli.code == 2, cli.out + cli.err
    assert says in cli.out + cli.err
    assert "Traceback" not in cli.err


def test_plan_files_missing_or_of_another_stack_exit_2(tmp_path):
    (tmp_path / "us.plan.json").write_text(json.dumps({"stack": "eu", "resources": []}))
    (tmp_path / "eu.plan.json").write_text("{not json")
    cli = run_meridian("preflight", "--account", ACCOUNT, "--plans", str(tmp_path))
    assert cli.code == 2, cli.out + cli.err
    text = " ".join((cli.out + cli.err).split())
    assert "us.plan.json: the plan of stack 'eu', not 'us'" in text
    assert "eu.plan.json: not a plan JSON" in text
    assert "apac.plan.json: missing" in text


def test_a_synthetic_zone_past_the_pod_identity_limit_fails_through_the_cli(project_copy, tmp_path_factory):
    """Stacks naming no account are assumed to share one, and say so; a cell whose tenants bring the
    platform's cluster to 5,001 associations fails the account (exit 1), from plan files."""
    import shutil

    shutil.copy(ROOT / "Pulumi.us-cell-001.yaml", project_copy / "Pulumi.us-cell-001.yaml")
    for stack in ("us", "eu", "apac"):
        path = project_copy / f"Pulumi.{stack}.yaml"
        path.write_text("".join(line for line in path.read_text().splitlines(True) if "meridian:aws_account_id" not in line))
    plans = tmp_path_factory.mktemp("plans")
    cluster = {"clusterName": "us-us-east-1-eks"}
    for plan in (
        StackPlan("us").add(ASSOCIATION, 2, inputs=cluster),
        StackPlan("us-cell-001").add(ASSOCIATION, 4_999, inputs=cluster),
        StackPlan("eu", ("eu-west-1",)).add(ROLE, 1, "eu-west-1"),
        StackPlan("apac", ("ap-southeast-1",)).add(ROLE, 1, "ap-southeast-1"),
    ):
        document = {"project": "meridian", "stack": plan.stack, "resources": plan.plan().resource_dicts}
        (plans / f"{plan.stack}.plan.json").write_text(json.dumps(document))
    report = plans / "account.json"
    cli = run_meridian(
        "preflight", "--zone", "us", "--plans", str(plans), "--project-dir", str(project_copy), "--json", str(report)
    )
    assert cli.code == 1, cli.out + cli.err
    text = " ".join(cli.out.split())
    assert "no stack names meridian:aws_account_id: apac, eu, us, us-cell-001 are assumed to share one account" in text
    (account,) = json.loads(report.read_text())["accounts"]
    assert account["account"] is None and not account["passed"]
    (finding,) = next(c for c in account["checks"] if c["check"] == "account-quotas")["findings"]
    assert (
        "Pod Identity associations in cluster us-us-east-1-eks: one assumed account needs 5,001 (us 2, us-cell-001 4,999)"
        in finding["problem"]
    )


def test_a_stack_failing_its_own_preflight_is_read_from_its_summary_line():
    """The account preflight fails a stack whose worker's own preflight failed (it gets the summary line only)."""
    from meridian.commands.preflight import own_preflight_failed
    from meridian.preflight.context import CheckResult, Finding
    from meridian.preflight.run import summary_line

    passing, failing = CheckResult("names", "x"), CheckResult("names", "x", findings=[Finding("u", "p", "f")])
    assert not own_preflight_failed(summary_line([passing, CheckResult("quotas", "y", warnings=["w"])]))
    assert own_preflight_failed(summary_line([passing, failing]))
