"""The AWS target and the drills on it: the right boto3 calls in the right order per drill, a dry run
makes no call at all, a failure mid-way rolls back, the production guard.

Route 53 runs on moto (real state: the PRIMARY check's `Inverted` flag); RDS global clusters and
FIS run on botocore's Stubber (moto has no switchover/failover_global_cluster and no FIS
stop_experiment): expected parameters, canned responses, and nothing left unconsumed. The stack
outputs the target reads are exactly what the offline engine rendered for the real stacks.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml
from botocore.stub import ANY
from rich.console import Console

from meridian.commands.drill import DrillRequest, run_drill
from meridian.drills import catalog
from meridian.drills.machine import drills_root
from meridian.errors import BadInput
from meridian.targets import aws as aws_target
from stackconfig import load_stack

from .helpers import ACCOUNT, ROOT, aurora_ids, fail_verification, globals_response, inverted, make_target, ops_only, run_ops

# --- operations --------------------------------------------------------------------------------


def test_planned_promote_is_a_switchover_to_the_dr_member(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    primary_region, dr_region = target.regions["primary"], target.regions["dr"]
    rds = cloud.stub("rds", primary_region)
    _, dr_cluster = aurora_ids(outputs)
    rds.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})
    rds.add_response(
        "switchover_global_cluster",
        {"GlobalCluster": {}},
        {
            "GlobalClusterIdentifier": "us-db",
            "TargetDbClusterIdentifier": f"arn:aws:rds:{dr_region}:{ACCOUNT}:cluster:{dr_cluster}",
        },
    )
    rds.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})  # still switching
    rds.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})
    # the demoted primary must forward its region's writes (finding 12): here a cluster made without it
    primary_cluster, _ = aurora_ids(outputs)
    rds.add_response(
        "describe_db_clusters",
        {"DBClusters": [{"GlobalWriteForwardingStatus": "disabled"}]},
        {"DBClusterIdentifier": primary_cluster},
    )
    rds.add_response(
        "modify_db_cluster", {"DBCluster": {}}, {"DBClusterIdentifier": primary_cluster, "EnableGlobalWriteForwarding": True}
    )
    target.stop_database("primary", planned=True)
    result = target.promote("dr")
    assert result.changed and "switchover" in result.detail and "write forwarding turned on" in result.detail
    cloud.done()
    assert [c[2] for c in cloud.calls] == [
        "DescribeGlobalClusters",
        "SwitchoverGlobalCluster",
        "DescribeGlobalClusters",
        "DescribeGlobalClusters",
        "DescribeDBClusters",
        "ModifyDBCluster",
    ]


def test_a_demoted_member_that_forwards_is_left_alone(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    rds = cloud.stub("rds", target.regions["primary"])
    primary_cluster, _ = aurora_ids(outputs)
    rds.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})
    rds.add_response(
        "switchover_global_cluster", {"GlobalCluster": {}}, {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY}
    )
    rds.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})
    rds.add_response(
        "describe_db_clusters",
        {"DBClusters": [{"GlobalWriteForwardingStatus": "enabled"}]},
        {"DBClusterIdentifier": primary_cluster},
    )
    target.stop_database("primary", planned=True)
    assert "primary forwards writes (enabled)" in target.promote("dr").detail
    cloud.done()
    assert "ModifyDBCluster" not in [c[2] for c in cloud.calls]


def test_unplanned_promote_fails_over_in_the_dr_region_allowing_data_loss(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    dr_region = target.regions["dr"]
    cloud.stub("rds", target.regions["primary"]).add_response(
        "describe_global_clusters", globals_response(outputs, "primary"), {}
    )
    cloud.stub("rds", dr_region).add_response(
        "failover_global_cluster",
        {"GlobalCluster": {}},
        {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY, "AllowDataLoss": True},
    )
    cloud.stub("rds", target.regions["primary"]).add_response("describe_global_clusters", globals_response(outputs, "dr"), {})
    assert "data loss allowed" in target.promote("dr").detail
    cloud.done()
    assert ("rds", dr_region, "FailoverGlobalCluster") in cloud.calls


def test_rds_engine_promotes_the_cross_region_replica(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "apac", tmp_path)
    replica = outputs["regions"]["dr"]["db_reader_endpoint"].split(".", 1)[0]
    rds = cloud.stub("rds", target.regions["dr"])
    retention = target.cfg.dr.backup_retention_days  # the promoted primary keeps the continuous-backup retention
    rds.add_response(
        "promote_read_replica", {"DBInstance": {}}, {"DBInstanceIdentifier": replica, "BackupRetentionPeriod": retention}
    )
    rds.add_response(
        "describe_db_instances", {"DBInstances": [{"DBInstanceStatus": "available"}]}, {"DBInstanceIdentifier": replica}
    )
    target.promote("dr")
    cloud.done()
    with pytest.raises(BadInput, match="only in the dr region"):
        target.promote("primary")


def test_flip_traffic_inverts_the_primary_health_check_and_back(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "eu", tmp_path)
    target.flip_traffic("dr")
    assert inverted(outputs) is True
    target.flip_traffic("primary")
    assert inverted(outputs) is False
    assert {c[:2] for c in cloud.calls} == {("route53", "us-east-1")}


# --- drills: calls and order ------------------------------------------------------------------


def test_region_failover_drill_makes_the_right_calls_in_order(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    primary_region, dr_region = target.regions["primary"], target.regions["dr"]
    fis = cloud.stub("fis", primary_region)
    rds_p, rds_d = cloud.stub("rds", primary_region), cloud.stub("rds", dr_region)
    template = outputs["dr"]["experiment_templates"]["disrupt-network"]
    fis.add_response(
        "start_experiment",
        {"experiment": {"id": "EXP1"}},
        {"clientToken": ANY, "experimentTemplateId": template, "tags": {"meridian:drill": "us"}},
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})  # promote: find members
    rds_d.add_response(
        "failover_global_cluster",
        {"GlobalCluster": {}},
        {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY, "AllowDataLoss": True},
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})  # dr writes
    fis.add_response("stop_experiment", {"experiment": {"id": "EXP1"}}, {"id": "EXP1"})  # failback: network back
    primary_cluster, dr_cluster = aurora_ids(outputs)
    forwarding = {"DBClusters": [{"GlobalWriteForwardingStatus": "enabled"}]}
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})  # old primary rejoined
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})  # ... and forwards writes
    rds_p.add_response("describe_db_clusters", forwarding, {"DBClusterIdentifier": primary_cluster})
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})  # switchover: find members
    rds_p.add_response(
        "switchover_global_cluster", {"GlobalCluster": {}}, {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY}
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})
    rds_d.add_response("describe_db_clusters", forwarding, {"DBClusterIdentifier": dr_cluster})  # demoted dr forwards
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})  # reprotect: dr is a member
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})  # ... and forwards writes
    rds_d.add_response("describe_db_clusters", forwarding, {"DBClusterIdentifier": dr_cluster})
    state = run_ops(ops_only(catalog.build("region-failover")), target, tmp_path)
    assert state["status"] == "completed", state.get("error")
    cloud.done()
    assert [c[2] for c in cloud.mutating()] == [
        "StartExperiment",  # fault: data subnets cut off (the crash of the database is the same experiment)
        "UpdateHealthCheck",  # fence: PRIMARY inverted, Route 53 answers with dr
        "FailoverGlobalCluster",  # promote dr, data loss allowed
        "StopExperiment",  # failback: primary region back
        "SwitchoverGlobalCluster",  # planned switchover home, RPO 0
        "UpdateHealthCheck",  # traffic home
    ]
    assert inverted(outputs) is False


def test_a_failure_before_the_promotion_undoes_every_completed_step_in_reverse(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    primary_region, dr_region = target.regions["primary"], target.regions["dr"]
    fis = cloud.stub("fis", primary_region)
    rds_p, rds_d = cloud.stub("rds", primary_region), cloud.stub("rds", dr_region)
    fis.add_response(
        "start_experiment", {"experiment": {"id": "EXP9"}}, {"clientToken": ANY, "experimentTemplateId": ANY, "tags": ANY}
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})
    rds_d.add_client_error("failover_global_cluster", "InvalidGlobalClusterStateFault", "global cluster is busy")
    # rollback, in reverse: traffic home (moto), then the fault undone: network back, primary still a member
    fis.add_response("stop_experiment", {"experiment": {"id": "EXP9"}}, {"id": "EXP9"})
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})  # ... and forwards writes
    rds_p.add_response(
        "describe_db_clusters",
        {"DBClusters": [{"GlobalWriteForwardingStatus": "enabled"}]},
        {"DBClusterIdentifier": aurora_ids(outputs)[0]},
    )
    state = run_ops(ops_only(catalog.build("region-failover")), target, tmp_path)
    assert state["status"] == "failed" and "busy" in state["error"]
    rollback = state["rollback"]
    assert rollback["mode"] == "undo in reverse" and not rollback["errors"] and not rollback["failback_needed"]
    assert rollback["operations"] == [
        "flip_traffic('primary')",
        "restore_database('primary')",
        "restore_region('primary')",
        "clear_faults()",  # last, always: the experiment is already stopped, so no call
    ]
    cloud.done()
    assert [c[2] for c in cloud.mutating()] == [
        "StartExperiment",
        "UpdateHealthCheck",
        "FailoverGlobalCluster",
        "UpdateHealthCheck",
        "StopExperiment",
    ]
    assert inverted(outputs) is False, "traffic must be home after the rollback"


def test_a_failure_after_the_promotion_rolls_forward_to_traffic_on_dr(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    primary_region = target.regions["primary"]
    rds_p = cloud.stub("rds", primary_region)
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})
    rds_p.add_response(
        "switchover_global_cluster", {"GlobalCluster": {}}, {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY}
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})
    rds_p.add_response(
        "describe_db_clusters",
        {"DBClusters": [{"GlobalWriteForwardingStatus": "enabled"}]},
        {"DBClusterIdentifier": aurora_ids(outputs)[0]},
    )
    drill = ops_only(catalog.build("database-failover", "planned"))
    broken = tuple(dataclasses.replace(s, check=fail_verification) if s.name == "verify" else s for s in drill.steps)
    state = run_ops(dataclasses.replace(drill, steps=broken), target, tmp_path)
    assert state["status"] == "failed"
    assert state["rollback"]["mode"] == "roll forward (after irreversible promote)" and state["rollback"]["failback_needed"]
    assert inverted(outputs) is True, "the writer is in dr: traffic stays there"
    cloud.done()


# --- dry run and guards -------------------------------------------------------------------------


def test_dry_run_lists_the_calls_and_makes_none(previews, tmp_path, monkeypatch, capsys):
    outputs = tmp_path / "us.json"
    outputs.write_text(json.dumps(previews["us"].plan["outputs"]))

    def no_client(service, region):
        raise AssertionError(f"a dry run created a {service} client in {region}")

    monkeypatch.setattr(aws_target, "_boto3_client", no_client)
    console = Console(file=(buf := open(tmp_path / "out.txt", "w+")), width=200)
    code = run_drill(DrillRequest(drill="region-failover", stack="us", target="aws", outputs=outputs, project_dir=ROOT), console)
    assert code == 0
    buf.seek(0)
    text = buf.read()
    for call in (
        "fis.start_experiment",
        "route53.update_health_check",
        "rds.failover_global_cluster",
        "rds.switchover_global_cluster",
        "rds.describe_db_clusters",  # each demoted or rejoined member must forward writes
        "EnableGlobalWriteForwarding=True",
    ):
        assert call in text, f"the dry run does not show {call}"
    assert "DRY RUN" in text


def test_production_stack_refuses_execute_without_the_flag(project_copy, tmp_path):
    stack_file = project_copy / "Pulumi.us.yaml"
    doc = yaml.safe_load(stack_file.read_text())
    doc["config"]["meridian:production"] = True
    stack_file.write_text(yaml.safe_dump(doc))
    (project_copy / "policies").mkdir()
    with pytest.raises(BadInput, match="--allow-production"):
        run_drill(DrillRequest(drill="database-failover", stack="us", target="aws", execute=True, project_dir=project_copy))
    # a dry run is always allowed; the flag lets --execute through to the target (no outputs here)
    assert (
        run_drill(
            DrillRequest(drill="database-failover", stack="us", target="aws", project_dir=project_copy),
            Console(file=open("/dev/null", "w")),
        )
        == 0
    )
    with pytest.raises(BadInput, match="no stack outputs"):
        run_drill(
            DrillRequest(
                drill="database-failover", stack="us", target="aws", execute=True, allow_production=True, project_dir=project_copy
            )
        )
    assert load_stack(project_copy, "us").production is True
    assert not drills_root(project_copy, "us").exists(), "a refused drill leaves no lock behind"


def test_restore_drill_is_refused_on_a_target_that_cannot_restore(previews, tmp_path):
    outputs = tmp_path / "us.json"
    outputs.write_text(json.dumps(previews["us"].plan["outputs"]))
    with pytest.raises(BadInput, match=r"aws target has no Backups ability \(backup\(\), restore_backup\(\).*restore by hand"):
        run_drill(
            DrillRequest(
                drill="restore-from-backup",
                stack="us",
                target="aws",
                execute=True,
                outputs=outputs,
                project_dir=ROOT,
                records=tmp_path / "records",
            )
        )
    assert not (tmp_path / "records").exists()


@pytest.mark.slow
def test_bad_drill_input_exits_2_with_what_is_allowed():
    from .helpers import run_meridian

    def words(text: str) -> str:  # the message as one line, out of its error box
        return " ".join(text.replace("│", " ").split())

    unknown = run_meridian("drill", "sideways", "--stack", "us", "--target", "sandbox")
    allowed = "'sideways' is not one of 'region-failover', 'database-failover', 'failback', 'restore-from-backup'"
    assert unknown.code == 2 and allowed in words(unknown.err), unknown.err
    mode = run_meridian("drill", "database-failover", "--stack", "us", "--target", "sandbox", "--mode", "maybe")
    assert mode.code == 2 and "'maybe' is not one of 'planned', 'unplanned'" in words(mode.err), mode.err
    evidence = run_meridian("drill", "region-failover", "--stack", "us", "--target", "sandbox", "--evidence", "/tmp/x")
    assert evidence.code == 2 and "--evidence needs --execute" in evidence.err
