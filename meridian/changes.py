"""What a change touches: the stacks whose preview can differ between a base commit and the working
tree, and why (`meridian preview --changed`).

Stack files are compared as parsed config (`git show BASE:Pulumi.<s>.yaml` against the file on
disk); every other changed path is matched against `RENDERS_EVERY_STACK`, the files that change
what every stack renders or how it is judged. A platform's config change means its cells too (a
cell renders from its platform's config), except a change to its own inline tenants only (a cell
never reads those). A cell whose tenants alone changed is previewed as a subset: its added and
modified tenants (and its removed ones, from the base config, for the diff); any other change to
a cell file, or a reordering of its tenants (the tenant file lists them in order), previews it whole.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meridian.errors import BadInput
from stackconfig.zone import FAST_LOADER, PLATFORM_KEY, TENANTS_KEY, stack_file, zone_entry

DEFAULT_BRANCH = "main"

# Paths (relative to the project directory; a trailing `/` is a directory) whose change can change
# what every stack renders or how the preview judges it, so every stack of every zone is previewed:
RENDERS_EVERY_STACK: tuple[str, ...] = (
    # the program, and what it imports from the project (engine.run.PROGRAM_PACKAGES)
    "__main__.py",
    "Pulumi.yaml",  # the project's config defaults every stack inherits
    "components/",
    "stackconfig/",
    "service/",  # the program renders the service's settings and tenant files with its models
    # the pins: another SDK or provider version renders differently
    "requirements.txt",
    "constraints.txt",
    "pyproject.toml",
    # the pack (a stack's own policy config, `policies/config/<stack>.json`, is that stack's alone)
    "policies/",
    # the offline engine: its mocks answer the program, its cost model prices the plan
    "meridian/engine/",
    "meridian/costmodel.py",
    "meridian/data/",
)
POLICY_CONFIG_DIR = "policies/config/"


@dataclass(frozen=True)
class Base:
    """The commit the working tree is compared with."""

    ref: str  # as given (or `merge-base HEAD main`)
    commit: str
    repo_root: Path
    prefix: str  # the project directory inside the repository ("" or "sub/dir/")

    def show(self, path: str) -> str | None:
        """A file of the project at the base commit, or None if it did not exist there."""
        done = _git(self.repo_root, "show", f"{self.commit}:{self.prefix}{path}", check=False)
        return done.stdout if done.returncode == 0 else None


@dataclass
class StackChange:
    """One stack to preview, and why."""

    stack: str
    zone: str  # its platform stack (itself for a platform)
    role: str  # "platform" | "cell"
    subset: bool = False  # only the tenants named below (a cell whose tenants alone changed)
    reasons: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    at_base: bool = True  # the stack file exists at the base (else: no base plan, everything is a create)

    @property
    def head_tenants(self) -> list[str]:
        """The tenants a subset preview renders from the working tree's config."""
        return self.added + self.modified

    @property
    def base_tenants(self) -> list[str]:
        """The tenants a subset's base preview renders from the base config (for the diff)."""
        return self.modified + self.removed

    def whole(self, reason: str) -> None:
        self.subset = False
        if reason not in self.reasons:
            self.reasons.append(reason)


@dataclass
class ChangeSet:
    base: Base
    changed_paths: list[str]
    stacks: dict[str, StackChange]  # in preview order: platforms before their cells
    removed_stacks: list[str]  # stack files deleted since the base: not previewed (`pulumi stack rm` after destroy)

    def ordered(self) -> list[StackChange]:
        return sorted(self.stacks.values(), key=lambda s: (s.zone, s.role != "platform", s.stack))


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise BadInput("--changed compares with a git commit: git is not installed") from None
    if check and done.returncode != 0:
        raise BadInput(f"git {' '.join(args)} (in {cwd}): {done.stderr.strip() or 'failed'}")
    return done


