"""Preflight of a cell stack and of the account it shares: a cell's tenants are judged where they
live (their tenant file, which the platform's service mounts), and `meridian preflight --zone us`
previews the platform and its cell, then passes the account the real stacks share.

The old `identity` check read tenants only from the settings file mounted in a container: a cell
runs no container, and the platform's plan holds none of its cells' tenants, so a cell tenant's
session policy was judged nowhere.
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys

import pytest
from google.protobuf import json_format, struct_pb2

from components.workload import TENANT_FILE_KEY
from meridian.engine.plan import Plan
from meridian.engine.recorder import SECRET_SIG, SIG_KEY
from meridian.preflight.checks import Context
from meridian.preflight.identity import check_identity
from stackconfig import load_stack

from .helpers import ROOT, run_meridian

pytestmark = pytest.mark.slow  # the plans come from offline runs of the program

CELL = "us-cell-001"
DUMP = r"""
import pickle, sys
from pathlib import Path
from meridian.engine.plan import Plan
from meridian.engine.run import run_program
run = run_program(Path(sys.argv[1]), sys.argv[2])
Path(sys.argv[3]).write_bytes(pickle.dumps(Plan("meridian", sys.argv[2], run.registrations, run.outputs)))
"""


@pytest.fixture(scope="module")
def cell(tmp_path_factory) -> tuple[Plan, object]:
    path = tmp_path_factory.mktemp("preflight-cell") / "cell.pickle"
    proc = subprocess.run(
        [sys.executable, "-c", DUMP, str(ROOT), CELL, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pickle.loads(path.read_bytes()), load_stack(ROOT, CELL)


def with_tenant_file(plan: Plan, change) -> Plan:
    """A copy of the plan whose tenant file Secrets hold `change(entries)` instead."""
    regs = copy.deepcopy(plan.registrations)
    hits = 0
    for reg in regs:
        if reg.type != "kubernetes:core/v1:Secret":
            continue
        inputs = json_format.MessageToDict(reg.inputs)
        data = inputs.get("stringData") or {}
        value = data.get("value") if data.get(SIG_KEY) == SECRET_SIG else data
        if TENANT_FILE_KEY not in (value or {}):
            continue
        value[TENANT_FILE_KEY] = json.dumps(change(json.loads(value[TENANT_FILE_KEY])))
        reg.inputs = json_format.ParseDict(inputs, struct_pb2.Struct())
        hits += 1
    assert hits == 2, "a tenant file per region"
    return Plan(plan.project, plan.stack, regs, plan.outputs)


def test_a_cells_tenants_are_judged_from_its_tenant_files(cell):
    plan, cfg = cell
    result = check_identity(Context.of(plan, cfg))
    assert result.passed, result.findings
    with_data = sum(1 for t in cfg.tenants)  # every tenant of the cell reaches its data (pool prefix or silo bucket)
    assert result.checked >= 2 * with_data, "each tenant's session policy, in both regions"


def test_a_cell_tenant_whose_session_policy_is_too_long_fails(cell):
    """Shown failing on the old code only through this test: it judged the settings file alone."""
    plan, cfg = cell

    def long_prefix(entries: list[dict]) -> list[dict]:
        entries[0]["data"]["prefix"] = "t/" + "p" * 2_000 + "/"
        return entries

    findings = check_identity(Context.of(with_tenant_file(plan, long_prefix), cfg)).findings
    assert len(findings) == 2 and all("session policy is" in f.problem and "over STS's 2048" in f.problem for f in findings)


def test_a_tenant_file_the_service_refuses_fails(cell):
    plan, cfg = cell
    findings = check_identity(Context.of(with_tenant_file(plan, lambda entries: [*entries, entries[0]]), cfg)).findings
    assert len(findings) == 2 and all("the service refuses this tenant file" in f.problem for f in findings)


def test_the_real_zone_and_the_account_it_shares_pass(tmp_path):
    """The platform and its cell previewed (as `preview --zone`), with eu and apac (the same account)."""
    cli = run_meridian("preflight", "--zone", "us", "--json", str(tmp_path / "account.json"), timeout=900)
    assert cli.code == 0, cli.out[-4000:] + cli.err[-3000:]
    report = json.loads((tmp_path / "account.json").read_text())
    (account,) = report["accounts"]
    assert report["passed"] and account["account"] == "123456789012"
    assert account["stacks"] == ["apac", "eu", "us", CELL]
    assert f"{CELL}: deploy preflight passed" in cli.out
    checks = {c["check"]: c for c in account["checks"]}
    assert checks["account-quotas"]["checked"] > 0 and checks["account-limits"]["checked"] > 0
