"""`meridian preview --zone us --format markdown [--diff BASE_DIR]`: the zone as one PR comment,
each stack diffed against a base zone's `--json DIR`."""

from __future__ import annotations

import shutil

import pytest
import yaml

from .helpers import ROOT, full_project_copy, run_meridian

CELL = "us-cell-001"
pytestmark = pytest.mark.slow


def test_onboarding_a_tenant_diffs_only_its_cell(tmp_path, zone_us):
    """The base: the repo's zone (the run's `--zone us --json DIR`, conftest); the head: a copy onboarding a tenant."""
    project = tmp_path / "project"
    project.mkdir()
    full_project_copy(project)
    shutil.copy(ROOT / f"Pulumi.{CELL}.yaml", project / f"Pulumi.{CELL}.yaml")
    assert zone_us.cli.code == 0, zone_us.cli.err
    base = shutil.copytree(zone_us.dir, tmp_path / "base")
    path = project / f"Pulumi.{CELL}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:tenants"].append({"id": "pied-piper", "plan": "starter", "monthly_budget_usd": 50})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    got = run_meridian("preview", "--zone", "us", "--format", "markdown", "--diff", str(base), cwd=project, timeout=900)
    assert got.code == 0, got.err
    comment = got.out
    assert comment.startswith("<!-- meridian:zone-preview:us -->\n## meridian preview: zone `us` (2 stacks)")
    assert "| `us` | platform |" in comment and f"| `{CELL}` | cell |" in comment
    assert "### stack `us`: no change against the base" in comment
    cell = comment.split(f"### stack `{CELL}`", 1)[1]
    assert "resources +20 ~2 -0" in cell  # the tenant's slice, and the cell's two tenant files list it
    assert "tenant-file" in cell and "pied-piper" in cell


def test_a_base_that_is_no_zone_preview_exits_2(tmp_path):
    got = run_meridian("preview", "--zone", "us", "--format", "markdown", "--diff", str(tmp_path))
    assert got.code == 2 and "no zone.json there" in got.err
    got = run_meridian("preview", "--zone", "us", "--diff", str(tmp_path))
    assert got.code == 2 and "does not take --diff without --format markdown" in got.err
