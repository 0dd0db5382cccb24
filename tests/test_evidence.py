"""Evidence bundles: the residency attestation judges every resource and copy destination, and
`evidence verify` catches a changed, a missing and an extra file."""

from __future__ import annotations

import json
import os

import pytest

from meridian.evidence.manifest import MANIFEST, verify, write_manifest
from meridian.evidence.residency import attest

from .helpers import run_meridian

EU = ["eu-west-1", "eu-central-1"]
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
FAILOVER = "meridian:failover:Failover"
ALARMS_IN_US_EAST_1 = [{"region": "us-east-1", "component": FAILOVER, "types": [ALARM, "aws:kms/key:Key"], "why": "metrics"}]


def in_failover(name, type_):
    return f"urn:pulumi:eu::meridian::{FAILOVER}${type_}::{name}"


def res(urn, type_, region, inputs=None, deps=(), name=None):
    return {
        "urn": urn,
        "type": type_,
        "name": name or urn,
        "custom": True,
        "region": region,
        "inputs": inputs or {},
        "dependencies": list(deps),
    }


def plan_of(*resources, violations=()):
    return {"stack": "eu", "resources": list(resources), "policy": {"evaluated": True, "violations": list(violations)}}


def replication_to(bucket_region):
    dest = res("dst", "aws:s3/bucket:Bucket", bucket_region, name="dr-bucket")
    src = res("src", "aws:s3/bucket:Bucket", "eu-west-1", name="src-bucket")
    repl = res(
        "repl",
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "eu-west-1",
        deps=["src", "dst"],
        inputs={
            "bucket": "src-bucket-0a1b2c3",
            "rules": [
                {
                    "status": "Enabled",
                    "destination": {
                        "bucket": "arn:aws:s3:::dr-bucket-abcdef0",
                        "encryptionConfiguration": {"replicaKmsKeyId": f"arn:aws:kms:{bucket_region}:1:key/k"},
                    },
                }
            ],
        },
    )
    return [src, dest, repl]


def test_in_zone_replication_and_backup_copy_attest_compliant():
    vault = "arn:aws:backup:eu-central-1:1:backup-vault:v-1234567"
    backup = res(
        "plan", "aws:backup/plan:Plan", "eu-west-1", inputs={"rules": [{"copyActions": [{"destinationVaultArn": vault}]}]}
    )
    doc = attest(plan_of(*replication_to("eu-central-1"), backup), EU, {}, "eu")
    assert doc["verdict"] == "compliant"
    kinds = sorted(d["kind"] for d in doc["destinations"]["items"])
    assert kinds == ["backup-copy", "s3-replica-key", "s3-replication"]
    (s3,) = [d for d in doc["destinations"]["items"] if d["kind"] == "s3-replication"]
    assert s3["region"] == "eu-central-1" and "dr-bucket" in s3["resolved_by"]


def test_replica_outside_the_zone_fails_even_when_the_rules_found_nothing():
    doc = attest(plan_of(*replication_to("us-east-1")), EU, {}, "eu")
    assert doc["verdict"] == "not compliant"
    bad = {d["kind"] for d in doc["destinations"]["outside_or_unresolved"]}
    assert bad == {"s3-replication", "s3-replica-key"}
    assert doc["resources"]["outside"] == ["dst"]


def test_a_destination_that_cannot_be_resolved_is_not_compliant():
    src, dest, repl = replication_to("eu-central-1")
    repl["dependencies"] = ["src"]  # the replica bucket is not something this stack manages
    doc = attest(plan_of(src, dest, repl), EU, {}, "eu")
    assert doc["verdict"] == "not compliant"
    (d,) = [d for d in doc["destinations"]["outside_or_unresolved"] if d["kind"] == "s3-replication"]
    assert d["region"] is None and d["resolved_by"].startswith("unresolved")


def test_backup_copy_to_a_vault_outside_the_zone_fails():
    backup = res(
        "plan",
        "aws:backup/plan:Plan",
        "eu-west-1",
        inputs={"rules": [{"copyActions": [{"destinationVaultArn": "arn:aws:backup:us-east-1:1:backup-vault:x"}]}]},
    )
    doc = attest(plan_of(backup), EU, ALARMS_IN_US_EAST_1, "eu")
    assert doc["verdict"] == "not compliant"
    assert doc["destinations"]["outside_or_unresolved"][0]["region"] == "us-east-1"


