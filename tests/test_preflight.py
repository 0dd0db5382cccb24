"""`meridian preflight`: the real stacks pass, and each check fails on the defect it exists for.

The program runs once (in a subprocess: the SDK's runtime is global); each failing case mutates a
copy of the recorded plan the way a real defect would look, and runs the real check on it.
"""

from __future__ import annotations

import copy
import ipaddress
import json

import pytest
import yaml
from google.protobuf import json_format, struct_pb2

from meridian.engine.plan import Plan
from meridian.preflight.checks import CHECKS, Context, run_checks

from .helpers import recorded_plan, run_meridian

pytestmark = pytest.mark.slow  # the plan comes from an offline run of the program


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Plan, object]:
    return recorded_plan(tmp_path_factory.mktemp("preflight"))


def mutated(plan: Plan, token: str, change, *, where=lambda reg: True) -> Plan:
    """A copy of the plan with `change(inputs)` applied to the first registration of `token` matching `where`."""
    regs = copy.deepcopy(plan.registrations)
    for i, reg in enumerate(regs):
        if reg.type == token and where(reg):
            inputs = json_format.MessageToDict(reg.inputs)
            change(inputs)
            regs[i].inputs = json_format.ParseDict(inputs, struct_pb2.Struct())
            regs[i]._dict = None
            return Plan(plan.project, plan.stack, regs, plan.outputs)
    raise AssertionError(f"no {token} in the plan")


def failing(plan: Plan, cfg, check: str) -> list:
    result = CHECKS[check](Context.of(plan, cfg))
    assert not result.passed, f"{check} passed a broken plan"
    return result.findings


def test_the_real_stack_passes_every_check(recorded):
    plan, cfg = recorded
    results = run_checks(plan, cfg)
    assert [r.check for r in results] == list(CHECKS)
    assert all(r.passed for r in results), [(r.check, r.findings) for r in results if not r.passed]
    assert all(r.checked for r in results), "a check that looked at nothing proves nothing"


def test_names_fail_on_a_name_aws_would_refuse(recorded):
    plan, cfg = recorded
    broken = mutated(
        plan, "aws:s3/bucket:Bucket", lambda i: i.update(bucket="mer-0123456789-t-" + "a" * 50), where=lambda r: "silo" in r.name
    )
    (finding,) = failing(broken, cfg, "names")
    assert "over AWS's 63" in finding.problem
    upper = mutated(plan, "aws:s3/bucket:Bucket", lambda i: i.update(bucket="Mer_Bucket"), where=lambda r: "silo" in r.name)
    assert "pattern" in failing(upper, cfg, "names")[0].problem
    # auto-naming adds 8 characters to the logical name: a 57-character role name is one too many
    regs = copy.deepcopy(plan.registrations)
    role = next(r for r in regs if r.type == "aws:iam/role:Role")
    role.name = "r" * 57
    assert "auto-named" in failing(Plan(plan.project, plan.stack, regs, plan.outputs), cfg, "names")[0].problem


def test_quotas_fail_when_the_account_has_too_few(recorded):
    plan, cfg = recorded
    tight = cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update={"eips_per_region": 2, "iam_roles": 5})})
    problems = " ".join(f.problem for f in failing(plan, tight, "quotas"))
    assert "Elastic IP addresses in us-east-1: this stack needs 3, over 2" in problems
    # IAM roles are adjustable to 5,000: over the configured quota, a request to make (a warning)
    assert "IAM roles" not in problems
    warnings = CHECKS["quotas"](Context.of(plan, tight)).warnings
    assert any("IAM roles" in w and "request-service-quota-increase" in w for w in warnings)
    shared = cfg.model_copy(update={"quotas": cfg.quotas.model_copy(update={"stacks_per_account": 1000})})
    assert "/ 1000 stacks" in " ".join(f.problem for f in failing(plan, shared, "quotas"))


