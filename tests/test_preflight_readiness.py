"""Preflight `readiness` (meridian/preflight/readiness.py): every region's service reaches the database
endpoints its settings name, and writes through a path the database gives it. It fails on the old
shapes (apac's dr region writing to the primary's private address in another region; an Aurora
region writing `direct` or demanding a read-write session of a cluster that can be a forwarding
secondary; the primary cluster without write forwarding) and passes the three stacks' plans.

The old shapes are the plan of today's program with the old argument put back, resource by
resource, as the program rendered them before (the dr settings' write DSN on the primary's writer).
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from google.protobuf import json_format, struct_pb2

from meridian.engine.plan import Plan
from meridian.preflight.checks import CHECKS, Context
from stackconfig import load_stack

from .helpers import ROOT, STACKS

pytestmark = pytest.mark.slow  # the plans come from offline runs of the program

DUMP = r"""
import pickle, sys
from pathlib import Path
from meridian.engine.plan import Plan
from meridian.engine.run import run_program
run = run_program(Path(sys.argv[1]), sys.argv[2])
Path(sys.argv[3]).write_bytes(pickle.dumps(Plan("meridian", sys.argv[2], run.registrations, run.outputs)))
"""
SECRET = "kubernetes:core/v1:Secret"
CLUSTER = "aws:rds/cluster:Cluster"


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, Plan]:
    out = tmp_path_factory.mktemp("readiness")

    def dump(stack: str) -> Plan:
        path = out / f"{stack}.pickle"
        proc = subprocess.run(
            [sys.executable, "-c", DUMP, str(ROOT), stack, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return pickle.loads(path.read_bytes())

    with ThreadPoolExecutor(len(STACKS)) as pool:
        return dict(zip(STACKS, pool.map(dump, STACKS), strict=True))


def judge(plan: Plan):
    return CHECKS["readiness"](Context.of(plan, load_stack(ROOT, plan.stack)))


def mutated(plan: Plan, token: str, change, where) -> Plan:
    """A copy of the plan with `change(inputs)` applied to every registration of `token` matching `where`."""
    regs = copy.deepcopy(plan.registrations)
    hit = 0
    for i, reg in enumerate(regs):
        if reg.type == token and where(reg):
            inputs = json_format.MessageToDict(reg.inputs)
            change(inputs)
            regs[i].inputs = json_format.ParseDict(inputs, struct_pb2.Struct())
            regs[i]._dict = None
            hit += 1
    assert hit, f"no {token} matched in the plan"
    return Plan(plan.project, plan.stack, regs, plan.outputs)


def settings_of(plan: Plan, region: str) -> dict:
    """The stable track's rendered settings of `region` (the Secret `<stack>-<region>-api-settings`)."""
    reg = next(r for r in plan.registrations if r.type == SECRET and r.name == f"{plan.stack}-{region}-api-settings")
    return json.loads(json_format.MessageToDict(reg.inputs)["stringData"]["value"]["service.json"])


