"""DisasterRecovery under the offline engine: backups that leave the primary region, replicas of
every tenant bucket in the dr region under the tenant's dr key, FIS templates with stop conditions,
all inside the residency zone; and the DR config rules."""

from __future__ import annotations

import fnmatch
import json

import pytest

from components.naming import NAMESPACE_PREFIX
from meridian.engine.mocks import OUTPUTS, _digest
from stackconfig import ZONE_REGIONS, ConfigError, RawConfig, load_stack, parse_config, read_stack_files

from .helpers import ROOT, STACKS, by_urn, of_type

VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
FIS = "aws:fis/experimentTemplate:ExperimentTemplate"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def owner_of(plan, arn):
    """The resource whose ARN (as the engine's mocks answer for it) is `arn`: the plan keeps inputs,
    so a reference is resolved back to the resource that produced it."""
    hits = [
        r
        for r in plan["resources"]
        if r["custom"]
        and r["type"] in OUTPUTS
        and OUTPUTS[r["type"]](r["name"], r["inputs"], r["region"], _digest(r["type"], r["name"], r["region"])).get("arn") == arn
    ]
    assert len(hits) == 1, f"{len(hits)} resources in the plan own {arn}"
    return hits[0]


@pytest.mark.parametrize("stack", STACKS)
def test_each_region_has_a_locked_vault_under_its_own_customer_key(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    index = by_urn(plan)
    for _, spec in cfg.regions.both:
        (vault,) = of_type(plan, VAULT, spec.region)
        keys = [index[d] for d in vault["dependencies"] if index[d]["type"] == KEY]
        assert keys and all(k["region"] == spec.region for k in keys), f"{vault['urn']}: key must be in {spec.region}"
        assert vault["inputs"]["kmsKeyArn"].startswith(f"arn:aws:kms:{spec.region}:")
        (lock,) = of_type(plan, LOCK, spec.region)
        assert vault["urn"] in lock["dependencies"]
        assert lock["inputs"]["minRetentionDays"] == cfg.dr.backup_retention_days
        assert lock["inputs"].get("changeableForDays") == cfg.vault_lock_changeable_days


@pytest.mark.parametrize("stack", STACKS)
def test_backup_plan_copies_to_the_dr_vault_and_selects_every_database_and_bucket(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    primary, dr = cfg.regions.primary.region, cfg.regions.dr.region
    (backup_plan,) = of_type(plan, PLAN)
    assert backup_plan["region"] == primary
    (rule,) = backup_plan["inputs"]["rules"]
    assert rule["enableContinuousBackup"] is True
    assert rule["lifecycle"]["deleteAfter"] == cfg.dr.backup_retention_days
    (copy,) = rule["copyActions"]
    target = owner_of(plan, copy["destinationVaultArn"])
    assert target["type"] == VAULT and target["region"] == dr, f"copies must land in the dr vault, got {target['urn']}"
    assert target["urn"] in backup_plan["dependencies"], "the residency rule links the copy through this dependency"

    (selection,) = of_type(plan, SELECTION)
    assert backup_plan["urn"] in selection["dependencies"]
    patterns = selection["inputs"]["resources"]
    db = "cluster" if cfg.database.engine == "aurora-postgresql" else "db"
    # the database by its own ARN (not its replicas: tests/test_daytwo_aws.py), every bucket by the tag
    assert [p.split(":")[:6] for p in patterns if p.startswith("arn:aws:rds:")] == [
        ["arn", "aws", "rds", primary, "123456789012", db]
    ]
    assert "arn:aws:s3:::*" in patterns
    (condition,) = selection["inputs"]["conditions"]
    assert condition["stringEquals"] == [{"key": "aws:ResourceTag/meridian:stack", "value": stack}]
    # the tag the condition selects on is on every database and bucket the plan must cover
    data = (
        of_type(plan, BUCKET, primary)
        + of_type(plan, "aws:rds/cluster:Cluster", primary)
        + of_type(plan, "aws:rds/instance:Instance", primary)
    )
    # (the stack tags are the provider's default tags: AWS merges them into each resource's tags)
    providers = {r["urn"]: json.loads(r["inputs"]["defaultTags"])["tags"] for r in of_type(plan, "pulumi:providers:aws")}
    assert data and all({**providers[r["provider"]], **(r["inputs"].get("tags") or {})}["meridian:stack"] == stack for r in data)


@pytest.mark.parametrize("stack", STACKS)
def test_every_tenant_bucket_replicates_to_its_dr_counterpart_under_a_dr_key(previews, stack):
    """A silo bucket replicates whole under its tenant's dr key; the pool's tenant root under one rule
    and the dr pool key (one rule, whatever the number of pool tenants)."""
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    primary, dr = cfg.regions.primary.region, cfg.regions.dr.region
    replications = {r["name"]: r for r in of_type(plan, REPLICATION)}
    expected = {f"{stack}-dr-t-{t.id}-replication" for t in cfg.tenants if t.data_tier == "silo"}
    if any(t.data_tier == "pool" for t in cfg.tenants):
        expected.add(f"{stack}-dr-pool-replication")
    assert set(replications) == expected
    for name, replication in replications.items():
        assert replication["region"] == primary
        source = owner_of(plan, f"arn:aws:s3:::{replication['inputs']['bucket']}")
        assert source["type"] == BUCKET and source["region"] == primary
        rules = replication["inputs"]["rules"]
        assert len(rules) == 1, f"{name}: one rule per bucket, got {len(rules)}"
        for rule in rules:
            dest = rule["destination"]
            replica = owner_of(plan, dest["bucket"])
            assert replica["type"] == BUCKET and replica["region"] == dr, f"{name}: replica must be a dr-region bucket"
            key = owner_of(plan, dest["encryptionConfiguration"]["replicaKmsKeyId"])
            assert key["type"] == KEY and key["region"] == dr
            if name.endswith("-pool-replication"):
                assert rule["filter"]["prefix"] == "tenants/"
                assert key["name"] == f"{stack}-{dr}-tenant-pool-key", (
                    f"{name}: pool replicas use the dr pool key, not {key['name']}"
                )
            else:
                tenant = name.removeprefix(f"{stack}-dr-t-").removesuffix("-replication")
                assert rule["filter"]["prefix"] == ""
                assert key["name"] == f"{stack}-{dr}-t-{tenant}-key", f"{name}: replicas of {tenant} use its own dr key"
            assert rule["deleteMarkerReplication"]["status"] == ("Enabled" if cfg.dr.replicate_delete_markers else "Disabled")
            assert ("replicationTime" in dest) == cfg.dr.replication_time_control
            assert rule["sourceSelectionCriteria"]["sseKmsEncryptedObjects"]["status"] == "Enabled"


@pytest.mark.parametrize("stack", ["eu"])
def test_replication_role_reaches_only_its_own_buckets_and_keys(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    primary, dr = cfg.regions.primary.region, cfg.regions.dr.region
    policies = {
        r["name"].removeprefix(f"{stack}-dr-").removesuffix("-replication-access"): json.loads(r["inputs"]["policy"])
        for r in of_type(plan, "aws:iam/rolePolicy:RolePolicy")
        if r["name"].endswith("-replication-access")
    }
    assert sorted(policies) == ["pool", "silos"], "one role for the pool, one for every silo bucket: not one per tenant"
    buckets = {
        OUTPUTS[b["type"]](b["name"], b["inputs"], b["region"], _digest(b["type"], b["name"], b["region"]))["arn"]: b
        for b in of_type(plan, "aws:s3/bucket:Bucket")
    }
    for pair, doc in policies.items():
        resources = [
            r for st in doc["Statement"] for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
        ]
        assert "*" not in resources
        s3 = {r.removesuffix("/*") for r in resources if r.startswith("arn:aws:s3:::")}
        assert len(s3) == 2, f"{pair}: one source and one replica (pattern), got {s3}"
        reached = {arn for arn in buckets for pattern in s3 if fnmatch.fnmatchcase(arn, pattern)}
        silo = {arn for arn, b in buckets.items() if "-silo-" in b["name"]}
        expected = silo if pair == "silos" else {a for a, b in buckets.items() if "tenant-pool" in b["name"]}
        assert reached == expected, f"{pair} reaches {sorted(reached ^ expected)} it should not (or misses them)"
        (decrypt,) = [st for st in doc["Statement"] if st["Sid"] == "DecryptSource"]
        (encrypt,) = [st for st in doc["Statement"] if st["Sid"] == "EncryptReplicas"]
        source = next(a for a in s3 if any(fnmatch.fnmatchcase(b, a) and buckets[b]["region"] == primary for b in buckets))
        # every key of the account in the region, narrowed by tag to this stack's tenant keys and
        # by encryption context to objects of the source bucket(s)
        assert decrypt["Resource"].startswith(f"arn:aws:kms:{primary}:") and decrypt["Resource"].endswith(":key/*")
        cond = decrypt["Condition"]
        assert cond["StringEquals"]["aws:ResourceTag/meridian:stack"] == stack
        assert cond["StringEquals"]["kms:ViaService"] == f"s3.{primary}.amazonaws.com"
        assert cond["StringLike"]["aws:ResourceTag/meridian:namespace"] == f"{NAMESPACE_PREFIX}*"
        assert cond["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [source, f"{source}/*"]
        assert encrypt["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{dr}.amazonaws.com"
        if pair == "silos":
            assert encrypt["Resource"] == decrypt["Resource"].replace(primary, dr), "replicas under the tenants' dr keys, by tag"
        else:
            (key,) = encrypt["Resource"]
            assert owner_of(plan, key)["name"] == f"{stack}-{dr}-tenant-pool-key"


@pytest.mark.parametrize("stack", STACKS)
def test_fis_templates_cover_the_three_scenarios_and_stop_on_the_failover_alarms(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    templates = of_type(plan, FIS)
    assert sorted(t["name"].rsplit("-fis-", 1)[1] for t in templates) == ["database-failover", "disrupt-network", "stop-nodes"]
    checks = {c["urn"]: c for c in of_type(plan, "aws:route53/healthCheck:HealthCheck")}
    for template in templates:
        assert template["region"] == cfg.regions.primary.region
        stops = template["inputs"]["stopConditions"]
        assert stops and all(s["source"] == "aws:cloudwatch:alarm" for s in stops)
        alarms = [owner_of(plan, s["value"]) for s in stops]
        watched = set()
        for alarm in alarms:
            assert alarm["type"] == ALARM and alarm["inputs"]["metricName"] == "HealthCheckStatus", alarm["urn"]
            (check,) = [checks[d] for d in alarm["dependencies"] if d in checks]
            watched.add(check["name"].rsplit("-", 2)[-2])  # <failover>-primary-check -> primary
        if template["name"].endswith("disrupt-network"):
            assert watched == {"secondary"}, "cutting the primary off must not stop on the primary's own failing checks"
        else:
            assert watched == {"primary", "secondary"}
        for action in template["inputs"]["actions"]:
            params = {p["key"]: p["value"] for p in action.get("parameters", [])}
            duration = params.get("duration") or params.get("startInstancesAfterDuration")
            if duration:
                assert duration == f"PT{cfg.dr.fis_duration_minutes}M"


@pytest.mark.parametrize("stack", STACKS)
def test_everything_dr_creates_stays_in_the_zone(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    allowed = set(ZONE_REGIONS[cfg.zone])
    index = by_urn(plan)

    def under_dr(r):
        while r is not None:
            if r["type"] == "meridian:dr:DisasterRecovery":
                return True
            r = index.get(r["parent"])
        return False

    mine = [r for r in plan["resources"] if r["custom"] and under_dr(r)]
    assert len(mine) >= 24, "vaults, locks, keys, plan, selection, roles, replication, alarms and templates"
    for r in mine:
        assert r["region"] in allowed, f"{r['urn']} in {r['region']}, outside zone {cfg.zone}"
    assert not [v for v in plan["policy"]["violations"] if v["level"] == "mandatory"]


def test_the_longest_replication_role_name_a_config_allows_fits_iam():
    from components.dr import AUTONAME_SUFFIX, IAM_ROLE_NAME_MAX, replication_role_name
    from stackconfig import TenantSpec

    longest_id = "t" + "x" * 30 + "z"
    TenantSpec(id=longest_id, plan="pro", monthly_budget_usd=1)  # the config's own limit on tenant ids
    longest_stack = max(STACKS, key=len)
    assert len(replication_role_name(f"{longest_stack}-dr", f"t-{longest_id}")) + AUTONAME_SUFFIX <= IAM_ROLE_NAME_MAX


# --- config ---------------------------------------------------------------------------------


def _with_dr(stack: str, **dr) -> RawConfig:
    raw, _ = read_stack_files(ROOT, stack)
    return RawConfig({**raw.values, "dr": {**raw.values.get("dr", {}), **dr}}, raw.sources, raw.default_source)


def test_rpo_below_the_s3_replication_bound_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_config(_with_dr("us", rpo_minutes=5))
    assert any(p.key == "meridian:dr.rpo_minutes" and "15 min" in p.message for p in err.value.problems)
    parse_config(_with_dr("us", rpo_minutes=5, replication_time_control=False))  # no bound claimed: accepted


def test_rto_shorter_than_failover_detection_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_config(_with_dr("us", rto_minutes=0.5))  # 30 s < 10 x 2 + 10 + 10 + 10 + 60 (keep-alive) = 110 s
    (problem,) = [p for p in err.value.problems if p.key == "meridian:dr.rto_minutes"]
    assert "110 s" in problem.message


def test_production_requires_replication_time_control():
    raw = _with_dr("us", replication_time_control=False)
    with pytest.raises(ConfigError) as err:
        parse_config(RawConfig({**raw.values, "production": True}, raw.sources, raw.default_source))
    assert [p.key for p in err.value.problems] == ["meridian:dr.replication_time_control"]


def test_retention_outside_continuous_backup_limits_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_config(_with_dr("us", backup_retention_days=90, backup_schedule="every hour"))
    keys = sorted(p.key for p in err.value.problems)
    assert keys == ["meridian:dr.backup_retention_days", "meridian:dr.backup_schedule"]