def test_k8s_reachability_fails_on_a_private_endpoint_nobody_can_reach(recorded):
    plan, cfg = recorded
    private = mutated(plan, "aws:eks/cluster:Cluster", lambda i: i["vpcConfig"].update(endpointPublicAccess=False))
    assert "private endpoint only" in failing(private, cfg, "k8s-reachability")[0].problem
    regs = copy.deepcopy(plan.registrations)
    for r in regs:
        if r.type == "pulumi:providers:kubernetes":
            r.dependencies = []
    assert (
        "before the deploy role's access"
        in failing(Plan(plan.project, plan.stack, regs, plan.outputs), cfg, "k8s-reachability")[0].problem
    )


def test_zone_delegation_fails_on_a_zone_nobody_delegated(recorded):
    plan, cfg = recorded
    regs = copy.deepcopy(plan.registrations)
    record = next(r for r in regs if r.type == "aws:route53/record:Record")
    zone = copy.deepcopy(record)
    zone.type, zone.urn = "aws:route53/zone:Zone", record.urn.replace("aws:route53/record:Record", "aws:route53/zone:Zone")
    findings = failing(Plan(plan.project, plan.stack, [*regs, zone], plan.outputs), cfg, "zone-delegation")
    assert "nothing delegates to it" in findings[0].problem and "zone_name_servers" in findings[0].fix
    elsewhere = mutated(plan, "aws:route53/record:Record", lambda i: i.update(zoneId="ZOTHER"))
    assert "not the configured zone" in failing(elsewhere, cfg, "zone-delegation")[0].problem


def test_certificates_fail_without_validation_or_with_a_doubly_managed_record(recorded):
    plan, cfg = recorded
    no_validation = Plan(
        plan.project,
        plan.stack,
        [r for r in plan.registrations if r.type != "aws:acm/certificateValidation:CertificateValidation"],
        plan.outputs,
    )
    assert "no CertificateValidation" in failing(no_validation, cfg, "certificates")[0].problem
    regs = copy.deepcopy(plan.registrations)
    record = next(r for r in regs if r.type == "aws:route53/record:Record" and "cert-validation" in r.name)
    twin = copy.deepcopy(record)
    twin.urn += "-twin"
    assert (
        "overwrite each other"
        in failing(Plan(plan.project, plan.stack, [*regs, twin], plan.outputs), cfg, "certificates")[0].problem
    )


def _service_secret(reg) -> bool:
    return reg.name.endswith("-settings") and "migrate" not in reg.name


def _settings(change):
    def apply(inputs):
        files = inputs["stringData"]["value"]  # the whole map arrives as one secret on the wire
        data = json.loads(files["service.json"])
        change(data)
        files["service.json"] = json.dumps(data)

    return apply


