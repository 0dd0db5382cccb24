"""Stack files are parsed once per content in a process (stackconfig.loading, stackconfig.zone):
an edit is seen at once, and what a caller gets is its own copy. A zone's files are parsed once per
preview: its workers, and the programs they run, learn what the main process read (and still
judge the whole zone)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackconfig import ConfigError, load_stack, zone
from stackconfig.loading import _load_yaml
from stackconfig.zone import cells_of

from .helpers import ROOT


def write(path, tenants):
    config = {"aws:region": "us-east-1", "meridian:platform": "us", "meridian:tenants": tenants}
    path.write_text(yaml.safe_dump({"config": config}))


def test_an_edited_cell_file_is_read_again(tmp_path):
    path = tmp_path / "Pulumi.us-cell-001.yaml"
    write(path, [{"id": "acme", "monthly_budget_usd": 10}])
    assert [c.tenant_ids for c in cells_of(tmp_path, "us")] == [("acme",)]
    write(path, [{"id": "acme", "monthly_budget_usd": 10}, {"id": "hooli", "monthly_budget_usd": 5}])
    (cell,) = cells_of(tmp_path, "us")
    assert cell.tenant_ids == ("acme", "hooli") and cell.budgets_usd == 15


def test_the_same_file_elsewhere_is_the_same_entry_and_a_copy_is_the_callers(tmp_path):
    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        write(tmp_path / where / "Pulumi.us-cell-001.yaml", [{"id": "acme"}])
    assert cells_of(tmp_path / "a", "us") == cells_of(tmp_path / "b", "us")
    doc = _load_yaml(tmp_path / "a" / "Pulumi.us-cell-001.yaml")
    doc["config"]["meridian:tenants"].append({"id": "mutated"})
    again = _load_yaml(tmp_path / "b" / "Pulumi.us-cell-001.yaml")
    assert again["config"]["meridian:tenants"] == [{"id": "acme"}]


# --- a zone's files read once per preview: the entries the main process read, learnt by its workers ---

CELL, OTHER = "us-cell-009", "us-cell-002"


def _tenant(tid: str) -> dict:
    return {"id": tid, "plan": "starter", "monthly_budget_usd": 300, "data_tier": "pool"}


@pytest.fixture
def two_cells(project_copy: Path) -> Path:
    platform = project_copy / "Pulumi.us.yaml"
    doc = yaml.safe_load(platform.read_text())
    doc["config"]["meridian:cells"] = {"names": [OTHER, CELL]}
    platform.write_text(yaml.safe_dump(doc, sort_keys=False))
    write(project_copy / f"Pulumi.{CELL}.yaml", [_tenant("cellco")])
    write(project_copy / f"Pulumi.{OTHER}.yaml", [_tenant("other")])
    return project_copy


@pytest.fixture
def fresh_entries(monkeypatch) -> list[str]:
    """This process as a worker starts: no entry read yet; the names of the files it parses."""
    monkeypatch.setattr(zone, "_ZONE_ENTRIES", {})
    parsed: list[str] = []
    read = zone._config_of
    monkeypatch.setattr(zone, "_config_of", lambda path: parsed.append(path.name) or read(path))
    return parsed


def _learnt_from_another_process(project: Path) -> zone.KnownEntries:
    """What the main process hands its workers, as it arrives there (pickled)."""
    zone.cells_of(project, "us")
    return pickle.loads(pickle.dumps(zone.known_entries()))


def test_a_worker_judges_the_whole_zone_from_entries_it_learnt_without_parsing_them(two_cells, fresh_entries):
    known = _learnt_from_another_process(two_cells)
    zone._ZONE_ENTRIES.clear()
    fresh_entries.clear()
    zone.learn(known)
    assert load_stack(two_cells, CELL).tenants[0].id == "cellco"
    assert fresh_entries == []  # every stack file of the zone: its entry learnt, none parsed again


def test_a_zone_error_is_caught_on_learnt_entries(two_cells, fresh_entries):
    write(two_cells / f"Pulumi.{OTHER}.yaml", [_tenant("other"), _tenant("cellco")])
    known = _learnt_from_another_process(two_cells)
    zone._ZONE_ENTRIES.clear()
    fresh_entries.clear()
    zone.learn(known)
    with pytest.raises(ConfigError) as info:
        load_stack(two_cells, CELL)
    assert [str(p) for p in info.value.problems] == [
        f"Pulumi.{CELL}.yaml: meridian:tenants['cellco'].id: tenant 'cellco' is also in stack {OTHER} "
        f"(Pulumi.{OTHER}.yaml): a tenant lives in exactly one stack of the zone (moving one is an edit of both files: "
        "docs/operations.md)"
    ]
    assert fresh_entries == []


def test_a_file_edited_since_its_entry_was_learnt_is_parsed_again(two_cells, fresh_entries):
    known = _learnt_from_another_process(two_cells)
    zone._ZONE_ENTRIES.clear()
    zone.learn(known)
    write(two_cells / f"Pulumi.{OTHER}.yaml", [_tenant("other"), _tenant("cellco")])  # after the main process read it
    fresh_entries.clear()
    with pytest.raises(ConfigError, match=f"tenant 'cellco' is also in stack {OTHER}"):
        load_stack(two_cells, CELL)
    assert fresh_entries == [f"Pulumi.{OTHER}.yaml"]


def test_entries_read_by_another_version_of_the_reader_are_not_learnt(two_cells, fresh_entries):
    _, entries = _learnt_from_another_process(two_cells)
    zone._ZONE_ENTRIES.clear()
    zone.learn(("a-base-commits-reader", entries))
    assert zone.known_entries()[1] == {}


def test_the_engine_hands_the_entries_to_the_programs_own_stackconfig(two_cells):
    """The program imports `stackconfig` from its project (a copy here, as a base commit's is): that
    copy learns what meridian's read, and one of another version does not."""
    script = f"""
import sys
from pathlib import Path
from meridian.engine.run import _program_learns, use_project_modules
from stackconfig import zone
project = Path({str(two_cells)!r})
zone.cells_of(project, "us")
known = zone.known_entries()
use_project_modules(project)
_program_learns(known)
import stackconfig.zone as program_zone
assert program_zone is not zone and Path(program_zone.__file__).is_relative_to(project)
print(sorted(program_zone.known_entries()[1]) == sorted(known[1]), len(known[1]))
"""
    run = lambda: subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)  # noqa: E731
    same = run()
    assert same.returncode == 0 and same.stdout.split() == ["True", str(len(list(two_cells.glob("Pulumi.*.yaml"))))], same
    reader = two_cells / "stackconfig" / "zone.py"
    reader.write_text(reader.read_text() + "\n# another version of the reader\n")
    other = run()
    assert other.returncode == 0 and other.stdout.split()[0] == "False", other
