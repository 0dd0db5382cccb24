"""Security review 15's misses on bucket settings, lifecycle filters, the access-log bucket's
policy, production deletion guards, backup selection roles and Performance Insights keys, each
replayed on the us stack's real plan through the analyzer protocol: every attack draws the named
rule's mandatory violation (each fails on the code before this change), every legitimate twin and
the plan as rendered draw none, and a setting whose bucket cannot be resolved is an advisory
naming it, never a silent skip."""

from __future__ import annotations

import ast
import copy
import json
import re

import pytest

from meridian.engine import mocks

from .helpers import ROOT, both
from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

ACCOUNT = "123456789012"
FOREIGN = "999988887777"
POOL = "us-us-east-1-tenant-pool-data-bucket"
LOGS = "us-use1-lb-logs-bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def bucket_name(resources, bucket: str) -> str:
    """The physical name the plan gives a bucket: what its settings name in `bucket`."""
    return next(
        r["inputs"]["bucket"] for r in resources if r["propertyDependencies"].get("bucket") == [one(resources, bucket)["urn"]]
    )


def setting(type_: str, name: str, bucket: str, inputs, *, linked: bool = False):
    """A second setting of the bucket, declared elsewhere in the program (under the bucket's
    component, not the bucket), naming the bucket by its physical name; linked to it only if
    `linked` (what `bucket=bucket.id` does)."""

    def mutate(resources):
        target = one(resources, bucket)
        like = {**next(r for r in resources if r["type"] == type_), "parent": target["parent"], "provider": target["provider"]}
        body = inputs(resources) if callable(inputs) else copy.deepcopy(inputs)
        resources.append(
            {
                **copy.deepcopy(like),
                "name": name,
                "urn": like["urn"].rsplit("::", 1)[0] + f"::{name}",
                "inputs": {"bucket": bucket_name(resources, bucket), **body},
                "dependencies": [target["urn"]] if linked else [],
                "propertyDependencies": {"bucket": [target["urn"]]} if linked else {},
            }
        )

    return mutate


