"""Which stacks `meridian preview --changed` previews, and why (meridian.changes): on small git
repositories of stack files, no program run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from meridian.changes import RENDERS_EVERY_STACK, detect, renders_every_stack
from meridian.errors import BadInput
from tests.helpers import ROOT

TENANTS = [
    {"id": "vandelay", "plan": "pro", "monthly_budget_usd": 2000, "data_tier": "pool"},
    {"id": "stark", "plan": "enterprise", "monthly_budget_usd": 5000, "data_tier": "silo"},
    {"id": "wonka", "plan": "starter", "monthly_budget_usd": 400, "data_tier": "pool"},
]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def write_stack(repo: Path, stack: str, config: dict) -> None:
    (repo / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


def platform(cells=("us-cell-001", "us-cell-002"), **extra) -> dict:
    return {
        "aws:region": "us-east-1",
        "meridian:zone": "us",
        "meridian:cells": {"size": 1000, "names": list(cells)},
        "meridian:tenants": [{"id": "acme", "plan": "pro", "monthly_budget_usd": 100}],
        **extra,
    }


def cell(tenants, **extra) -> dict:
    return {"aws:region": "us-east-1", "meridian:platform": "us", "meridian:tenants": tenants, **extra}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project on `main` with a zone (`us`, two cells) and a platform without cells (`eu`)."""
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "Pulumi.yaml").write_text("name: meridian\nruntime: python\n")
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "tenant.py").write_text("# the program\n")
    (tmp_path / "policies" / "config").mkdir(parents=True)
    (tmp_path / "policies" / "config" / "us-cell-001.json").write_text("{}\n")
    (tmp_path / "policies" / "tenancy.py").write_text("# a rule\n")
    (tmp_path / "README.md").write_text("docs\n")
    write_stack(tmp_path, "us", platform())
    write_stack(tmp_path, "us-cell-001", cell(TENANTS))
    write_stack(tmp_path, "us-cell-002", cell([{"id": "hooli", "plan": "pro", "monthly_budget_usd": 100}]))
    write_stack(tmp_path, "eu", {"aws:region": "eu-west-1", "meridian:zone": "eu"})
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    git(tmp_path, "checkout", "-qb", "change")
    return tmp_path


def previewed(repo: Path, base: str | None = None) -> dict[str, tuple[bool, str]]:
    return {s: (c.subset, "; ".join(c.reasons)) for s, c in detect(repo, base).stacks.items()}


def test_nothing_changed_previews_nothing(repo):
    assert previewed(repo) == {}
    (repo / "README.md").write_text("docs, edited\n")
    assert previewed(repo) == {}  # a file outside the list renders nothing


def test_an_added_tenant_previews_only_its_cell_as_a_subset(repo):
    write_stack(repo, "us-cell-001", cell([*TENANTS, {"id": "initech", "plan": "starter", "monthly_budget_usd": 50}]))
    changes = detect(repo, None)  # default: the merge-base with main
    assert list(changes.stacks) == ["us-cell-001"]
    change = changes.stacks["us-cell-001"]
    assert change.subset and change.added == ["initech"] and change.head_tenants == ["initech"] and change.base_tenants == []
    assert "added initech" in change.reasons[0]
    assert changes.base.ref == "merge-base of HEAD and main"


def test_modified_and_removed_tenants_render_from_each_side(repo):
    stark = {**TENANTS[1], "quota": {"gql_qps": 900}}
    write_stack(repo, "us-cell-001", cell([TENANTS[0], stark]))
    change = detect(repo, None).stacks["us-cell-001"]
    assert (change.added, change.modified, change.removed) == ([], ["stark"], ["wonka"])
    assert change.head_tenants == ["stark"] and change.base_tenants == ["stark", "wonka"]


def test_committed_and_uncommitted_changes_both_count(repo):
    write_stack(repo, "us-cell-001", cell(TENANTS[:2]))
    git(repo, "commit", "-qam", "remove wonka")
    write_stack(repo, "us-cell-002", cell([]))
    assert set(previewed(repo)) == {"us-cell-001", "us-cell-002"}


def test_a_platform_config_change_previews_the_platform_and_its_cells_whole(repo):
    write_stack(repo, "us", platform(**{"meridian:force_delete": True}))
    got = previewed(repo)
    assert set(got) == {"us", "us-cell-001", "us-cell-002"}
    assert not any(subset for subset, _ in got.values())
    assert "meridian:force_delete" in got["us"][1] and "its platform us" in got["us-cell-001"][1]
    assert "eu" not in got


def test_a_platform_inline_tenant_change_previews_the_platform_only(repo):
    write_stack(repo, "us", platform(**{"meridian:tenants": []}))
    assert previewed(repo) == {
        "us": (False, "its config changed: meridian:tenants (its inline tenants: its cells do not read them)")
    }


def test_a_platform_change_hidden_in_a_cell_file_previews_that_cell_whole(repo):
    """A key a cell may not hold (loading refuses it) or another region: never a subset."""
    write_stack(repo, "us-cell-001", cell([*TENANTS, {"id": "x", "plan": "pro"}], **{"meridian:force_delete": True}))
    subset, why = previewed(repo)["us-cell-001"]
    assert not subset and "meridian:force_delete" in why
    write_stack(repo, "us-cell-001", cell(TENANTS, **{"aws:region": "us-west-2"}))
    assert previewed(repo)["us-cell-001"] == (False, "Pulumi.us-cell-001.yaml: aws:region changed (not only its tenants)")