def test_region_exception_is_narrow_and_rule_violations_fail_the_attestation():
    alarm = res(in_failover("alarm", ALARM), ALARM, "us-east-1")
    failover_key = res(in_failover("key", "aws:kms/key:Key"), "aws:kms/key:Key", "us-east-1")
    stray_key = res("urn:pulumi:eu::meridian::aws:kms/key:Key::stray", "aws:kms/key:Key", "us-east-1")
    stray_alarm = res("urn:pulumi:eu::meridian::meridian:dr:DisasterRecovery$" + ALARM + "::stray", ALARM, "us-east-1")
    doc = attest(plan_of(alarm, failover_key, stray_key, stray_alarm), EU, ALARMS_IN_US_EAST_1, "eu")
    assert sorted(doc["resources"]["outside"]) == sorted([stray_key["urn"], stray_alarm["urn"]]), (
        "only the listed types inside the listed component may sit in the exception region"
    )
    violation = {"policy": "aws-replication-destination-allowed", "level": "mandatory", "urn": "x", "message": "m"}
    doc = attest(plan_of(alarm, violations=[violation]), EU, ALARMS_IN_US_EAST_1, "eu")
    assert doc["verdict"] == "not compliant" and doc["rules"]["aws-replication-destination-allowed"]["verdict"] == "fail"


# --- manifest ---------------------------------------------------------------------------------


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / "plan.json").write_text("{}\n")
    (tmp_path / "drill").mkdir()
    (tmp_path / "drill" / "timeline.json").write_text('{"rto_s": 1.2}\n')
    write_manifest(tmp_path)
    return tmp_path


def test_untouched_bundle_verifies(bundle):
    result = verify(bundle)
    assert result.ok and result.checked == 2


def test_changed_missing_and_extra_files_are_each_reported(bundle):
    (bundle / "drill" / "timeline.json").write_text('{"rto_s": 0.2}\n')
    (bundle / "plan.json").unlink()
    (bundle / "notes.txt").write_text("added later\n")
    result = verify(bundle)
    assert result.changed == ["drill/timeline.json"]
    assert result.missing == ["plan.json"]
    assert result.extra == ["notes.txt"]
    assert not result.ok


def test_an_added_empty_directory_is_an_extra_entry(bundle):
    (bundle / "drill" / "later").mkdir()
    result = verify(bundle)
    assert result.extra == ["drill/later/"] and not result.ok
    (bundle / "drill" / "later").rmdir()
    assert verify(bundle).ok  # the bundle's own folders (drill/) hold listed files: not extra


def test_manifest_lines_escaping_the_bundle_are_malformed(bundle):
    with (bundle / MANIFEST).open("a") as fh:
        fh.write(f"{'0' * 64}  ../outside.txt\nnot a line\n")
    result = verify(bundle)
    assert len(result.malformed) == 2 and not result.ok


