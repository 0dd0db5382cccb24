"""Security review 20's misses outside the cost rule, replayed on the real plan through the analyzer.

The IAM evaluator:
an Allow under a negated operator on a key the request does not carry (I41: principalmapper read
`StringNotLike` on an absent key as false, AWS reads it as true), and a federated user's session named
in a key or bucket policy (I15, I16: principalmapper refused the principal and the whole analysis
failed). Then every condition operator against AWS's documented result with the key present, absent,
and under `...IfExists`, through the evaluator the rules use. Then a failover health check that probes
a fixed `ipAddress` beside its `fqdn` (F03) and a backup role whose trust admits AWS Backup only for another
account (K03)."""

from __future__ import annotations

import copy
import json
import sys

import pytest

from .helpers import ROOT
from .test_policy_review16 import ACCOUNT, DATA, acme_key_statement, one

pytestmark = pytest.mark.slow  # the plans come from the previews fixture

ACME_SILO_POLICY = "us-us-east-1-t-acme-silo-tls-only"
FEDERATED = f"arn:aws:sts::{ACCOUNT}:federated-user/partner"


def enforcer_statements(statements):
    """One more inline policy on the cost enforcer's role (a platform role that reads no tenant data)."""

    def mutate(resources):
        like = one(resources, "us-cost-enforcer-access", "rolePolicy")
        extra = copy.deepcopy(like)
        extra["name"] = "us-cost-enforcer-extra"
        extra["urn"] = like["urn"].rsplit("::", 1)[0] + "::us-cost-enforcer-extra"
        body = statements(resources) if callable(statements) else statements
        extra["inputs"] = {"role": like["inputs"]["role"], "policy": json.dumps({"Version": "2012-10-17", "Statement": body})}
        resources.append(extra)

    return mutate


def silo_statement(statement):
    def mutate(resources):
        holder = one(resources, ACME_SILO_POLICY, "bucketPolicy")
        doc = json.loads(holder["inputs"]["policy"])
        doc["Statement"].append(statement)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def get_everywhere(operator: str, value: str):
    return enforcer_statements(
        [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::*",
                "Condition": {operator: {"s3:prefix": value}},
            }
        ]
    )


def data_findings(judge, mutation):
    return [(v.policy, v.level) for v in judge(mutation) if v.policy == DATA]


@pytest.mark.parametrize("operator", ["StringNotLike", "StringNotLikeIfExists", "StringNotEquals"])
def test_an_allow_under_a_negated_operator_on_a_key_the_request_lacks_reaches_every_tenant(judge, operator):
    """I41: `s3:prefix` is not in a GetObject request; a negated operator on an absent key is true, so
    the grant reads every tenant's objects in the pool."""
    assert (DATA, "mandatory") in data_findings(judge, get_everywhere(operator, "tenants/*"))


@pytest.mark.parametrize("operator", ["StringLike", "StringEquals"])
def test_the_same_grant_under_a_positive_operator_on_the_absent_key_grants_nothing(judge, operator):
    """The twin: a positive operator on an absent key is false, so the statement never applies to GetObject."""
    assert data_findings(judge, get_everywhere(operator, "tenants/*")) == []


def test_a_federated_users_session_on_a_tenants_key_is_judged_not_a_pack_crash(judge):
    """I15: KMS and S3 accept `arn:aws:sts::<acct>:federated-user/<name>` as a principal; principalmapper
    refused it and AnalyzeStack failed without a finding. Now it is a principal like any other: named on
    acme's key, it reaches acme's data."""
    found = data_findings(
        judge,
        acme_key_statement(
            {"Sid": "Fed", "Effect": "Allow", "Principal": {"AWS": FEDERATED}, "Action": "kms:Decrypt", "Resource": "*"}
        ),
    )
    assert (DATA, "mandatory") in found


def test_a_federated_users_session_on_a_tenants_bucket_is_judged(judge):
    """I16: the same principal in acme's silo bucket policy."""
    found = data_findings(
        judge,
        silo_statement(
            {"Sid": "Fed", "Effect": "Allow", "Principal": {"AWS": FEDERATED}, "Action": "s3:GetObject", "Resource": "*"}
        ),
    )
    assert (DATA, "mandatory") in found