def test_a_cell_pointing_at_another_platform_is_whole(repo):
    write_stack(
        repo, "us-cell-002", {**cell([{"id": "hooli", "plan": "pro", "monthly_budget_usd": 100}]), "meridian:platform": "eu"}
    )
    assert previewed(repo)["us-cell-002"][0] is False


def test_reordered_tenants_preview_the_cell_whole(repo):
    write_stack(repo, "us-cell-001", cell(list(reversed(TENANTS))))
    assert previewed(repo) == {
        "us-cell-001": (False, "Pulumi.us-cell-001.yaml: its tenants were reordered (the cell's tenant file lists them in order)")
    }


def test_a_tenant_moved_between_cells_previews_both_and_says_so(repo):
    write_stack(repo, "us-cell-001", cell(TENANTS[:2]))
    write_stack(repo, "us-cell-002", cell([{"id": "hooli", "plan": "pro", "monthly_budget_usd": 100}, TENANTS[2]]))
    changes = detect(repo, None)
    one, two = changes.stacks["us-cell-001"], changes.stacks["us-cell-002"]
    assert one.subset and one.removed == ["wonka"] and "tenant wonka moved to us-cell-002" in one.reasons
    assert two.subset and two.added == ["wonka"] and "tenant wonka moved from us-cell-001" in two.reasons


@pytest.mark.parametrize("path", ["components/tenant.py", "policies/tenancy.py", "Pulumi.yaml"])
def test_a_program_or_pack_change_previews_every_stack_of_every_zone(repo, path):
    (repo / path).write_text((repo / path).read_text() + "# changed\n")
    got = previewed(repo)
    assert set(got) == {"us", "us-cell-001", "us-cell-002", "eu"}
    assert not any(subset for subset, _ in got.values())
    assert path in got["eu"][1]


def test_a_new_file_in_the_program_counts_untracked(repo):
    (repo / "components" / "new.py").write_text("# new\n")
    assert set(previewed(repo)) == {"us", "us-cell-001", "us-cell-002", "eu"}


def test_a_stacks_own_policy_config_previews_that_stack(repo):
    (repo / "policies" / "config" / "us-cell-001.json").write_text('{"x": 1}\n')
    assert previewed(repo) == {"us-cell-001": (False, "its policy config policies/config/us-cell-001.json changed")}


def test_a_new_cell_is_previewed_whole_with_no_base(repo):
    write_stack(repo, "us", platform(cells=("us-cell-001", "us-cell-002", "us-cell-003")))
    write_stack(repo, "us-cell-003", cell([{"id": "pied", "plan": "pro", "monthly_budget_usd": 100}]))
    changes = detect(repo, None)
    assert not changes.stacks["us-cell-003"].at_base and not changes.stacks["us-cell-003"].subset
    assert [s.stack for s in changes.ordered()][0] == "us"  # the platform before its cells


def test_a_removed_stack_file_is_listed_not_previewed(repo):
    (repo / "Pulumi.us-cell-002.yaml").unlink()
    write_stack(repo, "us", platform(cells=("us-cell-001",)))
    changes = detect(repo, None)
    assert changes.removed_stacks == ["us-cell-002"] and "us-cell-002" not in changes.stacks


def test_an_explicit_base_ref(repo):
    write_stack(repo, "us-cell-002", cell([]))
    git(repo, "commit", "-qam", "empty cell 2")
    assert previewed(repo, "HEAD") == {}
    assert set(previewed(repo, "main")) == {"us-cell-002"}


def test_a_project_in_a_subdirectory_of_the_repository(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    project = tmp_path / "infra"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: meridian\n")
    write_stack(project, "us", platform(cells=()))
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    write_stack(project, "us", platform(cells=(), **{"meridian:force_delete": True}))
    assert list(detect(project, None).stacks) == ["us"]


def test_outside_a_git_checkout_is_bad_input(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: meridian\n")
    with pytest.raises(BadInput, match="not inside a git checkout"):
        detect(tmp_path, None)


def test_an_unknown_ref_is_bad_input(repo):
    with pytest.raises(BadInput, match="--base no-such-branch: not a commit git knows"):
        detect(repo, "no-such-branch")


def test_no_main_branch_asks_for_a_base(repo):
    git(repo, "branch", "-qm", "main", "trunk")
    with pytest.raises(BadInput, match="no branch 'main': pass --base REF"):
        detect(repo, None)


def test_the_listed_paths_exist_in_the_project():
    """The list in docs/ci.md and here name real parts of the project (a rename would silently drop one)."""
    for path in RENDERS_EVERY_STACK:
        assert (ROOT / path.rstrip("/")).exists(), path
    assert renders_every_stack("components/cell.py") and renders_every_stack("policies/tenancy.py")
    assert not renders_every_stack("policies/config/us.json") and not renders_every_stack("docs/ci.md")
    assert not renders_every_stack("components.md")  # a directory entry matches only under it
    ci = (ROOT / "docs" / "ci.md").read_text()
    assert all(f"`{p}`" in ci for p in RENDERS_EVERY_STACK), "docs/ci.md lists every path of RENDERS_EVERY_STACK"