def _inputs(name: str, type_part: str, path: str, value):
    def mutate(resources):
        node = one(resources, name, type_part)["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


def expiring(prefix_filter: dict, days: int = 1):
    return {
        "rules": [
            {"id": "short", "status": "Enabled", "filter": prefix_filter, "noncurrentVersionExpiration": {"noncurrentDays": days}}
        ]
    }


def logs_statement(principal: dict, action: str):
    def mutate(resources):
        holder = one(resources, "us-use1-lb-logs-policy", POLICY)
        doc = json.loads(holder["inputs"]["policy"])
        arn = f"arn:aws:s3:::{holder['inputs']['bucket']}/*"
        doc["Statement"].append({"Sid": "Added", "Effect": "Allow", "Principal": principal, "Action": action, "Resource": arn})
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def role_arn(resources, role: str) -> str:
    """An auto-named role's ARN as the plan's other resources name it."""
    pattern = re.compile(rf"arn:aws:iam::{ACCOUNT}:role/{re.escape(role)}-[0-9a-f]{{7}}")
    return next(m.group(0) for r in resources for m in [pattern.search(json.dumps(r["inputs"]))] if m)


def selection_runs_as(role: str):
    def mutate(resources):
        selection = one(resources, "us-dr-us-east-1-data", "backup/selection")
        selection["inputs"]["iamRoleArn"] = role_arn(resources, role)
        selection["propertyDependencies"]["iamRoleArn"] = [one(resources, role, "iam/role")["urn"]]

    return mutate


PRODUCTION = {"production-data-not-force-deletable": {"production": True}}


def as_production_renders(resources):
    """What a production stack renders (teardown.force_delete is refused there): no bucket force-destroyable,
    no image repository force-deletable."""
    for r in resources:
        if r["type"] == "aws:s3/bucket:Bucket":
            r["inputs"]["forceDestroy"] = False
        elif r["type"] == "aws:ecr/repository:Repository":
            r["inputs"]["forceDelete"] = False


ATTACKS = [
    (
        "E41: a second, unlinked SSE configuration of the pool, by its physical name: AES256",
        setting(SSE, "pool-sse-2", POOL, {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}),
        "s3-bucket-encrypted",
    ),
    (
        "E40: a second, unlinked BucketVersioning of the pool: Suspended",
        setting(VERSIONING, "pool-versioning-2", POOL, {"versioningConfiguration": {"status": "Suspended"}}),
        "s3-bucket-versioning-enabled",
    ),
    (
        "E38: a second, unlinked public access block of the lb-logs bucket, all four off",
        setting(
            PAB,
            "logs-no-public-2",
            LOGS,
            {"blockPublicAcls": False, "blockPublicPolicy": False, "ignorePublicAcls": False, "restrictPublicBuckets": False},
        ),
        "s3-bucket-public-access-blocked",
    ),
    (
        "E07: an unlinked pool lifecycle expiring noncurrent versions after 1 day (empty prefix)",
        setting(LIFECYCLE, "pool-expiry", POOL, expiring({"prefix": ""})),
        "s3-lifecycle-keeps-retention",
    ),
    (
        "a pool lifecycle expiring one tenant's prefix after 1 day",
        setting(LIFECYCLE, "pool-expiry", POOL, expiring({"prefix": "tenants/t-acme/"}), linked=True),
        "s3-lifecycle-keeps-retention",
    ),
    (
        "a pool lifecycle whose prefix `t` covers the tenant root",
        setting(LIFECYCLE, "pool-expiry", POOL, expiring({"and": {"prefix": "t", "objectSizeGreaterThan": 0}}), linked=True),
        "s3-lifecycle-keeps-retention",
    ),
    (
        "a pool lifecycle filtered by a tag only (objects' tags are set at runtime: judged as covering)",
        setting(LIFECYCLE, "pool-expiry", POOL, expiring({"tag": {"key": "scratch", "value": "yes"}}), linked=True),
        "s3-lifecycle-keeps-retention",
    ),
    (
        "E27: the lb-logs lifecycle expiring the access logs after 1 day (a prefix outside the tenant root)",
        _inputs("us-use1-lb-logs-expiry", LIFECYCLE, "rules.0.expiration.days", 1),
        "s3-lifecycle-keeps-retention",
    ),
    (
        "acme's silo bucket expiring `data/` after 1 day (the whole bucket is acme's)",
        setting(LIFECYCLE, "silo-expiry", "us-us-east-1-t-acme-silo-bucket", expiring({"prefix": "data/"}), linked=True),
        "s3-lifecycle-keeps-retention",
    ),
    (
        "a second, unlinked pool policy without the TLS deny (whichever lands last is in force)",
        setting(
            POLICY,
            "pool-policy-2",
            POOL,
            lambda resources: {
                "policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:DeleteBucket",
                                "Resource": f"arn:aws:s3:::{bucket_name(resources, POOL)}",
                            }
                        ],
                    }
                )
            },
        ),
        "s3-bucket-tls-only",
    ),
    (
        "O06: the lb-logs bucket policy letting a foreign account read the logs",
        logs_statement({"AWS": f"arn:aws:iam::{FOREIGN}:root"}, "s3:GetObject"),
        "resource-policy-principals-in-account",
    ),
    (
        "the lb-logs bucket policy letting the region's ELB account read the logs",
        logs_statement({"AWS": f"arn:aws:iam::{mocks.ELB_ACCOUNTS['us-east-1']}:root"}, "s3:GetObject"),
        "resource-policy-principals-in-account",
    ),
    (
        "another region's ELB account writing the us-east-1 logs",
        logs_statement({"AWS": f"arn:aws:iam::{mocks.ELB_ACCOUNTS['eu-west-1']}:root"}, "s3:PutObject"),
        "resource-policy-principals-in-account",
    ),
    (
        "E05: the backup selection running as the lb-controller role (not trusted by AWS Backup)",
        selection_runs_as("us-us-east-1-lb-controller-role"),
        "backup-plan-coverage",
    ),
    (
        "E26: an Aurora cluster instance with Performance Insights and no PI key (the AWS-managed key)",
        lambda resources: one(resources, "us-db-us-east-1-1", "clusterInstance")["inputs"].pop("performanceInsightsKmsKeyId"),
        "rds-storage-encrypted",
    ),
    (
        "an Aurora cluster instance's PI key in another region",
        _inputs(
            "us-db-us-east-1-1",
            "clusterInstance",
            "performanceInsightsKmsKeyId",
            f"arn:aws:kms:us-west-2:{ACCOUNT}:key/afb9ef68-b767-4311-aafb-afb9ef68b767",
        ),
        "rds-storage-encrypted",
    ),
]

