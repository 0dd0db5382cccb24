"""`MANIFEST.sha256`: the sha256 of every file of a bundle, in `sha256sum` format
(`sha256sum -c MANIFEST.sha256` checks it too), and the verification that finds any change."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.sig"  # an operator's signature of the manifest (meridian.rollout.provenance)
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Every entry under `root` but the manifest and its signature, as sorted POSIX paths; a symlink or special file
    counts as an entry too (verification then reports it: a bundle holds plain files only)."""
    out = []
    for path in root.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(root).as_posix()
        if rel not in (MANIFEST, SIGNATURE):
            out.append(rel)
    return sorted(out)


def write_manifest(root: Path) -> Path:
    lines = [f"{sha256_of(root / rel)}  {rel}" for rel in bundle_files(root)]
    path = root / MANIFEST
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Verification:
    checked: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.malformed)

    def problems(self) -> list[str]:
        return (
            [f"changed: {p}" for p in self.changed]
            + [f"missing: {p}" for p in self.missing]
            + [f"extra (not in the manifest): {p}" for p in self.extra]
            + [f"malformed manifest line: {p}" for p in self.malformed]
        )


def _safe(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return bool(parts) and not PurePosixPath(rel).is_absolute() and ".." not in parts


def verify(root: Path) -> Verification:
    """Compare the bundle with its manifest: every listed file present and unchanged, nothing else."""
    result = Verification()
    listed: dict[str, str] = {}
    for number, line in enumerate((root / MANIFEST).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match or not _safe(match.group(2)) or match.group(2) in listed:
            result.malformed.append(f"line {number}: {line[:120]}")
            continue
        listed[match.group(2)] = match.group(1)
    present = set(bundle_files(root))
    for rel, digest in sorted(listed.items()):
        path = root / rel
        if rel not in present:
            result.missing.append(rel)
        elif path.is_symlink() or not path.is_file():
            result.changed.append(f"{rel} (not a regular file)")
        elif sha256_of(path) != digest:
            result.changed.append(rel)
        else:
            result.checked += 1
    # a directory no listed file lives in is an addition too (an empty one holds no file to list)
    holds = {parent.as_posix() for rel in listed for parent in PurePosixPath(rel).parents}
    empty_dirs = [
        f"{rel}/"
        for path in root.rglob("*")
        if path.is_dir() and not path.is_symlink() and (rel := path.relative_to(root).as_posix()) not in holds
    ]
    result.extra = sorted((present - set(listed)) | set(empty_dirs))
    return result