def test_service_settings_fail_on_what_the_service_cannot_use(recorded):
    plan, cfg = recorded
    loopback = mutated(plan, "kubernetes:core/v1:Secret", _settings(lambda d: d.update(host="127.0.0.1")), where=_service_secret)
    assert "binds 127.0.0.1" in failing(loopback, cfg, "service-settings")[0].problem
    wrong_db = mutated(
        plan,
        "kubernetes:core/v1:Secret",
        _settings(lambda d: d.update(write_dsn=d["write_dsn"].replace("/meridian?", "/postgres?"))),
        where=_service_secret,
    )
    assert "names database 'postgres'" in failing(wrong_db, cfg, "service-settings")[0].problem
    unloadable = mutated(plan, "kubernetes:core/v1:Secret", _settings(lambda d: d.pop("tenants")), where=_service_secret)
    assert "does not load" in failing(unloadable, cfg, "service-settings")[0].problem

    def no_mount(inputs):
        inputs["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = []

    assert "not mounted" in failing(mutated(plan, "kubernetes:apps/v1:Deployment", no_mount), cfg, "service-settings")[0].problem

    def bad_probe(inputs):
        inputs["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"] = "/health"

    assert (
        "not a route of the service"
        in failing(mutated(plan, "kubernetes:apps/v1:Deployment", bad_probe), cfg, "service-settings")[0].problem
    )


def test_service_settings_fail_when_the_service_has_no_password_source_or_reads_another_regions(recorded):
    plan, cfg = recorded

    def no_secret(d):
        d.pop("db_secret")

    findings = failing(
        mutated(plan, "kubernetes:core/v1:Secret", _settings(no_secret), where=_service_secret), cfg, "service-settings"
    )
    assert "carry no password and no db_secret" in findings[0].problem

    def other_region(d):
        arn = d["db_secret"]["arn"]
        d["db_secret"]["arn"] = arn.replace(f":{arn.split(':')[3]}:", ":us-west-2:" if ":us-east-1:" in arn else ":us-east-1:")

    findings = failing(
        mutated(plan, "kubernetes:core/v1:Secret", _settings(other_region), where=_service_secret), cfg, "service-settings"
    )
    assert "reads its database password from" in findings[0].problem and "own region's copy" in findings[0].problem


def test_service_settings_fail_when_the_service_logs_in_as_the_master_user(recorded):
    plan, cfg = recorded

    def as_master(d):
        d["write_dsn"] = d["write_dsn"].replace("postgresql://meridian_app@", "postgresql://meridian_admin@")

    findings = failing(
        mutated(plan, "kubernetes:core/v1:Secret", _settings(as_master), where=_service_secret), cfg, "service-settings"
    )
    assert "logs in as the master user 'meridian_admin'" in findings[0].problem

    def migration(change):
        def apply(inputs):
            files = inputs["stringData"]["value"]
            data = json.loads(files["migrate.json"])
            change(data)
            files["migrate.json"] = json.dumps(data)

        return apply

    # the migration creating the master as the app user, or a service user nobody creates
    findings = failing(
        mutated(
            plan,
            "kubernetes:core/v1:Secret",
            migration(lambda d: d.update(app_user="meridian_admin")),
            where=lambda r: "migrate" in r.name,
        ),
        cfg,
        "service-settings",
    )
    problems = " ".join(f.problem for f in findings)
    assert "app_user 'meridian_admin' is the master user" in problems
    assert "'meridian_app', a user the stack does not create" in problems


def test_account_fails_on_a_provider_not_pinned_to_the_stacks_account(recorded):
    plan, cfg = recorded
    assert cfg.aws_account_id == "123456789012"
    unpinned = mutated(plan, "pulumi:providers:aws", lambda i: i.pop("allowedAccountIds"))
    assert "allows accounts any" in failing(unpinned, cfg, "account")[0].problem
    other = mutated(plan, "pulumi:providers:aws", lambda i: i.update(allowedAccountIds='["999999999999"]'))
    assert "not only the stack's 123456789012" in failing(other, cfg, "account")[0].problem
    # no account configured (allowed outside production): passes, with a warning to set it
    loose = CHECKS["account"](Context.of(unpinned, cfg.model_copy(update={"aws_account_id": None})))
    assert loose.passed and any(n.startswith("warning: meridian:aws_account_id is not set") for n in loose.notes)


def test_images_fail_unless_pinned_in_the_regions_own_repository(recorded):
    plan, cfg = recorded

    def image(value):
        def apply(inputs):
            inputs["spec"]["template"]["spec"]["containers"][0]["image"] = value

        return apply

    assert (
        "not in an ECR repository"
        in failing(mutated(plan, "kubernetes:apps/v1:Deployment", image("nginx:latest")), cfg, "images")[0].problem
    )
    other_region = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/meridian/service:0.1.0"
    problems = [f.problem for f in failing(mutated(plan, "kubernetes:apps/v1:Deployment", image(other_region)), cfg, "images")]
    assert any("pulls from eu-west-1" in p for p in problems)
    latest = "123456789012.dkr.ecr.us-east-1.amazonaws.com/meridian/service:latest"
    assert any(
        "not pinned" in f.problem
        for f in failing(
            mutated(plan, "kubernetes:apps/v1:Deployment", image(latest), where=lambda r: "us-east-1" in r.name), cfg, "images"
        )
    )


def test_cli_exit_codes_and_longest_names_the_config_allows(project_copy, tmp_path):
    """The longest names the config allows (32-character tenant ids, silo tier, the zone's longest
    region) fit every AWS limit; a broken stack exits 1 naming the check and the fix."""
    doc = yaml.safe_load((project_copy / "Pulumi.apac.yaml").read_text())
    longest = "a" + "b" * 30 + "c"
    doc["config"]["meridian:regions"]["primary"]["region"] = "ap-southeast-1"
    doc["config"]["meridian:regions"]["dr"]["region"] = "ap-northeast-2"
    doc["config"]["meridian:tenants"] = [
        {
            "id": longest,
            "plan": "enterprise",
            "monthly_budget_usd": 100,
            "data_tier": "silo",
            "quota": {"gql_qps": 10, "ingest_eps": 10, "storage_gb": 10},
        },
        {"id": longest[:-1] + "d", "plan": "starter", "monthly_budget_usd": 100, "data_tier": "pool"},
    ]
    (project_copy / "Pulumi.apac.yaml").write_text(yaml.safe_dump(doc))
    ok = run_meridian("preflight", "--stack", "apac", "--project-dir", str(project_copy), "--json", str(tmp_path / "pf.json"))
    assert ok.code == 0, ok.out + ok.err
    report = json.loads((tmp_path / "pf.json").read_text())
    names = next(c for c in report["checks"] if c["check"] == "names")
    assert names["passed"] and names["checked"] > 50, names

    project = yaml.safe_load((project_copy / "Pulumi.yaml").read_text())
    project["config"]["meridian:workload"]["value"]["image_tag"] = "latest"
    (project_copy / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    bad = run_meridian("preflight", "--stack", "apac", "--project-dir", str(project_copy))
    assert bad.code == 1, bad.out + bad.err
    assert "images" in bad.out and "not pinned" in bad.out and "fix:" in bad.out
    assert run_meridian("preflight", "--stack", "nope", "--project-dir", str(project_copy)).code == 2


def test_preview_reports_the_preflight_verdict(previews):
    for stack, preview in previews.items():
        assert f"deploy preflight: passed ({len(CHECKS)} checks); " in preview.cli.out, stack
        assert "placeholder values to replace before a real `pulumi up`" in preview.cli.out, stack


def test_placeholders_are_named_with_their_keys_but_do_not_fail(recorded):
    plan, cfg = recorded
    result = CHECKS["placeholders"](Context.of(plan, cfg))
    assert result.passed and result.checked >= 6
    text = "\n".join(result.warnings)
    for key in (
        "meridian:aws_account_id = 123456789012",
        "meridian:cluster.public_access_cidrs[0] = 203.0.113.0/28",
        "meridian:failover.api_zone = us.meridian.example.com",
        "meridian:failover.hosted_zone_id = Z0EXAMPLEMERIDIANUS",
        "meridian:cluster.deploy_role_arn",
        "meridian:quotas.raised.L-1216C47A = 64",  # a quota declared for the example account (review aws-20)
    ):
        assert key in text, key
    assert "Pulumi.us.yaml: meridian:aws_account_id" in text and "Pulumi.yaml: meridian:cluster.deploy_role_arn" in text
    real = cfg.model_copy(
        update={
            "aws_account_id": "444455556666",
            "cluster": cfg.cluster.model_copy(
                update={
                    "deploy_role_arn": "arn:aws:iam::444455556666:role/deploy",
                    "operator_role_arns": ("arn:aws:iam::444455556666:role/oncall",),
                    "public_access_cidrs": (ipaddress.ip_network("52.94.0.0/28"),),
                    "viewer_role_arns": ("arn:aws:iam::444455556666:role/plan",),
                    "pr_viewer_role_arns": ("arn:aws:iam::444455556666:role/preview",),
                }
            ),
            "failover": cfg.failover.model_copy(update={"api_zone": "api.acme-saas.io", "hosted_zone_id": "Z123456ABCDEFG"}),
            "alerts": cfg.alerts.model_copy(update={"subscriptions": ()}),
        }
    )
    assert CHECKS["placeholders"](Context.of(plan, real)).warnings == []