def with_settings(region: str, change):
    def apply(inputs):
        files = inputs["stringData"]["value"]  # the whole map arrives as one secret on the wire
        data = json.loads(files["service.json"])
        change(data)
        files["service.json"] = json.dumps(data)

    # both tracks' settings (stable and canary) of the region's service
    return apply, lambda reg: reg.name.endswith((f"-{region}-api-settings", f"-{region}-api-canary-settings"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_passes_each_region_reaching_its_own_database(plans, stack):
    result = judge(plans[stack])
    assert result.passed, [f.problem for f in result.findings]
    assert result.checked >= 9  # both regions' stable and canary services (write + read) and the migration
    assert not result.notes


def test_apacs_dr_settings_read_and_write_the_regions_own_replica_and_are_passive(plans):
    cfg = load_stack(ROOT, "apac")
    dr = settings_of(plans["apac"], cfg.regions.dr.region)
    host = urlsplit(dr["write_dsn"]).hostname
    assert host == urlsplit(dr["read_dsn"]).hostname and f".{cfg.regions.dr.region}.rds." in host
    assert dr["writes"] == "passive" and "target_session_attrs=read-write" in dr["write_dsn"]
    primary = settings_of(plans["apac"], cfg.regions.primary.region)
    assert primary["writes"] == "direct" and f".{cfg.regions.primary.region}.rds." in urlsplit(primary["write_dsn"]).hostname


@pytest.mark.parametrize("stack", ["us", "eu"])
def test_aurora_regions_write_through_their_own_forwarding_cluster(plans, stack):
    cfg = load_stack(ROOT, stack)
    for _, spec in cfg.regions.both:
        s = settings_of(plans[stack], spec.region)
        assert s["writes"] == "forwarded" and "target_session_attrs" not in s["write_dsn"], s["write_dsn"]
        assert f".{spec.region}.rds." in urlsplit(s["write_dsn"]).hostname
    clusters = [r for r in plans[stack].custom if r.type == CLUSTER]
    assert len(clusters) == 2 and all(json_format.MessageToDict(r.inputs)["enableGlobalWriteForwarding"] for r in clusters)
    # the dr region (a global secondary) writes through its reader endpoint: its writer endpoint is inactive
    dr = settings_of(plans[stack], cfg.regions.dr.region)
    assert (
        ".cluster-ro-" in urlsplit(dr["write_dsn"]).hostname
        and urlsplit(dr["write_dsn"]).hostname == urlsplit(dr["read_dsn"]).hostname
    )


def test_old_apac_dr_writing_to_the_primarys_address_in_another_region_is_a_finding(plans):
    plan = plans["apac"]
    cfg = load_stack(ROOT, "apac")
    primary_write = settings_of(plan, cfg.regions.primary.region)["write_dsn"]

    def old(d):  # as today's program rendered it: the primary's writer, a direct write path
        d.update(write_dsn=primary_write, writes="direct")

    change, where = with_settings(cfg.regions.dr.region, old)
    problems = [f.problem for f in judge(mutated(plan, SECRET, change, where)).findings]
    assert any("no VPC peering or Transit Gateway route" in p and cfg.regions.dr.region in p for p in problems), problems
    assert any(f"admits port 5432 from the {cfg.regions.dr.region} nodes" in p for p in problems), problems


def test_a_route_alone_does_not_make_the_primarys_address_reachable(plans):
    """With a peering connection in the plan, the primary's security group still admits only its own nodes."""
    plan = plans["apac"]
    cfg = load_stack(ROOT, "apac")
    primary_write = settings_of(plan, cfg.regions.primary.region)["write_dsn"]
    change, where = with_settings(cfg.regions.dr.region, lambda d: d.update(write_dsn=primary_write, writes="direct"))
    old = mutated(plan, SECRET, change, where)
    vpc = next(r for r in old.custom if r.type == "aws:ec2/vpc:Vpc" and old.region_of(r) == cfg.regions.dr.region)
    peering = copy.deepcopy(vpc)
    peering.type, peering.urn = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection", vpc.urn.replace("ec2/vpc:Vpc", "peer")
    peering.inputs = json_format.ParseDict({"peerRegion": cfg.regions.primary.region}, struct_pb2.Struct())
    peering._dict = None
    problems = [f.problem for f in judge(Plan(old.project, old.stack, [*old.registrations, peering], old.outputs)).findings]
    assert not any("no VPC peering" in p for p in problems), problems
    assert any("admits port 5432" in p for p in problems), problems


def test_old_aurora_shapes_are_findings(plans):
    plan = plans["us"]
    cfg = load_stack(ROOT, "us")
    primary = cfg.regions.primary.region
    # the primary cluster without write forwarding: after a switchover it refuses the primary's writes
    no_forwarding = mutated(
        plan, CLUSTER, lambda i: i.pop("enableGlobalWriteForwarding"), lambda r: f"-{primary}-cluster" in r.name
    )
    assert any("has no global write forwarding" in f.problem for f in judge(no_forwarding).findings)
    # a forwarded write path demanding a read-write session (finding 12's connection string)
    change, where = with_settings(primary, lambda d: d.update(write_dsn=d["write_dsn"] + "&target_session_attrs=read-write"))
    assert any(
        "demands target_session_attrs=read-write" in f.problem for f in judge(mutated(plan, SECRET, change, where)).findings
    )
    # the dr secondary writing through its cluster (writer) endpoint, inactive on a secondary (the AWS review's N1)
    dr = cfg.regions.dr.region

    def writer_endpoint(d):
        d["write_dsn"] = d["write_dsn"].replace(".cluster-ro-", ".cluster-")

    change, where = with_settings(dr, writer_endpoint)
    assert any("AWS keeps it inactive" in f.problem for f in judge(mutated(plan, SECRET, change, where)).findings)
    # an Aurora member written `direct` (today's settings, which carried no write path)
    change, where = with_settings(primary, lambda d: d.update(writes="direct"))
    assert any(
        "once a switchover or failover demotes it" in f.problem for f in judge(mutated(plan, SECRET, change, where)).findings
    )


@pytest.mark.parametrize("stack", ["us", "eu"])
def test_the_primary_keeps_writing_after_a_switchover_through_its_own_reader_endpoint(plans, stack):
    """After a planned switchover the old primary's cluster endpoint is inactive (a secondary's is):
    its write DSN names that endpoint, then the same cluster's reader endpoint, which forwards writes,
    both in its own region; the old single-host DSN (writes failed until a stack update) is a finding."""
    plan, cfg = plans[stack], load_stack(ROOT, stack)
    primary = cfg.regions.primary.region
    s = settings_of(plan, primary)
    netloc = urlsplit(s["write_dsn"]).netloc.rpartition("@")[2]
    writer, demoted = (h.rsplit(":", 1)[0] for h in netloc.split(","))
    assert ".cluster-" in writer and ".cluster-ro-" not in writer and f".{primary}.rds." in writer
    assert demoted == urlsplit(s["read_dsn"]).hostname and ".cluster-ro-" in demoted
    assert "target_session_attrs" not in s["write_dsn"]

    def single_host(d):  # as the program rendered it before: the cluster endpoint alone
        d["write_dsn"] = d["write_dsn"].replace(f",{demoted}:5432", "")

    change, where = with_settings(primary, single_host)
    found = [f.problem for f in judge(mutated(plan, SECRET, change, where)).findings]
    assert any("alone, the cluster (writer) endpoint of the global writer" in p for p in found), found


def test_a_host_no_database_of_the_plan_answers_at_is_a_finding(plans):
    plan = plans["us"]
    change, where = with_settings(
        load_stack(ROOT, "us").regions.dr.region,
        lambda d: d.update(read_dsn="postgresql://meridian_app@db.example.com:5432/meridian?sslmode=require"),
    )
    assert any("no database of this plan answers at" in f.problem for f in judge(mutated(plan, SECRET, change, where)).findings)