def test_a_symlink_swapped_in_for_a_file_is_caught(bundle, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "plan.json"
    elsewhere.write_text((bundle / "plan.json").read_text())
    (bundle / "plan.json").unlink()
    (bundle / "plan.json").symlink_to(elsewhere)
    assert verify(bundle).changed == ["plan.json (not a regular file)"]


# --- the CLI, producer to consumer ------------------------------------------------------------


def test_latest_slo_report_is_the_newest_gate_report_of_the_stack(tmp_path):
    import os

    from meridian.reports import latest_slo_report

    assert latest_slo_report(tmp_path, "eu") is None
    runs = (
        "slo-eu-20261201T000000Z/report.json",
        "up-eu-20261202T000000Z/slo/report.json",  # the SLO gate of `meridian up`
        "slo-eu-west-20261203T000000Z/report.json",  # another stack whose name starts with eu
        "slo-us-20261203T000000Z/report.json",
        "chaos-region-loss-eu-20261203T000000Z/report.json",  # a chaos report is not the SLO gate's
    )
    for i, rel in enumerate(runs):
        report = tmp_path / ".meridian" / "reports" / rel
        report.parent.mkdir(parents=True)
        report.write_text("{}")
        os.utime(report, (1_000_000 + i, 1_000_000 + i))
    assert latest_slo_report(tmp_path, "eu") == tmp_path / ".meridian" / "reports" / runs[1]
    os.utime(tmp_path / ".meridian" / "reports" / runs[0], (2_000_000, 2_000_000))
    assert latest_slo_report(tmp_path, "eu") == tmp_path / ".meridian" / "reports" / runs[0]


def test_evidence_cli_builds_a_bundle_that_verify_accepts_and_then_rejects_when_tampered(tmp_path, previews):
    """A zone's bundle: the platform us and its cell us-cell-001, each with its plan, policy, cost and
    residency, listed in bundle.json with its config file's digest and tenant count."""
    import hashlib

    from stackconfig import load_stack
    from tests.helpers import ROOT

    out = tmp_path / "bundle"
    slo = tmp_path / "slo-us-20261202T000000Z"
    slo.mkdir()
    (slo / "report.json").write_text('{"verdict": "pass"}\n')
    (slo / "report.md").write_text("# SLO report\n")
    built = run_meridian("evidence", "--stack", "us", "--out", str(out), "--slo-report", str(slo / "report.json"))
    assert built.code == 0, built.err + built.out
    index = json.loads((out / "bundle.json").read_text())
    assert index["residency_verdict"] == "compliant" and index["zone"] == "us"
    # every stack of the zone, with the digest of the config it rendered from and its tenant count
    cells = list(load_stack(ROOT, "us").cells.names)
    assert cells == ["us-cell-001"]
    assert [(s["stack"], s["role"], s["tenants"]) for s in index["stacks"]] == [("us", "platform", 4), ("us-cell-001", "cell", 3)]
    assert index["tenants"] == 7
    for s in index["stacks"]:
        assert s["config_sha256"] == hashlib.sha256((ROOT / f"Pulumi.{s['stack']}.yaml").read_bytes()).hexdigest()
        assert s["plan_sha256"] == hashlib.sha256((out / s["plan"]).read_bytes()).hexdigest()
        assert s["residency_verdict"] == "compliant" and s["mandatory"] == 0 and s["policy_evaluated"]
    # one pipeline: the bundle's plan is the document `meridian preview --json` writes
    assert json.loads((out / "plan.json").read_text()) == previews["us"].plan
    cell_plan = json.loads((out / "cells" / "us-cell-001" / "plan.json").read_text())
    assert cell_plan["stack"] == "us-cell-001" and cell_plan["policy"]["evaluated"]
    # judged beside the platform's resources, as `meridian preview --stack us-cell-001` judges it: nothing left to it
    assert cell_plan["policy"]["violations"] == [], cell_plan["policy"]["violations"]
    assert {r["name"] for r in cell_plan["resources"]} >= {
        "us-cell-001-us-east-1-tenant-file",
        "us-cell-001-us-west-2-tenant-file",
    }
    residency = json.loads((out / "residency.json").read_text())
    assert {d["kind"] for d in residency["destinations"]["items"]} >= {"s3-replication", "backup-copy", "database-member"}
    cell_residency = json.loads((out / "cells" / "us-cell-001" / "residency.json").read_text())
    assert {d["kind"] for d in cell_residency["destinations"]["items"]} >= {"s3-replication"}  # stark's silo replication
    listed = sorted(line.split("  ", 1)[1] for line in (out / MANIFEST).read_text().splitlines())
    per_stack = ["cost.json", "plan.json", "policy.json", "residency.json", "residency.md"]
    assert listed == sorted(
        ["bundle.json", "slo/report.json", "slo/report.md", *per_stack, *(f"cells/us-cell-001/{f}" for f in per_stack)]
    )

    ok = run_meridian("evidence", "verify", str(out), "--allow-unsigned")
    assert ok.code == 0 and "bundle intact (unsigned)" in ok.out, ok.err + ok.out

    (out / "residency.json").write_text(
        (out / "residency.json").read_text().replace("not compliant", "x").replace('"compliant"', '"fine"')
    )
    (out / "extra.md").write_text("x")
    tampered = run_meridian("evidence", "verify", str(out), "--allow-unsigned")
    assert tampered.code == 1
    assert "changed: residency.json" in tampered.out and "extra (not in the manifest): extra.md" in tampered.out

    again = run_meridian("evidence", "--stack", "us", "--out", str(out))
    assert again.code == 2 and "not empty" in again.err
    cell = run_meridian("evidence", "--stack", "us-cell-001", "--out", str(tmp_path / "cell"))
    assert cell.code == 2 and "a cell has no front door of its own" in cell.err and "use --stack us" in cell.err


@pytest.mark.slow
def test_verify_refuses_a_directory_that_is_not_a_bundle(tmp_path):
    cli = run_meridian("evidence", "verify", str(tmp_path))
    assert cli.code == 2 and "not an evidence bundle" in cli.err
    missing = run_meridian("evidence")
    assert missing.code == 2 and "--out" in missing.err


# --- signatures: checked against the key the verifier trusts, never the one the file carries ----


def _signed_bundle(tmp_path, kind: str):
    from meridian.evidence.signature import sign

    bundle = tmp_path / f"bundle-{kind}"
    bundle.mkdir(parents=True)
    (bundle / "plan.json").write_text('{"stack": "eu"}')
    write_manifest(bundle)
    key = tmp_path / f"{kind}.key"
    public = None
    if kind == "hmac":
        key.write_bytes(os.urandom(16).hex().encode())  # each call a different secret
    else:
        ser = pytest.importorskip("cryptography.hazmat.primitives.serialization")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.generate()
        key.write_bytes(private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
        public = tmp_path / "ed25519.pub"
        public.write_bytes(private.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
    sign(bundle, key)
    return bundle, key, public


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
def test_verify_with_a_key_accepts_its_signature_and_rejects_a_forgery(tmp_path, kind):
    bundle, key, public = _signed_bundle(tmp_path, kind)
    for trusted in filter(None, (key, public)):
        ok = run_meridian("evidence", "verify", str(bundle), "--key", str(trusted))
        assert ok.code == 0 and "signature valid" in ok.out, ok.out + ok.err
    unchecked = run_meridian("evidence", "verify", str(bundle))
    assert unchecked.code == 1 and "signature not checked" in unchecked.out and "--key" in unchecked.out
    assert "bundle intact" not in unchecked.out
    # someone changes a file, rewrites the manifest and re-signs with a key of their own: the
    # manifest matches, the signature verifies only under the forger's key
    (bundle / "plan.json").write_text('{"stack": "forged"}')
    write_manifest(bundle)
    forger = _signed_bundle(tmp_path / "forger", kind)[1]
    from meridian.evidence.signature import sign

    sign(bundle, forger)
    forged = run_meridian("evidence", "verify", str(bundle), "--key", str(public or key))
    assert forged.code == 1 and "signature INVALID" in forged.out and "files match" in forged.out, forged.out
    assert "bundle intact" not in forged.out


@pytest.mark.slow
def test_verify_with_a_key_rejects_an_unsigned_bundle_a_stale_signature_and_a_wrong_kind_of_key(tmp_path):
    bundle, key, _ = _signed_bundle(tmp_path, "hmac")
    (bundle / "MANIFEST.sha256").write_text((bundle / "MANIFEST.sha256").read_text() + "\n")  # manifest changed after signing
    stale = run_meridian("evidence", "verify", str(bundle), "--key", str(key))
    assert stale.code == 1 and "does not match the manifest" in stale.out
    (bundle / "MANIFEST.sha256.sig").unlink()
    unsigned = run_meridian("evidence", "verify", str(bundle), "--key", str(key))
    assert unsigned.code == 1 and "not signed" in unsigned.out
    ed_bundle, _, public = _signed_bundle(tmp_path, "ed25519")
    wrong = run_meridian("evidence", "verify", str(ed_bundle), "--key", str(key))
    assert wrong.code == 1 and "HMAC secret" in wrong.out
    (ed_bundle / "MANIFEST.sha256.sig").write_text("{not json")
    broken = run_meridian("evidence", "verify", str(ed_bundle), "--key", str(public))
    assert broken.code == 2 and "not JSON" in broken.err
    missing = run_meridian("evidence", "verify", str(ed_bundle), "--key", str(tmp_path / "nope"))
    assert missing.code == 2 and "no such file" in missing.err


# --- without --key: unsigned is a failure unless accepted, an unchecked signature is never "intact" ------------


def _edit_timeline_and_rehash(bundle):
    """What someone hiding a loss does: change the drill's figures and rewrite the manifest to match."""
    (bundle / "drill" / "timeline.json").write_text('{"rto_s": 0.2}\n')
    write_manifest(bundle)


def test_an_edited_timeline_with_a_rehashed_manifest_does_not_verify_unsigned(bundle):
    _edit_timeline_and_rehash(bundle)
    cli = run_meridian("evidence", "verify", str(bundle))
    assert cli.code == 1, cli.out + cli.err
    assert "unsigned" in cli.out and "--allow-unsigned" in cli.out and "bundle intact" not in cli.out


def test_allow_unsigned_accepts_an_intact_unsigned_bundle_and_still_rejects_a_changed_file(bundle):
    accepted = run_meridian("evidence", "verify", str(bundle), "--allow-unsigned")
    assert accepted.code == 0 and "bundle intact (unsigned)" in accepted.out, accepted.out + accepted.err
    (bundle / "plan.json").write_text('{"edited": true}\n')
    changed = run_meridian("evidence", "verify", str(bundle), "--allow-unsigned")
    assert changed.code == 1 and "changed: plan.json" in changed.out
    both = run_meridian("evidence", "verify", str(bundle), "--allow-unsigned", "--key", str(bundle / "plan.json"))
    assert both.code == 2 and "contradicts --key" in both.err


@pytest.mark.parametrize("kind", ["hmac", "ed25519"])
def test_a_signed_bundle_edited_and_rehashed_fails_with_or_without_the_key(tmp_path, kind):
    bundle, key, public = _signed_bundle(tmp_path, kind)
    (bundle / "drill").mkdir()
    (bundle / "drill" / "timeline.json").write_text('{"rto_s": 1.2}\n')
    write_manifest(bundle)
    from meridian.evidence.signature import sign

    sign(bundle, key)
    _edit_timeline_and_rehash(bundle)
    unchecked = run_meridian("evidence", "verify", str(bundle))
    assert unchecked.code == 1 and "signature not checked" in unchecked.out and "bundle intact" not in unchecked.out
    checked = run_meridian("evidence", "verify", str(bundle), "--key", str(public or key))
    assert checked.code == 1 and "signature INVALID" in checked.out


def test_a_forged_signature_without_a_key_is_not_intact(bundle):
    (bundle / "MANIFEST.sha256.sig").write_text(
        json.dumps({"algorithm": "ed25519", "key_id": "0123456789abcdef", "signature": "Zm9yZ2Vk", "signs": MANIFEST})
    )
    cli = run_meridian("evidence", "verify", str(bundle))
    assert cli.code == 1 and "signature not checked" in cli.out and "bundle intact" not in cli.out, cli.out
    accepted_unsigned = run_meridian("evidence", "verify", str(bundle), "--allow-unsigned")
    assert accepted_unsigned.code == 1, "--allow-unsigned accepts no signature, not an unchecked one"


def test_meridian_evidence_signs_with_the_key_in_the_environment(tmp_path, monkeypatch):
    ser = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    key, public = tmp_path / "signer.pem", tmp_path / "signer.pub"
    key.write_bytes(private.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
    public.write_bytes(private.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
    monkeypatch.setenv("MERIDIAN_SIGNING_KEY", str(key))
    out = tmp_path / "bundle"
    built = run_meridian("evidence", "--stack", "eu", "--out", str(out))
    assert built.code == 0 and "signed (ed25519" in built.out, built.out + built.err
    ok = run_meridian("evidence", "verify", str(out), "--key", str(public))
    assert ok.code == 0 and "signature valid" in ok.out and "bundle intact" in ok.out, ok.out + ok.err
    monkeypatch.delenv("MERIDIAN_SIGNING_KEY")
    unchecked = run_meridian("evidence", "verify", str(out))
    assert unchecked.code == 1 and "signature not checked" in unchecked.out


def test_an_unusable_signing_key_is_refused_before_the_bundle_is_built(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("tooshort")
    out = tmp_path / "bundle"
    cli = run_meridian("evidence", "--stack", "eu", "--out", str(out), "--signing-key", str(short))
    assert cli.code == 2 and "shorter than 16 bytes" in cli.err, cli.out + cli.err
    assert not out.exists()
    drill = run_meridian("drill", "region-failover", "--stack", "eu", "--target", "sandbox", "--signing-key", str(short))
    assert drill.code == 2 and "needs --evidence" in drill.err, drill.out + drill.err
