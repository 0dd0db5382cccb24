"""Stack files held in memory: what `meridian preview --zone us --tenants N` adds to a zone (its
synthetic cells, its platform listing them) without writing a file. The one parser reads a held
document wherever it would read `Pulumi.<stack>.yaml`, so a held stack is validated, checked across
its zone and run by the program exactly as a file would be.

Held per process (the program's runtime state is per process too): the engine installs the same
documents in the program's copy of this module when the program imports its own `stackconfig`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HELD: dict[Path, dict[str, Any]] = {}  # resolved path of a stack file -> its document as YAML would load it


def hold(documents: Mapping[Path, dict[str, Any]]) -> None:
    """Hold `documents` (path -> document), replacing what was held at those paths."""
    _HELD.update({Path(p).resolve(): doc for p, doc in documents.items()})


def held() -> dict[Path, dict[str, Any]]:
    return dict(_HELD)


@contextmanager
def holding(documents: Mapping[Path, dict[str, Any]]) -> Iterator[None]:
    before = held()
    hold(documents)
    try:
        yield
    finally:
        _HELD.clear()
        _HELD.update(before)


def document(path: Path) -> dict[str, Any] | None:
    """The held document at `path`, or None (then the file is read)."""
    if not _HELD:
        return None
    return _HELD.get(path.resolve())


def exists(path: Path) -> bool:
    return document(path) is not None or path.is_file()


def stack_files(project_dir: Path) -> list[Path]:
    """Every `Pulumi.<stack>.yaml` of the project, the held ones included, sorted by name."""
    found = {p.name: p for p in project_dir.glob("Pulumi.*.yaml")}
    root = project_dir.resolve()
    for p in _HELD:
        if p.parent == root and p.name.startswith("Pulumi.") and p.name.endswith(".yaml") and p.name != "Pulumi.yaml":
            found.setdefault(p.name, project_dir / p.name)
    return [found[name] for name in sorted(found)]