TWINS = [
    ("the plan as rendered", lambda resources: None),
    (
        "a second, unlinked SSE configuration of the pool under the pool's own key",
        lambda resources: setting(
            SSE,
            "pool-sse-2",
            POOL,
            {"rules": copy.deepcopy(one(resources, "us-us-east-1-tenant-pool-data-sse")["inputs"]["rules"])},
        )(resources),
    ),
    (
        "a second, unlinked BucketVersioning of the pool: Enabled",
        setting(VERSIONING, "pool-versioning-2", POOL, {"versioningConfiguration": {"status": "Enabled"}}),
    ),
    (
        "a second, unlinked public access block of the lb-logs bucket, all four on",
        setting(
            PAB,
            "logs-no-public-2",
            LOGS,
            {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True},
        ),
    ),
    (
        "L02b: a pool lifecycle expiring the `tmp/` scratch prefix after 1 day",
        setting(
            LIFECYCLE,
            "pool-scratch",
            POOL,
            {"rules": [{"id": "scratch", "status": "Enabled", "filter": {"prefix": "tmp/"}, "expiration": {"days": 1}}]},
            linked=True,
        ),
    ),
    (
        "an unlinked pool lifecycle expiring noncurrent versions after the retention",
        setting(LIFECYCLE, "pool-expiry", POOL, expiring({}, days=35)),
    ),
    (
        "the lb-logs bucket policy letting the region's ELB account put objects under another prefix",
        logs_statement({"AWS": f"arn:aws:iam::{mocks.ELB_ACCOUNTS['us-east-1']}:root"}, "s3:PutObject"),
    ),
    (
        "an Aurora cluster instance with Performance Insights off and no PI key",
        both(
            _inputs("us-db-us-east-1-1", "clusterInstance", "performanceInsightsEnabled", False),
            lambda resources: one(resources, "us-db-us-east-1-1", "clusterInstance")["inputs"].pop("performanceInsightsKmsKeyId"),
        ),
    ),
    (
        "outside production: a backup vault force-destroyable and the DB secret without a recovery window",
        both(
            _inputs("us-dr-us-east-1-vault", "backup/vault", "forceDestroy", True),
            _inputs("us-db-app-credential-secret", "secretsmanager/secret", "recoveryWindowInDays", 0),
        ),
    ),
]

PRODUCTION_ATTACKS = [
    (
        "E06: a backup vault with forceDestroy",
        both(as_production_renders, _inputs("us-dr-us-east-1-vault", "backup/vault", "forceDestroy", True)),
    ),
    (
        "E28: the DB secret with recoveryWindowInDays 0",
        both(as_production_renders, _inputs("us-db-app-credential-secret", "secretsmanager/secret", "recoveryWindowInDays", 0)),
    ),
    (
        "the tenant pool bucket force-destroyable",
        both(as_production_renders, _inputs(POOL, "s3/bucket:Bucket", "forceDestroy", True)),
    ),
]

PRODUCTION_TWINS = [
    ("the plan as a production stack renders it", as_production_renders),
    (
        "the DB secret with a 7-day recovery window and the vault's forceDestroy written out as false",
        both(
            as_production_renders,
            _inputs("us-db-app-credential-secret", "secretsmanager/secret", "recoveryWindowInDays", 7),
            _inputs("us-dr-us-east-1-vault", "backup/vault", "forceDestroy", False),
        ),
    ),
]


def _caught(found, rule: str, what: str) -> None:
    hits = [v for v in found if v.policy == rule]
    assert hits and all(v.level == "mandatory" and " must " in v.message for v in hits), (
        what,
        [(v.policy, v.level, v.message) for v in found],
    )