def resolve_base(project_dir: Path, ref: str | None) -> Base:
    """The base commit: `ref`, or the merge-base of HEAD with `main`. Exit 2 outside a git checkout or
    for a ref git does not know."""
    inside = _git(project_dir, "rev-parse", "--show-toplevel", check=False)
    if inside.returncode != 0:
        raise BadInput(f"--changed compares with a git commit, but {project_dir} is not inside a git checkout")
    root = Path(inside.stdout.strip())
    prefix = _git(project_dir, "rev-parse", "--show-prefix").stdout.strip()
    if ref is None:
        if _git(root, "rev-parse", "--verify", "--quiet", f"{DEFAULT_BRANCH}^{{commit}}", check=False).returncode != 0:
            raise BadInput(
                f"--changed without --base compares with the merge-base of HEAD and {DEFAULT_BRANCH!r}, "
                f"but this checkout has no branch {DEFAULT_BRANCH!r}: pass --base REF (e.g. origin/main)"
            )
        merge_base = _git(root, "merge-base", "HEAD", DEFAULT_BRANCH, check=False)
        if merge_base.returncode != 0:
            raise BadInput(f"HEAD and {DEFAULT_BRANCH!r} have no common commit: pass --base REF")
        return Base(f"merge-base of HEAD and {DEFAULT_BRANCH}", merge_base.stdout.strip(), root, prefix)
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if commit.returncode != 0:
        raise BadInput(f"--base {ref}: not a commit git knows here (a branch, tag or sha; fetch it first in a shallow clone)")
    return Base(ref, commit.stdout.strip(), root, prefix)


def changed_paths(base: Base) -> list[str]:
    """Files of the project that differ between the base commit and the working tree (committed,
    staged, unstaged or untracked), relative to the project directory."""
    scope = base.prefix or "."
    diffed = _git(base.repo_root, "diff", "--name-only", "--no-renames", base.commit, "--", scope).stdout.split()
    untracked = _git(base.repo_root, "ls-files", "--others", "--exclude-standard", "--", scope).stdout.split()
    return sorted({p.removeprefix(base.prefix) for p in [*diffed, *untracked]})


def renders_every_stack(path: str) -> bool:
    if path.startswith(POLICY_CONFIG_DIR) and path.endswith(".json"):
        return False  # one stack's own policy config
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in RENDERS_EVERY_STACK)


def _config(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        doc = yaml.load(text, Loader=FAST_LOADER) or {}
    except yaml.YAMLError:
        return {}  # unreadable: it differs, and loading the stack reports what is wrong
    config = doc.get("config") if isinstance(doc, dict) else None
    return config if isinstance(config, dict) else {}


def _tenants_by_id(config: dict[str, Any]) -> dict[str, Any]:
    entries = config.get(TENANTS_KEY)
    entries = entries if isinstance(entries, list) else []
    return {e["id"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)}


def _stack_name(path: str) -> str | None:
    if "/" in path or not (path.startswith("Pulumi.") and path.endswith(".yaml")) or path == "Pulumi.yaml":
        return None
    return path.removeprefix("Pulumi.").removesuffix(".yaml")


def detect(project_dir: Path, ref: str | None) -> ChangeSet:
    """Every stack whose preview can differ from the base's, and why."""
    base = resolve_base(project_dir, ref)
    paths = changed_paths(base)
    named = {s: zone_entry(project_dir / stack_file(s)) for s in _stacks_on_disk(project_dir)}
    zone_of = {s: e[0] if e is not None and isinstance(e[0], str) else s for s, e in named.items()}
    heads = {s: {PLATFORM_KEY: zone_of[s]} if zone_of[s] != s else {} for s in named}  # the role of each stack
    stacks: dict[str, StackChange] = {}
    removed_stacks: list[str] = []

    def entry(stack: str) -> StackChange:
        if stack not in stacks:
            role = "cell" if PLATFORM_KEY in (heads[stack] or {}) else "platform"
            stacks[stack] = StackChange(stack, zone_of[stack], role)
        return stacks[stack]

    def cells_of(platform: str) -> Iterable[str]:
        return sorted(s for s, z in zone_of.items() if z == platform and s != platform)

    def whole_zone(platform: str, reason: str) -> None:
        entry(platform).whole(reason)
        for cell in cells_of(platform):
            entry(cell).whole(f"its platform {platform}: {reason}")

    every = sorted(p for p in paths if renders_every_stack(p))
    if every:
        shown = ", ".join(every[:5]) + (f" and {len(every) - 5} more" if len(every) > 5 else "")
        for platform in sorted(s for s in heads if zone_of[s] == s):
            whole_zone(platform, f"changes what every stack renders or how it is judged: {shown}")

    for path in paths:
        if path.startswith(POLICY_CONFIG_DIR) and path.endswith(".json"):
            stack = Path(path).stem
            if stack in heads:
                entry(stack).whole(f"its policy config {path} changed")
            continue
        stack = _stack_name(path)
        if stack is None:
            continue
        if stack not in heads:
            removed_stacks.append(stack)
            continue
        before, after = _config(base.show(path)), _config((project_dir / path).read_text(encoding="utf-8")) or {}
        if before is None:
            change = entry(stack)
            change.at_base = False
            if change.role == "platform":
                whole_zone(stack, f"new stack ({path} is not in the base)")
            else:
                change.whole(f"new cell ({path} is not in the base)")
            continue
        if before == after:
            continue
        if entry(stack).role == "platform":
            _platform_change(stack, before, after, entry, whole_zone)
        else:
            _cell_change(entry(stack), path, before, after)

    _name_moves(stacks)
    return ChangeSet(base, paths, {s.stack: s for s in sorted(stacks.values(), key=_order)}, sorted(removed_stacks))


def _order(s: StackChange) -> tuple[str, bool, str]:
    return (s.zone, s.role != "platform", s.stack)


def _stacks_on_disk(project_dir: Path) -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in project_dir.glob("Pulumi.*.yaml"))


