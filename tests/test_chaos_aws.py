"""The chaos scenarios on the AWS target: the experiments' actions (the same functions `chaos run`
calls) make the expected AWS calls (Route 53 on moto, FIS and RDS on botocore's Stubber), a dry
run makes none, and what the AWS target cannot inject is refused by name, never faked."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY
from chaoslib.exceptions import ActivityFailed

from meridian.chaos import actions
from meridian.chaos import run as chaosrun
from tests.helpers import aurora_ids, globals_response, inverted, make_target

FIS = "fis"


def _actions(name: str):
    doc = json.loads((chaosrun.SCENARIO_DIR / f"{name}.json").read_text())
    return [a for a in doc["method"] + doc["rollbacks"] if a["type"] == "action"]


def _play(name: str, target, monkeypatch) -> None:
    """Every action of the scenario through meridian.chaos.actions, as Chaos Toolkit calls them."""
    monkeypatch.setattr(actions, "_target", lambda configuration: target)
    for a in _actions(name):
        getattr(actions, a["provider"]["func"])(**a["provider"].get("arguments", {}), configuration={})


def test_region_loss_starts_and_stops_the_network_experiment(previews, aws_env, tmp_path, monkeypatch):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    region = outputs["regions"]["primary"]["region"]
    fis = cloud.stub(FIS, region)
    template = outputs["dr"]["experiment_templates"]["disrupt-network"]
    fis.add_response(
        "start_experiment", {"experiment": {"id": "exp-1"}}, {"experimentTemplateId": template, "clientToken": ANY, "tags": ANY}
    )
    fis.add_response("stop_experiment", {"experiment": {"id": "exp-1"}}, {"id": "exp-1"})
    _play("region-loss", target, monkeypatch)
    cloud.done()
    assert [(s, op) for s, _, op in cloud.mutating()] == [(FIS, "StartExperiment"), (FIS, "StopExperiment")]


def test_database_failover_and_failback_calls_in_order(previews, aws_env, tmp_path, monkeypatch):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    regions = {r: outputs["regions"][r]["region"] for r in ("primary", "dr")}
    fis = cloud.stub(FIS, regions["primary"])
    fis.add_response(
        "start_experiment", {"experiment": {"id": "exp-1"}}, {"experimentTemplateId": ANY, "clientToken": ANY, "tags": ANY}
    )
    rds_p, rds_d = cloud.stub("rds", regions["primary"]), cloud.stub("rds", regions["dr"])
    # promote dr (unplanned): find members, fail over in the dr region, poll until dr writes
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"))
    rds_d.add_response(
        "failover_global_cluster",
        {},
        {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY, "AllowDataLoss": True},
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"))
    # rollback: the primary rejoins (network back), planned switchover home, dr is a member again
    # (every demoted or rejoined member is checked for global write forwarding: describe_db_clusters)
    primary_cluster, dr_cluster = aurora_ids(outputs)
    forwarding = {"DBClusters": [{"GlobalWriteForwardingStatus": "enabled"}]}
    fis.add_response("stop_experiment", {"experiment": {"id": "exp-1"}}, {"id": "exp-1"})
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"))
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"))
    rds_p.add_response("describe_db_clusters", forwarding, {"DBClusterIdentifier": primary_cluster})
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"))
    rds_p.add_response("switchover_global_cluster", {}, {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY})
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"))
    rds_d.add_response("describe_db_clusters", forwarding, {"DBClusterIdentifier": dr_cluster})
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"))
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"))
    rds_d.add_response("describe_db_clusters", forwarding, {"DBClusterIdentifier": dr_cluster})
    _play("database-failover", target, monkeypatch)
    cloud.done()
    ops = [op for _, _, op in cloud.mutating()]
    assert ops == [
        "StartExperiment",
        "FailoverGlobalCluster",
        "UpdateHealthCheck",
        "StopExperiment",
        "UpdateHealthCheck",
        "SwitchoverGlobalCluster",
    ]
    assert inverted(outputs) is False  # traffic is home


@pytest.mark.parametrize("name", ["replica-loss", "db-latency", "packet-drops"])
def test_faults_the_aws_target_cannot_inject_are_refused(previews, aws_env, tmp_path, monkeypatch, name):
    target, cloud, _ = make_target(previews, "us", tmp_path)
    with pytest.raises(ActivityFailed, match="on AWS"):
        _play(name, target, monkeypatch)
    assert cloud.mutating() == []


def test_noisy_neighbour_makes_no_infrastructure_call(previews, aws_env, tmp_path):
    target, cloud, _ = make_target(previews, "us", tmp_path)
    [(phase, activity, lines)] = chaosrun.dry_run("noisy-neighbour", target, chaosrun.ExperimentTenants("acme", "hooli"))
    assert "no infrastructure call" in lines[0]
    assert "tenant='hooli'" in lines[0] and "${" not in lines[0]  # the stack's tenant, as a run fills it in
    assert cloud.calls == []


@pytest.mark.parametrize("name", ["region-loss", "database-failover"])
def test_dry_run_lists_the_calls_and_makes_none(previews, tmp_path, name):
    calls = []

    def no_client(service, region):
        calls.append((service, region))
        raise AssertionError("a dry run must not create a client")

    target, _, _ = make_target(previews, "us", tmp_path, health_checks=False)
    target._factory = no_client
    plan = chaosrun.dry_run(name, target, chaosrun.ExperimentTenants("acme", None))
    text = "\n".join(line for _, _, lines in plan for line in lines)
    assert calls == []
    assert "fis.start_experiment" in text and "fis.stop_experiment" in text
    if name == "database-failover":
        assert "rds.failover_global_cluster" in text and "rds.switchover_global_cluster" in text
        assert text.index("failover_global_cluster") < text.index("switchover_global_cluster")
        assert "route53.update_health_check" in text