@pytest.mark.parametrize("what,mutation,rule", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_attack_on_the_real_plan_is_a_mandatory_violation(judge, what, mutation, rule):
    _caught(judge(mutation), rule, what)


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_twin_on_the_real_plan_passes(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


@pytest.mark.parametrize("what,mutation", PRODUCTION_ATTACKS, ids=[a[0] for a in PRODUCTION_ATTACKS])
def test_in_production_data_is_never_force_deletable(judge, what, mutation):
    _caught(judge(mutation, settings=PRODUCTION), "production-data-not-force-deletable", what)


@pytest.mark.parametrize("what,mutation", PRODUCTION_TWINS, ids=[t[0] for t in PRODUCTION_TWINS])
def test_each_production_twin_passes(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation, settings=PRODUCTION)] == [], what


def test_the_plan_as_rendered_outside_production_is_force_deletable_in_production(judge):
    """The shipped (non-production) plans force-destroy every bucket and image repository: the same plan called
    production is refused, resource by resource."""
    found = [v for v in judge(settings=PRODUCTION) if v.policy == "production-data-not-force-deletable"]
    assert all(v.level == "mandatory" for v in found), found
    assert sum("forceDestroy" in v.message for v in found) == 6 and sum("forceDelete" in v.message for v in found) == 2, found


def _advisories(found, rule: str) -> list[str]:
    assert [v for v in found if v.level == "mandatory"] == [], [(v.policy, v.message) for v in found]
    return [v.message for v in found if v.policy == rule and v.level == "advisory"]


def test_a_setting_naming_no_bucket_of_the_stack_is_an_advisory_naming_it(judge):
    def mutate(resources):
        versioning = _new_setting(resources, VERSIONING, "elsewhere-versioning", "someone-elses-bucket")
        versioning["inputs"]["versioningConfiguration"] = {"status": "Suspended"}
        resources.append(versioning)

    messages = _advisories(judge(mutate), "s3-bucket-versioning-enabled")
    assert messages and all("elsewhere-versioning" in m and "someone-elses-bucket" in m for m in messages), messages


def test_a_setting_linked_to_the_pool_but_naming_another_bucket_is_not_credited_to_it(judge):
    """`<pool>-archive` built from the pool's name keeps the link: AWS applies it to that other bucket."""

    def mutate(resources):
        versioning = _new_setting(resources, VERSIONING, "archive-versioning", bucket_name(resources, POOL) + "-archive")
        versioning["propertyDependencies"] = {"bucket": [one(resources, POOL)["urn"]]}
        versioning["inputs"]["versioningConfiguration"] = {"status": "Suspended"}
        resources.append(versioning)

    messages = _advisories(judge(mutate), "s3-bucket-versioning-enabled")
    assert messages and all("archive-versioning" in m and "no bucket of this stack" in m for m in messages), messages


def test_a_setting_whose_bucket_is_unknown_and_unlinked_is_an_advisory(judge):
    def mutate(resources):
        resources.append(_new_setting(resources, PAB, "who-knows-no-public", UNKNOWN))

    messages = _advisories(judge(mutate), "s3-bucket-public-access-blocked")
    assert messages and all("unverifiable at preview: bucket" in m and "BucketPublicAccessBlock" in m for m in messages), messages


def test_a_backup_selection_role_outside_the_plan_is_an_advisory_naming_it(judge):
    arn = f"arn:aws:iam::{ACCOUNT}:role/backup-role-typo"

    def mutate(resources):  # the link to the backup role kept: the ARN decides, not the link
        one(resources, "us-dr-us-east-1-data", "backup/selection")["inputs"]["iamRoleArn"] = arn

    messages = _advisories(judge(mutate), "backup-plan-coverage")
    assert messages and all(arn in m for m in messages), messages


def test_the_pack_knows_each_elb_log_account_the_engine_renders():
    """The pack imports nothing from the project: its table of ELB log-delivery accounts must agree with the engine's."""
    tree = ast.parse((ROOT / "policies" / "exposure.py").read_text())
    table = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "ELB_LOG_ACCOUNTS" for t in node.targets)
    )
    assert {r: table.get(r) for r in mocks.ELB_ACCOUNTS} == mocks.ELB_ACCOUNTS


def _new_setting(resources, type_: str, name: str, bucket) -> dict:
    like = next(r for r in resources if r["type"] == type_)
    return {
        **copy.deepcopy(like),
        "name": name,
        "urn": like["urn"].rsplit("::", 1)[0] + f"::{name}",
        "inputs": {**copy.deepcopy(like["inputs"]), "bucket": bucket},
        "dependencies": [],
        "propertyDependencies": {},
    }
