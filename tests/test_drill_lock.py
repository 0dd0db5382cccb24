"""One drill lock per stack, shared, and the AWS drill path's guards (issue 22, items 3 and 4).

The lock lives with the stack, not with the drill's records: the sandbox's in its state folder,
AWS's in an SSM parameter (moto). A second drill is refused with exit 2 naming the owner and the
expiry; a refused run writes no drill record. On AWS, the account and the credentials are checked
before any other call, the RDS engine (apac) refuses drills that promote, and a rollback stops the
FIS experiment the drill started (Stubber, as in test_drill_aws.py).
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from botocore.stub import ANY
from rich.console import Console

from meridian.commands.drill import DrillRequest, run_drill
from meridian.drills import catalog
from meridian.errors import EXIT_BAD_INPUT, BadInput
from meridian.targets import ExecutionGuard, LockHeld, LockOwner, StackLock, TargetUnavailable, TenantCredential, Unsupported
from meridian.targets import aws as aws_target
from meridian.targets.aws import AwsTarget
from meridian.targets.lock import file_acquire, file_release
from meridian.targets.sandbox import DRILL_LOCK, SandboxTarget
from stackconfig import load_stack

from .helpers import ACCOUNT, ROOT, dead_pid, fail_verification, globals_response, make_target, ops_only, run_ops

QUIET = Console(file=open("/dev/null", "w"))


# --- the lock's rules (the sandbox's file lock over a fake state folder) ---------------------------


def test_a_second_drill_is_refused_naming_the_owner_and_when_it_expires(tmp_path):
    lock = tmp_path / "sandbox" / "us" / DRILL_LOCK
    first = LockOwner.new("region-failover", 600)
    assert file_acquire(lock, first) == ""
    with pytest.raises(LockHeld) as refused:
        file_acquire(lock, LockOwner.new("database-failover", 600))
    text = str(refused.value)
    assert "drill region-failover by " + first.owner in text and f"pid {first.pid}" in text
    assert time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(first.expires)) in text
    assert "--break-lock" in text and refused.value.exit_code == EXIT_BAD_INPUT
    assert LockOwner.parse(lock.read_text()) == first, "the refused drill left the holder's lock alone"


def test_an_expired_lock_is_taken_over_and_the_previous_owner_named(tmp_path):
    lock = tmp_path / DRILL_LOCK
    stale = dataclasses.replace(LockOwner.new("failback", 600), expires=time.time() - 1)
    lock.write_text(stale.dumps())
    claimant = LockOwner.new("region-failover", 600)
    assert "took over the expired lock of drill failback" in file_acquire(lock, claimant)
    assert LockOwner.parse(lock.read_text()) == claimant


def test_break_lock_takes_a_live_lock_only_when_asked(tmp_path):
    lock = tmp_path / DRILL_LOCK
    holder = LockOwner.new("region-failover", 600)
    file_acquire(lock, holder)
    claimant = LockOwner.new("failback", 600)
    with pytest.raises(LockHeld):
        file_acquire(lock, claimant)
    assert "broke the lock of drill region-failover" in file_acquire(lock, claimant, break_lock=True)
    file_release(lock, holder)  # the broken holder finishing later must not free the new owner's lock
    assert LockOwner.parse(lock.read_text()) == claimant
    file_release(lock, claimant)
    assert not lock.exists()


def test_resume_takes_over_only_a_lock_whose_process_is_gone(tmp_path):
    lock = tmp_path / DRILL_LOCK
    running = LockOwner.new("region-failover", 600)  # this process: alive
    lock.write_text(running.dumps())
    with pytest.raises(LockHeld):
        file_acquire(lock, LockOwner.new("region-failover", 600), resume=True)
    crashed = dataclasses.replace(running, pid=dead_pid())
    lock.write_text(crashed.dumps())
    with pytest.raises(LockHeld):  # without --resume or --abandon a partial run is not taken over
        file_acquire(lock, LockOwner.new("region-failover", 600))
    with pytest.raises(LockHeld):  # nor from another host
        file_acquire(lock, dataclasses.replace(LockOwner.new("region-failover", 600), owner="ops@elsewhere"), resume=True)
    assert "resumed the lock" in file_acquire(lock, LockOwner.new("region-failover", 600), resume=True)


class StateOnlySandbox(SandboxTarget):
    """The sandbox target over a state folder with no running parts: the lock is real (the
    target's own methods on its state folder); the tenants and timings are given."""

    def __init__(self, stack, root):
        self.stack, self.root = stack, root

    def tenants(self):
        return [TenantCredential("acme", "enterprise", "key", 1000, 20000)]

    def detection_bound_s(self):
        return 3.0


def test_two_drills_on_one_sandbox_stack_with_different_records_the_second_exits_2_without_a_record(tmp_path, monkeypatch):
    from meridian.commands import drill as drill_cmd

    state = tmp_path / "state" / "us"
    target = StateOnlySandbox("us", state)
    monkeypatch.setattr(drill_cmd, "_open", lambda req, project_dir: target)
    first = LockOwner.new("region-failover", 600)
    assert isinstance(target, StackLock)
    target.acquire_drill_lock(first)  # drill A, recording into records-a, holds the stack
    assert (state / DRILL_LOCK).is_file(), "the lock is in the stack's sandbox state, not in a records folder"
    request = DrillRequest(
        drill="database-failover", stack="us", target="sandbox", execute=True, project_dir=ROOT, records=tmp_path / "records-b"
    )
    with pytest.raises(LockHeld, match=r"locked by drill region-failover .* expires .*--break-lock") as refused:
        run_drill(request, QUIET)
    assert refused.value.exit_code == EXIT_BAD_INPUT
    assert not (tmp_path / "records-b").exists(), "a refused drill writes no record"
    assert LockOwner.parse((state / DRILL_LOCK).read_text()) == first


def test_failback_on_a_stack_at_home_is_refused_without_a_record_or_the_lock(tmp_path, monkeypatch):
    """It once ran, failed its preflight and left a "failed" record that evidence bundled as the newest drill."""
    from meridian.commands import drill as drill_cmd
    from meridian.targets import Health, RegionHealth

    class AtHome(StateOnlySandbox):
        def health(self):
            regions = {r: RegionHealth(r, r, True, "primary" if r == "primary" else "replica", True) for r in ("primary", "dr")}
            return Health(True, "primary", regions)

    state = tmp_path / "state" / "us"
    monkeypatch.setattr(drill_cmd, "_open", lambda req, project_dir: AtHome("us", state))
    request = DrillRequest(drill="failback", stack="us", target="sandbox", execute=True, project_dir=ROOT, records=tmp_path / "r")
    with pytest.raises(BadInput, match="home already"):
        run_drill(request, QUIET)
    assert not (tmp_path / "r").exists() and not (state / DRILL_LOCK).exists()


def test_resume_from_another_records_folder_refuses_and_leaves_the_crashed_runs_lock(tmp_path, monkeypatch):
    """A drill crashed mid-way recording into records-a; `--resume --records records-b` once took its
    lock over, started a new run, failed, and released the lock while the stack was half failed over."""
    from meridian.commands import drill as drill_cmd

    state = tmp_path / "state" / "us"
    target = StateOnlySandbox("us", state)
    monkeypatch.setattr(drill_cmd, "_open", lambda req, project_dir: target)
    crashed = LockOwner(**{**dataclasses.asdict(LockOwner.new("region-failover", 600)), "pid": dead_pid()})
    target.acquire_drill_lock(crashed)
    for flag in ("resume", "abandon"):
        request = DrillRequest(
            drill="region-failover", stack="us", target="sandbox", execute=True, project_dir=ROOT,
            records=tmp_path / "records-b", **{flag: True},
        )  # fmt: skip
        with pytest.raises(BadInput, match=f"--{flag}: no partial run in"):
            run_drill(request, QUIET)
        assert LockOwner.parse((state / DRILL_LOCK).read_text()) == crashed, "the crashed run's lock is untouched"
        assert not list((tmp_path / "records-b").glob("*/state.json")), "no run was started"


def test_the_cli_exits_2_naming_the_owner_and_records_nothing_while_another_drill_holds_the_stack(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from meridian.cli import app
    from meridian.commands import drill as drill_cmd

    state = tmp_path / "state"
    target = StateOnlySandbox("us", state / "us")
    monkeypatch.setattr(drill_cmd, "_open", lambda req, project_dir: target)
    holder = LockOwner.new("failback", 600)
    target.acquire_drill_lock(holder)
    args = ["drill", "region-failover", "--stack", "us", "--target", "sandbox", "--execute", "--project-dir", str(ROOT)]
    args += ["--state-dir", str(state), "--records", str(tmp_path / "records-b")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    said = " ".join(result.output.split())
    assert f"locked by drill failback by {holder.owner} (pid {holder.pid})" in said and "--break-lock" in said
    assert not (tmp_path / "records-b").exists()


def test_break_lock_needs_execute():
    with pytest.raises(BadInput, match="--break-lock needs --execute"):
        run_drill(DrillRequest(drill="region-failover", stack="us", target="sandbox", break_lock=True, project_dir=ROOT), QUIET)


# --- AWS: the lock in SSM ------------------------------------------------------------------------


def test_aws_lock_is_an_ssm_parameter_a_second_operator_is_refused_by(previews, aws_env, tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    alice, cloud, _ = make_target(previews, "us", tmp_path / "a")
    bob, _, _ = make_target(previews, "us", tmp_path / "b")
    assert isinstance(alice, StackLock)
    first = LockOwner.new("region-failover", 600)
    assert alice.acquire_drill_lock(first) == ""
    parameter = "/meridian/us/drill-lock"
    ssm = cloud.factory("ssm", alice.regions["primary"])
    assert LockOwner.parse(ssm.get_parameter(Name=parameter)["Parameter"]["Value"]) == first
    with pytest.raises(LockHeld, match=rf"locked by drill region-failover by {first.owner} .*SSM parameter {parameter}"):
        bob.acquire_drill_lock(LockOwner.new("failback", 600))
    bob.release_drill_lock(LockOwner.new("failback", 600))  # not bob's: left alone
    assert LockOwner.parse(ssm.get_parameter(Name=parameter)["Parameter"]["Value"]) == first
    alice.release_drill_lock(first)
    assert ssm.describe_parameters()["Parameters"] == []
    assert [c[2] for c in cloud.calls if c[0] == "sts"] == ["GetCallerIdentity"], "the account is checked first, once"


def test_aws_expired_lock_is_taken_over(previews, aws_env, tmp_path):
    target, cloud, _ = make_target(previews, "us", tmp_path)
    ssm = cloud.factory("ssm", target.regions["primary"])
    stale = dataclasses.replace(LockOwner.new("failback", 600), expires=time.time() - 1)
    ssm.put_parameter(Name="/meridian/us/drill-lock", Value=stale.dumps(), Type="String")
    claimant = LockOwner.new("region-failover", 600)
    assert "took over the expired lock of drill failback" in target.acquire_drill_lock(claimant)
    assert LockOwner.parse(ssm.get_parameter(Name="/meridian/us/drill-lock")["Parameter"]["Value"]) == claimant


# --- AWS: account, credentials, engine -------------------------------------------------------------


def test_credentials_of_another_account_are_refused_before_any_other_call(previews, aws_env, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "210987654321")
    target, cloud, _ = make_target(previews, "us", tmp_path)
    assert isinstance(target, ExecutionGuard)
    with pytest.raises(BadInput, match=f"act in account 210987654321, but stack us lives in account {ACCOUNT}"):
        target.refuse_unsafe("region-failover", promotes=True)
    with pytest.raises(BadInput, match="210987654321"):
        target.acquire_drill_lock(LockOwner.new("region-failover", 600))
    assert {c[0] for c in cloud.calls} == {"sts"}, "nothing but the identity check was called"


def _outputs(previews, stack, tmp_path):
    path = tmp_path / f"{stack}.json"
    path.write_text(json.dumps(previews[stack].plan["outputs"]))
    return path


def test_no_aws_credentials_exits_2_with_what_to_set_and_no_record(previews, tmp_path, monkeypatch):
    for key in (
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv(aws_target.KEYS_ENV, json.dumps({t.id: "key" for t in load_stack(ROOT, "us").tenants}))
    request = DrillRequest(
        drill="region-failover",
        stack="us",
        target="aws",
        execute=True,
        outputs=_outputs(previews, "us", tmp_path),
        project_dir=ROOT,
        records=tmp_path / "records",
    )
    with pytest.raises(TargetUnavailable, match="no AWS credentials for stack us .*AWS_PROFILE") as refused:
        run_drill(request, QUIET)
    assert refused.value.exit_code == EXIT_BAD_INPUT
    assert not (tmp_path / "records").exists(), "a refused drill writes no record"


@pytest.mark.parametrize(("drill", "mode"), [("region-failover", None), ("database-failover", "unplanned"), ("failback", None)])
def test_the_rds_engine_refuses_drills_that_promote_up_front(previews, tmp_path, monkeypatch, drill, mode):
    assert load_stack(ROOT, "apac").database.engine == "postgres"

    def no_client(service, region):
        raise AssertionError(f"a refused drill created a {service} client in {region}")

    monkeypatch.setattr(aws_target, "_boto3_client", no_client)
    monkeypatch.setenv(aws_target.KEYS_ENV, json.dumps({t.id: "key" for t in load_stack(ROOT, "apac").tenants}))
    request = DrillRequest(
        drill=drill,
        stack="apac",
        target="aws",
        mode=mode,
        execute=True,
        outputs=_outputs(previews, "apac", tmp_path),
        project_dir=ROOT,
        records=tmp_path / "records",
    )
    with pytest.raises(Unsupported, match=r"cannot fail back.*docs/runbooks/dr-drill.md") as refused:
        run_drill(request, QUIET)
    assert refused.value.exit_code == EXIT_BAD_INPUT
    assert not (tmp_path / "records").exists()
    assert run_drill(dataclasses.replace(request, execute=False, records=None), QUIET) == 0, "the dry run still shows it"


def test_aurora_stacks_pass_the_engine_guard(previews, aws_env, tmp_path):
    target, _, _ = make_target(previews, "us", tmp_path)
    assert isinstance(target, AwsTarget) and target.aurora
    target.refuse_unsafe("region-failover", promotes=True)  # the account matches (moto's default): no refusal


# --- AWS: rollback stops the experiment ------------------------------------------------------------


def test_a_failure_after_the_promotion_still_stops_the_fis_experiment(previews, aws_env, tmp_path):
    target, cloud, outputs = make_target(previews, "us", tmp_path)
    primary_region, dr_region = target.regions["primary"], target.regions["dr"]
    fis = cloud.stub("fis", primary_region)
    rds_p, rds_d = cloud.stub("rds", primary_region), cloud.stub("rds", dr_region)
    fis.add_response(
        "start_experiment", {"experiment": {"id": "EXP7"}}, {"clientToken": ANY, "experimentTemplateId": ANY, "tags": ANY}
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "primary"), {})
    rds_d.add_response(
        "failover_global_cluster",
        {"GlobalCluster": {}},
        {"GlobalClusterIdentifier": "us-db", "TargetDbClusterIdentifier": ANY, "AllowDataLoss": True},
    )
    rds_p.add_response("describe_global_clusters", globals_response(outputs, "dr"), {})
    fis.add_response("stop_experiment", {"experiment": {"id": "EXP7"}}, {"id": "EXP7"})  # the rollback's last step
    drill = ops_only(catalog.build("region-failover"))
    broken = tuple(dataclasses.replace(s, check=fail_verification) if s.name == "verify" else s for s in drill.steps)
    state = run_ops(dataclasses.replace(drill, steps=broken), target, tmp_path)
    assert state["status"] == "failed"
    rollback = state["rollback"]
    assert rollback["failback_needed"] and not rollback["errors"]
    assert rollback["operations"] == ["flip_traffic('dr')", "clear_faults()"]
    cloud.done()
    assert [c[2] for c in cloud.mutating()][-1] == "StopExperiment", "the primary region's fault outlived the drill"
    assert json.loads(target._state_file.read_text()) == {}


def test_an_experiment_that_ended_by_itself_is_forgotten_and_one_still_running_is_not(previews, aws_env, tmp_path):
    target, cloud, _ = make_target(previews, "us", tmp_path)
    fis = cloud.stub("fis", target.regions["primary"])
    target._state_file.write_text(json.dumps({"disrupt-network": "EXP3"}))
    fis.add_client_error(
        "stop_experiment", "ValidationException", "experiment EXP3 is not running", expected_params={"id": "EXP3"}
    )
    fis.add_response("get_experiment", {"experiment": {"id": "EXP3", "state": {"status": "completed"}}}, {"id": "EXP3"})
    result = target.clear_faults()
    assert "EXP3 (already completed)" in result.detail and json.loads(target._state_file.read_text()) == {}
    target._state_file.write_text(json.dumps({"disrupt-network": "EXP4"}))
    fis.add_client_error("stop_experiment", "ThrottlingException", "slow down", expected_params={"id": "EXP4"})
    fis.add_response("get_experiment", {"experiment": {"id": "EXP4", "state": {"status": "running"}}}, {"id": "EXP4"})
    with pytest.raises(aws_target.ActionFailed, match="slow down"):
        target.clear_faults()
    assert json.loads(target._state_file.read_text()) == {"disrupt-network": "EXP4"}, "still running: remembered"
    cloud.done()


# --- the data-plane option, priced --------------------------------------------------------------


def test_meridian_cost_shows_route53_arc_as_a_priced_option_outside_the_estimate():
    import io

    from meridian.commands.cost import print_options
    from meridian.costmodel import load_prices, options_not_in_plan

    (arc,) = options_not_in_plan()
    prices = load_prices()
    assert prices["hourly"]["arc_cluster"] == 2.50  # AWS's published cluster-hour price (docs/runbooks/dr-drill.md)
    assert arc.monthly_usd == 2.50 * prices["hours_per_month"] == 1825.0
    out = io.StringIO()
    print_options(Console(file=out, width=300))
    assert "option, not in the plan: Route 53 ARC routing controls $1,825.00/month" in out.getvalue()


def test_an_unreadable_lock_is_held_until_broken(tmp_path):
    lock = tmp_path / DRILL_LOCK
    lock.write_text("")
    with pytest.raises(LockHeld, match="not readable.*--break-lock"):
        file_acquire(lock, LockOwner.new("region-failover", 600))
    claimant = LockOwner.new("region-failover", 600)
    assert file_acquire(lock, claimant, break_lock=True) == "replaced an unreadable lock"
    assert LockOwner.parse(lock.read_text()) == claimant and [p.name for p in tmp_path.iterdir()] == [DRILL_LOCK]
