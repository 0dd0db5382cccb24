"""Day two and teardown (issue 24, findings 8-11): a first `up` that does not stop on cost-allocation
tags, rotation after the user exists, one owner of the database's retention, vault locks and
force-delete from config, and `meridian teardown`, read from the rendered plans."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from components.cost import COST_ALLOCATION_TAGS
from components.rotation import CredentialRotationArgs
from meridian.preflight.teardown import STEP_KEYS, analyze, check_teardown
from stackconfig import ConfigError, load_stack, parse_config
from tests.helpers import ROOT, STACKS, by_urn, full_project_copy, of_type, run_meridian, small_raw_config

TAG = "aws:costexplorer/costAllocationTag:CostAllocationTag"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
BACKUP_PLAN = "aws:backup/plan:Plan"
JOB = "kubernetes:batch/v1:Job"


PRODUCTION = {
    "production": True,
    "aws_account_id": "123456789012",
    "alerts": {"subscriptions": [{"protocol": "email", "endpoint": "oncall@example.com"}]},
}


def _refused(**values) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(small_raw_config(**values))
    return str(err.value)


def _edited_copy(tmp_path: Path, stack: str, **sections) -> Path:
    """A project copy whose `Pulumi.<stack>.yaml` sets the given `meridian:` sections."""
    project = full_project_copy(tmp_path)
    path = project / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    for key, value in sections.items():
        doc["config"][f"meridian:{key}"] = value
    path.write_text(yaml.safe_dump(doc))
    return project


# --- finding 8: cost-allocation tags ----------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_a_first_up_activates_no_cost_allocation_tag(previews, stack):
    """AWS refuses to activate a tag key billing has not seen: the shipped stacks (a first `up`) must not try."""
    assert of_type(previews[stack].plan, TAG) == []
    assert load_stack(ROOT, stack).cost.cost_allocation_tags_in_billing is False


@pytest.mark.slow
def test_the_tags_activate_once_the_config_says_billing_has_them(tmp_path):
    eu = yaml.safe_load((ROOT / "Pulumi.eu.yaml").read_text())["config"]["meridian:cost"]
    project = _edited_copy(tmp_path, "eu", cost={**eu, "cost_allocation_tags_in_billing": True})
    out = tmp_path / "eu.json"
    cli = run_meridian("preview", "--stack", "eu", "--project-dir", str(project), "--json", str(out))
    assert cli.code == 0, cli.err + cli.out
    plan = json.loads(out.read_text())
    activated = {r["inputs"]["tagKey"]: r["inputs"]["status"] for r in of_type(plan, TAG)}
    assert activated == dict.fromkeys(COST_ALLOCATION_TAGS, "Active")
    filtered = {
        v.split("$")[0].removeprefix("user:")
        for b in of_type(plan, "aws:budgets/budget:Budget")
        for f in b["inputs"].get("costFilters", [])
        for v in f["values"]
    }
    assert filtered and filtered <= set(activated), f"budgets filter on tags nobody activates: {filtered - set(activated)}"


def test_activation_needs_both_ownership_and_billing_and_a_wrong_value_names_file_and_key():
    cost = {"cost_center": "cc", "stack_cap_usd": 100}
    assert parse_config(small_raw_config()).cost.activates_tags is False
    assert parse_config(small_raw_config(cost={**cost, "cost_allocation_tags_in_billing": True})).cost.activates_tags is True
    owned_elsewhere = {**cost, "cost_allocation_tags_in_billing": True, "activate_cost_allocation_tags": False}
    assert parse_config(small_raw_config(cost=owned_elsewhere)).cost.activates_tags is False
    text = _refused(cost={**cost, "cost_allocation_tags_in_billing": "soon"})
    assert "Pulumi.eu.yaml: meridian:cost.cost_allocation_tags_in_billing: Input should be a valid boolean" in text


def test_the_guide_runs_its_first_up_with_the_defaults_and_turns_activation_on_after():
    guide = (ROOT / "docs" / "operations.md").read_text()
    first_up = guide.index("**Phase 2: everything.**")
    turn_on = guide.index("cost_allocation_tags_in_billing: true")
    assert first_up < turn_on, "the guide must switch activation on only after the first full `up`"
    assert "activate_cost_allocation_tags: false" not in guide[:turn_on], "the first `up` must need no config change"
    assert "aws ce list-cost-allocation-tags" in guide[first_up:], "say how to see that billing has the tags"


# --- finding 9: rotation after the migration ----------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_rotation_starts_after_the_migration_created_the_user_and_not_at_once(previews, stack):
    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    urns = by_urn(plan)
    (rotation,) = of_type(plan, ROTATION)
    assert rotation["inputs"].get("rotateImmediately") is False, "absent means true: the first rotation would run now"
    (migration,) = [j for j in of_type(plan, JOB) if j["name"].endswith("-migrate")]
    assert migration["region"] == cfg.regions.primary.region
    assert migration["urn"] in rotation["dependencies"], "rotation must be enabled after the Job that creates the user"
    # the secret's first version exists before rotation is configured, and rotation reads the same secret
    version = next(u for u in rotation["dependencies"] if urns[u]["type"] == "aws:secretsmanager/secretVersion:SecretVersion")
    assert urns[version]["inputs"]["secretId"] == rotation["inputs"]["secretId"]


def test_a_rotation_without_what_creates_its_user_is_refused():
    with pytest.raises(ValueError, match="rotation must not start before it exists"):
        CredentialRotationArgs(target=SimpleNamespace(), after=[])


# --- finding 10: one owner of the database's retention ------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_database_keeps_backups_exactly_as_long_as_the_continuous_backup_rule(previews, stack):
    """AWS Backup's continuous backup takes the database's automated backups over with its own
    retention: a different value in the database would be drift every `up` sets back."""
    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    (backup_plan,) = of_type(plan, BACKUP_PLAN)
    (rule,) = [r for r in backup_plan["inputs"]["rules"] if r.get("enableContinuousBackup")]
    continuous = rule["lifecycle"]["deleteAfter"]
    assert continuous == cfg.dr.backup_retention_days
    databases = [
        r
        for t in ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance")
        for r in of_type(plan, t)
        if not r["inputs"].get("replicateSourceDb") or r["region"] != cfg.regions.primary.region
    ]
    assert databases
    for db in databases:
        assert db["inputs"].get("backupRetentionPeriod") == continuous, f"{db['urn']}: retention from a second source"


def test_the_database_retention_key_moved_to_the_one_that_owns_it():
    assert "database.backup_retention_days" not in json.dumps(
        {k: v for k, v in parse_config(small_raw_config()).model_dump(mode="json")["database"].items()}
    )
    text = _refused(database={"backup_retention_days": 14})
    assert "Pulumi.eu.yaml: meridian:database.backup_retention_days: this key moved: set dr.backup_retention_days" in text


# --- finding 11: vault locks and force-delete from config ---------------------------------------------


def test_vault_lock_is_governance_outside_production_and_compliance_only_when_configured():
    assert parse_config(small_raw_config()).vault_lock_changeable_days is None
    assert parse_config(small_raw_config(**PRODUCTION)).vault_lock_changeable_days == 3
    compliance = parse_config(small_raw_config(dr={"vault_lock_mode": "compliance", "vault_lock_grace_days": 10}))
    assert compliance.vault_lock_changeable_days == 10
    assert parse_config(small_raw_config(**PRODUCTION, dr={"vault_lock_mode": "governance"})).vault_lock_changeable_days is None
    text = _refused(dr={"vault_lock_grace_days": 10})
    assert "Pulumi.eu.yaml: meridian:dr.vault_lock_grace_days: only compliance mode has a grace period" in text
    assert "Pulumi.eu.yaml: meridian:dr.vault_lock_mode: Input should be 'governance' or 'compliance'" in _refused(
        dr={"vault_lock_mode": "strict"}
    )
    assert "meridian:dr.vault_lock_grace_days: Input should be greater than or equal to 3" in _refused(
        dr={"vault_lock_mode": "compliance", "vault_lock_grace_days": 1}
    )
    assert "meridian:dr.vault_lock_changeable_days: this key moved" in _refused(dr={"vault_lock_changeable_days": 3})


def test_force_delete_is_on_outside_production_and_refused_in_it():
    assert parse_config(small_raw_config()).force_delete is True
    assert parse_config(small_raw_config(**PRODUCTION)).force_delete is False
    assert parse_config(small_raw_config(teardown={"force_delete": False})).force_delete is False
    text = _refused(**PRODUCTION, teardown={"force_delete": True})
    assert "Pulumi.eu.yaml: meridian:teardown.force_delete: a production stack must not delete" in text


@pytest.mark.parametrize("stack", STACKS)
def test_the_shipped_stacks_lock_in_governance_mode_and_force_delete_their_storage(previews, stack):
    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    assert not cfg.production
    locks = of_type(plan, LOCK)
    assert len(locks) == 2
    for lock in locks:
        assert "changeableForDays" not in lock["inputs"], f"{lock['urn']}: compliance mode in a non-production stack"
        assert lock["inputs"]["minRetentionDays"] == cfg.dr.backup_retention_days
    buckets, repos = of_type(plan, "aws:s3/bucket:Bucket"), of_type(plan, "aws:ecr/repository:Repository")
    assert buckets and repos
    assert all(b["inputs"].get("forceDestroy") is True for b in buckets), "a versioned bucket destroy would stop at"
    assert all(r["inputs"].get("forceDelete") is True for r in repos), "a repository destroy would stop at"


def _ctx(plan: dict, cfg) -> SimpleNamespace:
    return SimpleNamespace(plan=SimpleNamespace(resource_dicts=plan["resources"]), cfg=cfg)


def test_the_teardown_check_fails_the_old_lock_and_storage_and_passes_the_plan(previews):
    plan, cfg = previews["us"].plan, load_stack(ROOT, "us")
    ok = check_teardown(_ctx(plan, cfg))
    assert ok.passed and ok.checked == 2 + len(of_type(plan, "aws:s3/bucket:Bucket")) + 2
    assert all("governance mode" in note for note in ok.notes) and len(ok.notes) == 2
    # the old shape: compliance after 3 days by default, buckets and repositories not force-deletable
    old = json.loads(json.dumps(plan))
    for r in old["resources"]:
        if r["type"] == LOCK:
            r["inputs"]["changeableForDays"] = 3
        r["inputs"].pop("forceDestroy", None)
        r["inputs"].pop("forceDelete", None)
    bad = check_teardown(_ctx(old, cfg))
    problems = [f.problem for f in bad.findings]
    assert sum("compliance after 3 days, the config asks governance" in p for p in problems) == 2
    assert sum("forceDestroy is False" in p for p in problems) == len(of_type(plan, "aws:s3/bucket:Bucket"))
    assert sum("forceDelete is False" in p for p in problems) == 2
    assert all("after 3 days this vault can never be deleted" in note for note in bad.notes)


def test_a_vault_without_its_lock_is_a_finding(previews):
    plan = json.loads(json.dumps(previews["eu"].plan))
    plan["resources"] = [r for r in plan["resources"] if r["type"] != LOCK]
    found = check_teardown(_ctx(plan, load_stack(ROOT, "eu")))
    assert [f.problem for f in found.findings] == ["a backup vault without a vault lock"] * 2


# --- meridian teardown ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_teardown_lists_every_blocker_with_its_wait_and_the_steps_in_order(previews, stack):
    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    report = analyze(plan["resources"], cfg, stack)
    kinds = {b.kind for b in report.blockers}
    assert {"vault-lock", "backup-vault", "kms-key", "database", "protected", "secret"} <= kinds
    assert not {"bucket", "image-repository"} & kinds, "force delete is on outside production"
    keys = [r for r in plan["resources"] if r["type"] == "aws:kms/key:Key"]
    key_blockers = [b for b in report.blockers if b.kind == "kms-key"]
    assert len(key_blockers) == len(keys) and all(b.wait_days == 30 for b in key_blockers)
    assert {b.urn for b in report.protected} == {r["urn"] for r in plan["resources"] if r["protect"] and r["custom"]}
    assert {k["urn"] for k in keys} <= {b.urn for b in report.protected}, "every KMS key is protected"
    snapshots = [b for b in report.blockers if b.kind == "database" and "final snapshot" in b.blocks]
    assert snapshots, "a destroyed database leaves its final snapshot: say so"
    vaults = [b for b in report.blockers if b.kind == "backup-vault"]
    assert [b.wait_days for b in vaults] == [cfg.dr.backup_retention_days] * 2
    assert not report.permanent
    order = [step["key"] for step in report.to_json()["steps"]]
    assert order == sorted(order, key=STEP_KEYS.index)
    assert order.index("vault-locks") < order.index("recovery-points") < order.index("unprotect") < order.index("destroy")
    assert order.index("deletion-protection") < order.index("destroy") < order.index("keys")


@pytest.mark.slow
def test_teardown_dry_run_says_what_a_compliance_lock_and_kept_storage_cost(tmp_path):
    project = _edited_copy(
        tmp_path, "us", dr={"vault_lock_mode": "compliance", "vault_lock_grace_days": 5}, teardown={"force_delete": False}
    )
    out = tmp_path / "teardown.json"
    cli = run_meridian("teardown", "--stack", "us", "--project-dir", str(project), "--json", str(out))
    assert cli.code == 1, cli.err + cli.out  # a compliance lock can make the stack undeletable for good
    text = " ".join(cli.out.split())
    assert "after 5 days this vault can never be deleted" in text
    assert "vault lock compliance after 5 days (then permanent)" in text
    report = json.loads(out.read_text())
    assert report["can_be_torn_down"] is False and report["vault_lock"] == {"mode": "compliance", "grace_days": 5}
    kinds = {b["kind"] for b in report["blockers"]}
    assert {"bucket", "image-repository"} <= kinds
    assert all(b["permanent"] for b in report["blockers"] if b["kind"] == "vault-lock")
    preview = run_meridian("preview", "--stack", "us", "--project-dir", str(project), "--no-policy")
    assert preview.code == 0, preview.err
    assert (
        len(re.findall(r"vault lock: vault \S+: compliance mode: after 5 days this vault can never be deleted", preview.out)) == 2
    )


@pytest.mark.slow
def test_teardown_cli_formats_and_bad_input():
    cli = run_meridian("teardown", "--stack", "eu", "--format", "json")
    assert cli.code == 0, cli.err
    report = json.loads(cli.out)
    assert report["stack"] == "eu" and report["can_be_torn_down"] is True
    assert report["vault_lock"] == {"mode": "governance"}
    md = run_meridian("teardown", "--stack", "eu", "--format", "markdown")
    assert md.code == 0 and md.out.startswith("## Teardown of `eu`") and "**Destroy**" in md.out
    assert run_meridian("teardown", "--stack", "nope").code == 2


# Runs the real program in a fresh process and prints the alias specs the SecretRotation registers with.
ALIAS_SCRIPT = """
import json, sys
from pathlib import Path
from google.protobuf import json_format
from meridian.engine import recorder
from meridian.engine.run import run_program

seen, register = [], recorder.RecordingMonitor.RegisterResource
def spy(self, request):
    if request.type == "aws:secretsmanager/secretRotation:SecretRotation":
        seen.append([json_format.MessageToDict(a) for a in request.aliases])
    return register(self, request)
recorder.RecordingMonitor.RegisterResource = spy
run_program(Path(sys.argv[1]), sys.argv[2])
print(json.dumps(seen))
"""


@pytest.mark.slow
def test_the_moved_rotation_keeps_its_earlier_urn(previews):
    """A stack whose `up` created the schedule under the secret must not get a second one and then
    lose rotation when Pulumi deletes the first (CancelRotateSecret)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", ALIAS_SCRIPT, str(ROOT), "us"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ((alias,),) = json.loads(proc.stdout.strip().splitlines()[-1])
    (secret,) = of_type(previews["us"].plan, "aws:secretsmanager/secret:Secret")
    assert alias["spec"] == {"name": "us-db-app-credential-rotation", "parentUrn": secret["urn"]}