def test_a_federated_users_session_on_a_platform_bucket_only_is_not_a_tenant_finding(judge):
    """The legitimate twin: the same principal reading a bucket that holds no tenant's data."""

    def mutate(resources):
        holder = next(
            r for r in resources if r["type"].endswith("bucketPolicy:BucketPolicy") and r["name"] == "us-use1-lb-logs-policy"
        )
        doc = json.loads(holder["inputs"]["policy"])
        bucket = holder["inputs"]["bucket"]
        doc["Statement"].append(
            {
                "Sid": "Fed",
                "Effect": "Allow",
                "Principal": {"AWS": FEDERATED},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        )
        holder["inputs"]["policy"] = json.dumps(doc)

    assert data_findings(judge, mutate) == []


# --- each condition operator against AWS's documented semantics ----------------------------------------------
# IAM User Guide, reference_policies_elements_condition_operators: "If the key that you specify in a policy
# condition is not present in the request context, the values do not match and the condition is false. If the
# policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right key
# is not present, the condition is true. This logic applies to all condition operators except ...IfExists and
# Null check." And ...IfExists: "If the key is not present, evaluate the condition element as true."

ARN = f"arn:aws:iam::{ACCOUNT}:role/app"
OPERATORS = [  # operator, policy value, a context value that matches, one that does not
    ("StringEquals", "a", "a", "b"),
    ("StringNotEquals", "a", "b", "a"),
    ("StringEqualsIgnoreCase", "a", "A", "b"),
    ("StringNotEqualsIgnoreCase", "a", "b", "A"),
    ("StringLike", "a*", "abc", "b"),
    ("StringNotLike", "a*", "b", "abc"),
    ("NumericEquals", "5", "5", "6"),
    ("NumericNotEquals", "5", "6", "5"),
    ("NumericLessThan", "5", "4", "5"),
    ("NumericGreaterThanEquals", "5", "5", "4"),
    ("DateEquals", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
    ("DateNotEquals", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"),
    ("DateLessThan", "2026-01-01T00:00:00Z", "2025-12-31T00:00:00Z", "2026-01-02T00:00:00Z"),
    ("Bool", "true", "true", "false"),
    ("IpAddress", "10.0.0.0/8", "10.1.2.3", "192.0.2.1"),
    ("NotIpAddress", "10.0.0.0/8", "192.0.2.1", "10.1.2.3"),
    ("ArnEquals", ARN, ARN, ARN + "x"),
    ("ArnLike", ARN[:-3] + "*", ARN, f"arn:aws:iam::{ACCOUNT}:user/app"),
    ("ArnNotEquals", ARN, ARN + "x", ARN),
    ("ArnNotLike", ARN[:-3] + "*", f"arn:aws:iam::{ACCOUNT}:user/app", ARN),
]
NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals", "DateNotEquals", "NotIpAddress"}
NEGATED |= {"ArnNotEquals", "ArnNotLike"}


@pytest.fixture(scope="module")
def condition_match():
    sys.path.insert(0, str(ROOT / "policies"))
    try:
        from access import simulator  # principalmapper as the rules use it: patched, imported after its fix
    finally:
        sys.path.remove(str(ROOT / "policies"))
    return lambda condition, context: simulator._get_condition_match(condition, simulator.CaseInsensitiveDict(context))


@pytest.mark.parametrize("operator,value,hit,miss", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_each_operator_decides_as_aws_documents(condition_match, operator, value, hit, miss):
    key = "test:key"
    assert condition_match({operator: {key: value}}, {key: hit}) is True
    assert condition_match({operator: {key: value}}, {key: miss}) is False
    assert condition_match({operator: {key: value}}, {}) is (operator in NEGATED), "the key absent from the request"
    assert condition_match({operator + "IfExists": {key: value}}, {}) is True, "...IfExists, the key absent"
    assert condition_match({operator + "IfExists": {key: value}}, {key: hit}) is True, "...IfExists, the key present"
    assert condition_match({operator + "IfExists": {key: value}}, {key: miss}) is False, "...IfExists, the key present"
    assert condition_match({f"ForAllValues:{operator}": {key: value}}, {}) is True, "ForAllValues, the key absent"
    assert condition_match({f"ForAnyValue:{operator}": {key: value}}, {}) is False, "ForAnyValue, the key absent"


# --- F03, K03 ------------------------------------------------------------------------------------------------

FAILOVER, BACKUP = "route53-failover-record-ready", "backup-plan-coverage"


def set_prop(name: str, type_part: str, key: str, value):
    def mutate(resources):
        one(resources, name, type_part)["inputs"][key] = value

    return mutate


def test_a_failover_health_check_probing_a_fixed_address_is_refused(judge):
    """F03: with `ipAddress` set, Route 53 probes that address and sends `fqdn` only as the Host header; an
    always-up address keeps the PRIMARY healthy through a region outage."""
    found = judge(set_prop("us-failover-primary-check", "route53/healthCheck", "ipAddress", "192.0.2.10"))
    assert (FAILOVER, "mandatory") in [(v.policy, v.level) for v in found], [(v.policy, v.message) for v in found]
    assert any("192.0.2.10" in v.message for v in found if v.policy == FAILOVER)


def backup_trust(condition):
    def mutate(resources):
        role = one(resources, "us-dr-us-east-1-backup-role", "iam/role:Role")
        doc = json.loads(role["inputs"]["assumeRolePolicy"])
        doc["Statement"][0]["Condition"] = condition
        role["inputs"]["assumeRolePolicy"] = json.dumps(doc)

    return mutate


def test_a_backup_role_trusting_aws_backup_only_for_another_account_is_refused(judge):
    """K03: AWS Backup assumes the role for this account; a trust pinned to another account's
    `aws:SourceAccount` fails every backup job of the selection."""
    found = judge(backup_trust({"StringEquals": {"aws:SourceAccount": "999988887777"}}))
    assert (BACKUP, "mandatory") in [(v.policy, v.level) for v in found], [(v.policy, v.message) for v in found]


def test_a_backup_role_pinned_to_its_own_account_passes(judge):
    """The legitimate twin, the confused-deputy guard AWS recommends: `aws:SourceAccount` = this account."""
    found = judge(backup_trust({"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
    assert [(v.policy, v.level) for v in found if v.policy == BACKUP] == []


# --- L18, L19: two types a real team adds, reviewed; the destination of one still judged ---------------------


def vault_notifications(topic: str):
    def mutate(resources):
        vault = next(r for r in resources if r["type"] == "aws:backup/vault:Vault")
        resources.append(
            {
                **{k: vault[k] for k in ("custom", "parent", "provider")},
                "urn": vault["urn"].rsplit("::", 1)[0].rsplit("$", 1)[0]
                + "$aws:backup/vaultNotifications:VaultNotifications::vault-events",
                "type": "aws:backup/vaultNotifications:VaultNotifications",
                "name": "vault-events",
                "inputs": {
                    "backupVaultName": vault["inputs"].get("name", "vault"),
                    "snsTopicArn": topic,
                    "backupVaultEvents": ["BACKUP_JOB_FAILED", "RESTORE_JOB_FAILED"],
                },
                "dependencies": [],
                "propertyDependencies": {},
            }
        )

    return mutate


def test_backup_vault_notifications_to_a_topic_in_zone_pass(judge):
    """L18 (a false positive): a vault telling the on-call topic about failed jobs is refused no more."""
    found = judge(vault_notifications(f"arn:aws:sns:us-east-1:{ACCOUNT}:backup-events"))
    assert [(v.policy, v.level) for v in found] == [], [(v.policy, v.message) for v in found]


def test_backup_vault_notifications_to_a_topic_out_of_zone_are_refused(judge):
    """Reviewed is not unjudged: the topic's region is placed as every input ARN is."""
    found = judge(vault_notifications(f"arn:aws:sns:eu-west-1:{ACCOUNT}:backup-events"))
    assert ("aws-data-path-destination-in-zone", "mandatory") in [(v.policy, v.level) for v in found], [
        (v.policy, v.message) for v in found
    ]


def test_an_ecr_lifecycle_policy_passes(judge):
    """L19 (a false positive): expiring untagged images after 14 days on the service's repository."""

    def mutate(resources):
        repo = next(r for r in resources if r["type"] == "aws:ecr/repository:Repository")
        resources.append(
            {
                **{k: repo[k] for k in ("custom", "parent", "provider")},
                "urn": repo["urn"].rsplit("::", 1)[0].rsplit("$", 1)[0]
                + "$aws:ecr/lifecyclePolicy:LifecyclePolicy::expire-untagged",
                "type": "aws:ecr/lifecyclePolicy:LifecyclePolicy",
                "name": "expire-untagged",
                "inputs": {
                    "repository": repo["inputs"].get("name", "meridian/service"),
                    "policy": json.dumps(
                        {
                            "rules": [
                                {
                                    "rulePriority": 1,
                                    "selection": {
                                        "tagStatus": "untagged",
                                        "countType": "sinceImagePushed",
                                        "countUnit": "days",
                                        "countNumber": 14,
                                    },
                                    "action": {"type": "expire"},
                                }
                            ]
                        }
                    ),
                },
                "dependencies": [],
                "propertyDependencies": {},
            }
        )

    found = judge(mutate)
    assert [(v.policy, v.level) for v in found] == [], [(v.policy, v.message) for v in found]
