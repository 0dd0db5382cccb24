"""`meridian preflight --zone Z --tenants N [--cell-size S]` judges the zone `meridian preview --zone Z
--tenants N` previews: the same synthetic cells, held in memory (one option and one scaling function,
commands.preview.zone.scaled_zone), every stack of the account summed."""

from __future__ import annotations

import json

import pytest

from .helpers import full_project_copy, run_meridian

pytestmark = pytest.mark.slow  # previews every stack of the account


def test_preflight_of_a_zone_at_n_tenants_judges_its_generated_cells(tmp_path):
    project = full_project_copy(tmp_path)
    for zone in ("eu", "apac"):  # the account judged is the us zone's stacks alone (fewer previews)
        (project / f"Pulumi.{zone}.yaml").unlink()
    report = tmp_path / "account.json"
    cli = run_meridian(
        "preflight", "--zone", "us", "--tenants", "12", "--cell-size", "4", "--json", str(report), cwd=project, timeout=900
    )
    (account,) = json.loads(report.read_text())["accounts"]
    # the repo's 7 tenants (us 4, us-cell-001 3) and 5 synthetic ones in two new cells, as the preview makes them
    assert account["stacks"] == ["us", "us-cell-001", "us-cell-002", "us-cell-003"], cli.out + cli.err
    assert "us-cell-003: deploy preflight" in cli.out  # each generated cell's own preflight ran too
    assert not (project / "Pulumi.us-cell-002.yaml").exists()  # held in memory, never written
    checks = {c["check"]: c for c in account["checks"]}
    assert checks["account-quotas"]["passed"] and checks["account-limits"]["passed"], cli.out
    assert cli.code == (0 if account["passed"] else 1), cli.out + cli.err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--zone", "us", "--cell-size", "4"), "--cell-size sizes the synthetic cells of --tenants N: give --tenants too"),
        (("--zone", "us", "--tenants", "5"), "--tenants 5: zone us already has 7 tenants (us 4, us-cell-001 3)"),
        (("--zone", "us", "--tenants", "12", "--cell-size", "3"), "over cells.size 3"),
    ],
)
def test_zone_tenants_bad_input_exits_2_as_preview_does(args, says):
    for command in ("preview", "preflight"):
        cli = run_meridian(command, *args)
        assert cli.code == 2, (command, cli.out + cli.err)
        assert says in " ".join((cli.out + cli.err).split()), (command, cli.out + cli.err)
        assert "Traceback" not in cli.err


@pytest.mark.parametrize(
    "args",
    [
        ("--cell-size", "4"),
        ("--account", "123456789012", "--tenants", "12"),
        ("--zone", "us", "--tenants", "12", "--plans", "/tmp"),
    ],
)
def test_preflight_scales_a_zone_only(args):
    cli = run_meridian("preflight", *args)
    assert cli.code == 2, cli.out + cli.err
    assert (
        "--tenants/--cell-size fill a zone with synthetic cells to preview: give them with --zone Z, without --plans"
        in " ".join((cli.out + cli.err).split())
    )
