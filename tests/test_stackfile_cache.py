"""Stack files are parsed once per content in a process (stackconfig.loading, stackconfig.zone):
an edit is seen at once, and what a caller gets is its own copy."""

from __future__ import annotations

import yaml

from stackconfig.loading import _load_yaml
from stackconfig.zone import cells_of


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
