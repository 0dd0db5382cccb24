"""`meridian teardown` of a zone with cells (review aws-16, findings 5 and 7): a platform lists its
live cells as blockers, to be destroyed first (exit 1 while it has any); a cell's teardown speaks of
what a cell has (no database, no vault) and lists its pool tenants' prefixes, which outlive it in
the platform's pool buckets."""

from __future__ import annotations

import json
import subprocess

import yaml

from .helpers import ROOT, meridian_cmd

CELL = "us-cell-001"


def _teardowns(*stacks: str) -> dict[str, subprocess.CompletedProcess]:
    procs = {
        s: subprocess.Popen(
            meridian_cmd("teardown", "--stack", s, "--format", "json"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in stacks
    }
    return {s: subprocess.CompletedProcess(p.args, p.wait(timeout=900), *p.communicate()) for s, p in procs.items()}


def test_a_platform_with_cells_is_torn_down_after_them_and_a_cell_says_what_outlives_it():
    runs = _teardowns("us", CELL)
    platform, cell = runs["us"], runs[CELL]

    assert platform.returncode == 1, platform.stderr  # its cells first
    report = json.loads(platform.stdout)
    assert report["cells_first"] == [CELL] and report["platform"] is None
    (blocker,) = [b for b in report["blockers"] if b["kind"] == "cell"]
    assert blocker["name"] == CELL and blocker["urn"] == f"urn:pulumi:{CELL}::meridian::pulumi:pulumi:Stack::meridian-{CELL}"
    first = report["steps"][0]
    assert first["key"] == "cells" and first["clears"] == [blocker["urn"]] and "pulumi stack rm <cell>" in first["how"]
    assert f"destroy the cells first: {CELL} stand on us" in " ".join(platform.stderr.split())

    assert cell.returncode == 0, cell.stderr
    report = json.loads(cell.stdout)
    assert report["platform"] == "us" and report["cells_first"] == []
    text = json.dumps(report["steps"])
    assert "snapshot" not in text and "a cell holds no database and no backup vault" in text
    pool = [
        t["id"]
        for t in yaml.safe_load((ROOT / f"Pulumi.{CELL}.yaml").read_text())["config"]["meridian:tenants"]
        if t.get("data_tier", "pool") == "pool"
    ]
    assert pool, "the example cell has a pool tenant"
    prefixes = sorted((b["name"], b["region"]) for b in report["blockers"] if b["kind"] == "pool-prefix")
    assert prefixes == sorted((f"tenants/t-{tid}/", region) for tid in pool for region in ("us-east-1", "us-west-2"))
    keys = [s["key"] for s in report["steps"]]
    assert keys.index("pool-objects") < keys.index("destroy") and "cells" not in keys