def _keys_changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _platform_change(stack: str, before: dict, after: dict, entry, whole_zone) -> None:
    keys = _keys_changed(before, after)
    if keys == [TENANTS_KEY]:  # a cell renders from its platform's config without the platform's own tenants
        entry(stack).whole(f"its config changed: {TENANTS_KEY} (its inline tenants: its cells do not read them)")
    else:
        whole_zone(stack, f"its config changed: {', '.join(keys)}")


def _cell_change(change: StackChange, path: str, before: dict, after: dict) -> None:
    others = [k for k in _keys_changed(before, after) if k != TENANTS_KEY]
    if others:  # its platform, its region, or a setting a cell may not hold (loading it says so)
        change.whole(f"{path}: {', '.join(others)} changed (not only its tenants)")
        return
    old, new = _tenants_by_id(before), _tenants_by_id(after)
    kept = [t for t in new if t in old]
    if kept != [t for t in old if t in new]:
        change.whole(f"{path}: its tenants were reordered (the cell's tenant file lists them in order)")
        return
    if len(old) != len(before.get(TENANTS_KEY) or []) or len(new) != len(after.get(TENANTS_KEY) or []):
        change.whole(f"{path}: a tenant entry without an id, or an id twice (loading the stack says which)")
        return
    change.added = [t for t in new if t not in old]
    change.removed = [t for t in old if t not in new]
    change.modified = [t for t in kept if old[t] != new[t]]
    if change.reasons:  # already whole for another reason
        return
    change.subset = True
    parts = [
        f"{label} {', '.join(ids)}"
        for label, ids in (("added", change.added), ("modified", change.modified), ("removed", change.removed))
        if ids
    ]
    change.reasons.append(f"its tenants changed: {'; '.join(parts)}")


def _name_moves(stacks: dict[str, StackChange]) -> None:
    """A tenant removed from one stack and added to another moved: each side says so."""
    added = {t: s.stack for s in stacks.values() for t in s.added}
    for s in stacks.values():
        for t in s.removed:
            if t in added and added[t] != s.stack:
                s.reasons.append(f"tenant {t} moved to {added[t]}")
                stacks[added[t]].reasons.append(f"tenant {t} moved from {s.stack}")
