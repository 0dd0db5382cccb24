"""The pack's copy of the stack config (policies/config/<stack>.json): every copied setting names the
stack key it comes from, a stale copy is refused with both values and the one command to run, and
docs/config.md shows that message and the table as the code has them."""

from __future__ import annotations

import json
import re
from functools import reduce

import pytest

from meridian.engine.policy.generated import (
    IN_PLATFORM,
    PLATFORM_NAMES,
    SOURCES,
    drift,
    generated,
    sources_table,
)
from meridian.stackconfig import load_validated
from stackconfig import Overrides, as_written

from .helpers import ROOT, STACKS

DOC = (ROOT / "docs" / "config.md").read_text()


def with_cap(stack: str, cap: int):
    cfg = load_validated(ROOT, stack)
    cost = {**as_written(cfg.cost), "stack_cap_usd": cap}
    return load_validated(ROOT, stack, Overrides({"cost": cost}, f"Pulumi.{stack}.yaml"))


def test_a_stack_cap_change_names_the_setting_both_values_and_the_command():
    current = json.loads((ROOT / "policies" / "config" / "us.json").read_text())
    message = drift(current, with_cap("us", 65000), "us", "policies/config/us.json")
    assert message is not None
    lines = message.splitlines()
    assert (
        lines[1]
        == "  budgets-limit-and-cap-enforced.stackCapUsd: 60000 in policies/config/us.json, 65000 from cost.stack_cap_usd"
    )
    assert lines[-1].startswith("run `meridian policy --stack us --write-config` and commit policies/config/us.json")
    documented = re.search(r"```\nerror: (policies/config/us.json is out of date.*?)\n```", DOC, re.S)
    assert documented and documented.group(1) == message, "docs/config.md shows the message the preview prints"


def test_an_unchanged_cap_is_not_stale():
    current = json.loads((ROOT / "policies" / "config" / "us.json").read_text())
    assert drift(current, with_cap("us", 60000), "us", "policies/config/us.json") is None


@pytest.mark.parametrize("stack", [*STACKS, "us-cell-001"])
def test_every_copied_setting_names_the_stack_key_it_comes_from(stack):
    cfg = load_validated(ROOT, stack)
    copied = {(policy, key) for policy, settings in generated(cfg, ROOT, stack).items() for key in settings}
    cell_only = {(policy, "platformStack") for policy in IN_PLATFORM}  # what a cell leaves to its platform
    cell_only |= {("tenant-data-access", key) for key in PLATFORM_NAMES}  # and the platform's names it must not take
    cell_only |= {("tenant-data-access", "cellTenantFile")}  # and the one object it puts in the platform's
    expected = set(SOURCES) - (set() if cfg.is_cell else cell_only)
    assert copied == expected, f"add each new generated setting to SOURCES: {copied ^ expected}"
    for source in SOURCES.values():
        if source.startswith("code:"):
            continue
        for path in source.split(" (")[0].split(", "):  # a real key of the config: reading it cannot fail
            reduce(getattr, path.split("."), cfg)


def test_the_doc_table_is_the_code_s():
    assert sources_table() in DOC and "| `cost.stack_cap_usd` | `budgets-limit-and-cap-enforced.stackCapUsd` |" in DOC


def test_a_new_cell_tenant_leaves_the_platforms_file_current(project_copy):
    """Onboarding a tenant into a cell edits the cell's file only: the platform's pack config does not
    list its cells' tenants (their namespaces carry the tenant prefix, which the pack judges as a
    tenant's), so `--changed` previews the cell alone and the platform's file stays current."""
    cell = (ROOT / "Pulumi.us-cell-001.yaml").read_text()
    added = "    - {id: oompa, plan: starter, monthly_budget_usd: 100, data_tier: pool}\n"
    (project_copy / "Pulumi.us-cell-001.yaml").write_text(cell.replace("  meridian:tenants:\n", "  meridian:tenants:\n" + added))
    current = json.loads((ROOT / "policies" / "config" / "us.json").read_text())
    assert drift(current, load_validated(project_copy, "us"), "us", "policies/config/us.json", project_copy) is None
