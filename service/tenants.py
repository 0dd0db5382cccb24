"""The tenants a service serves: the inline ones of its settings, plus every `*.json` tenant file in
its `tenant_files_dir` (in a cluster, one per cell stack: the Secret `meridian-tenants-<cell>`,
mounted by components.workload), followed while it runs.

`TenantDirectory.reload` stats the directory's files and reads only those whose inode, mtime or
size changed (the kubelet replaces a mounted Secret's file atomically, a new inode each time); the
app calls it from one background task every `tenant_poll_s`, in a worker thread, and swaps the set
it composed in on its event loop. Requests only ever read `current`, an immutable `TenantSet`: no
request does file I/O.

A bad change never drops a serving tenant:
- a file that cannot be read, parsed or validated is logged with the file and the problem, and what
  that file held before stays in force (nothing, for a file never read well);
- a file that would serve an id (or a key digest) another source already serves (the inline
  settings, or another file) is refused, logged naming both files, and its previous content stays;
  its new content is tried again on every reload, so a tenant moved between two cells, whose two
  files change in either order, is served from its new file as soon as the old one lets it go;
- a file that disappears keeps its tenants for `MISSING_FILE_GRACE_S` (logged when it goes, when
  it comes back, and when the grace ends and its tenants are dropped): a Secret deleted and created
  again (a replacement, or an operator's `kubectl` fix) is missing from the pod's projected volume
  until the kubelet's next resync, about a minute, and its tenants must not get 401s meanwhile; a
  cell's Secret deleted for good (the cell destroyed) stops serving its tenants after the grace.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from service.auth import KeyRing
from service.quotas import TenantQuota
from service.settings import TenantData, TenantEntry, load_tenant_file

log = logging.getLogger("service.tenants")

SUFFIX = ".json"
# A Kubernetes Secret holds at most 1 MiB; anything far larger is not a tenant file.
MAX_FILE_BYTES = 8 * 1024 * 1024
# How long a missing file's tenants stay served: the kubelet resyncs a pod's projected volume every
# sync period (1 min) plus its Secret cache's TTL, so a Secret back within one resync is missed for
# up to ~2 min; 3 min covers that and the poll, and bounds how long a destroyed cell's tenants outlive it.
MISSING_FILE_GRACE_S = 180.0


class TenantSet:
    """One consistent set of tenants: every id and every key digest once."""

    def __init__(self, entries: Iterable[TenantEntry]):
        self.entries: Mapping[str, TenantEntry] = {t.id: t for t in entries}
        self._ring = KeyRing({d: t.id for t in self.entries.values() for d in t.key_sha256})

    def tenant_of(self, key: str | None) -> str | None:
        return self._ring.tenant_of(key)

    def quotas(self) -> dict[str, TenantQuota]:
        return {t.id: t.quota for t in self.entries.values()}

    def data(self) -> dict[str, TenantData]:
        return {t.id: t.data for t in self.entries.values() if t.data is not None}

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class _File:
    seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) when last read
    served: tuple[TenantEntry, ...] = ()  # what is in force
    wanted: tuple[TenantEntry, ...] | None = None  # read well but refused (a duplicate): tried again each reload
    refused: str = ""  # the last refusal logged, so a lasting one is logged once
    missing_since: float | None = None  # when the file was last seen gone (its tenants served through the grace)


class TenantDirectory:
    """The inline tenants plus the tenant files of `directory` (None: inline only)."""

    def __init__(
        self,
        inline: Iterable[TenantEntry],
        directory: str | Path | None,
        *,
        inline_source: str = "the settings file",
        grace_s: float = MISSING_FILE_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.inline = tuple(inline)
        self.inline_source = inline_source
        self.directory = Path(directory) if directory is not None else None
        self.grace_s = grace_s
        self.clock = clock
        self._files: dict[str, _File] = {}
        self._missing_logged = False
        self.current = TenantSet(self.inline)

    def refresh(self) -> bool:
        """`reload`, and serve what it composed; True when `current` changed."""
        composed = self.reload()
        if composed is not None:
            self.current = composed
        return composed is not None

    def reload(self) -> TenantSet | None:
        """Read what changed in the directory and compose the set again: the new set, or None when
        what is served stays. Not yet served: the app swaps it in on its event loop, in the same step
        as what follows the set (quotas, object access), so no request sees one without the other."""
        if self.directory is None:
            return None
        before = self._served()
        changed = self._read_changes()
        if not changed and not any(f.wanted is not None or f.missing_since is not None for f in self._files.values()):
            return None
        self._compose()
        after = self._served()
        if after == before:
            return None
        composed = TenantSet(self.inline + tuple(t for name in sorted(after) for t in after[name]))
        log.info(
            "tenants loaded",
            extra={"tenants": len(composed), "tenant_files": {name: len(entries) for name, entries in sorted(after.items())}},
        )
        return composed

    def _served(self) -> dict[str, tuple[TenantEntry, ...]]:
        return {name: f.served for name, f in self._files.items() if f.served}

    def _path(self, name: str) -> str:
        return str(self.directory / name)

    def _read_changes(self) -> bool:
        try:
            found = {
                e.name: e.stat()
                for e in os.scandir(self.directory)
                if e.name.endswith(SUFFIX) and not e.name.startswith(".") and e.is_file()
            }
            self._missing_logged = False
        except FileNotFoundError:
            if not self._missing_logged:
                log.warning("tenant files directory absent: serving the inline tenants", extra={"dir": str(self.directory)})
                self._missing_logged = True
            found = {}
        changed = False
        now = self.clock()
        for name in sorted(set(self._files) - set(found)):
            changed = self._missing(name, now) or changed
        for name, st in found.items():
            f = self._files.setdefault(name, _File())
            if f.missing_since is not None:
                log.info("tenant file back: its tenants were served throughout", extra={"file": self._path(name)})
                f.missing_since = None
            signature = (st.st_ino, st.st_mtime_ns, st.st_size)
            if f.seen == signature:
                continue
            f.seen, changed = signature, True
            try:
                if st.st_size > MAX_FILE_BYTES:
                    raise ValueError(f"{st.st_size} bytes, over the {MAX_FILE_BYTES} a tenant file may have")
                entries = load_tenant_file(Path(self._path(name)).read_bytes())
            except (OSError, ValueError) as exc:
                f.wanted = None
                log.error(
                    f"tenant file refused: {self._path(name)}: {exc}; its previous tenants stay in force",
                    extra={"file": self._path(name), "problem": str(exc), "kept": len(f.served)},
                )
                continue
            f.wanted = None if entries == f.served else entries
            f.refused = ""
        return changed

    def _missing(self, name: str, now: float) -> bool:
        """A file gone from the directory: its tenants stay served for the grace, then are dropped;
        True when that drops a served tenant."""
        f = self._files[name]
        if not f.served:  # nothing served: nothing to keep
            del self._files[name]
            return False
        if f.missing_since is None:
            f.missing_since, f.seen, f.wanted = now, None, None  # read again in full when it is back
            log.warning(
                f"tenant file missing: {self._path(name)}; its {len(f.served)} tenants stay served for up to "
                f"{self.grace_s:g} s while it is gone",
                extra={"file": self._path(name), "kept": len(f.served), "grace_s": self.grace_s},
            )
            return False
        if now - f.missing_since < self.grace_s:
            return False
        del self._files[name]
        log.warning(
            f"tenant file gone for {now - f.missing_since:.0f} s: {self._path(name)}; its {len(f.served)} tenants "
            "are no longer served",
            extra={"file": self._path(name), "dropped": len(f.served)},
        )
        return True

    def _compose(self) -> None:
        """Accept every wanted content that claims no id or key digest another source holds; a
        refused file keeps what it served. Repeated until nothing more is accepted, so a content
        freed by another file's change in the same round is taken in that round."""
        ids, digests = self._owners()
        progress = True
        while progress:
            progress = False
            for name in sorted(n for n, f in self._files.items() if f.wanted is not None):
                f, me = self._files[name], self._path(name)
                clash = self._clash(me, f.wanted, ids, digests)
                if clash is None:
                    for t in f.served:  # this file's own: nobody else's claim is dropped
                        del ids[t.id]
                        for d in t.key_sha256:
                            del digests[d]
                    f.served, f.wanted, f.refused = f.wanted, None, ""
                    self._claim(me, f.served, ids, digests)
                    progress = True
                elif clash != f.refused:
                    f.refused = clash
                    log.error(
                        f"tenant file refused: {clash}; its previous tenants stay in force",
                        extra={"file": me, "problem": clash, "kept": len(f.served)},
                    )

    def _owners(self) -> tuple[dict[str, str], dict[str, str]]:
        """Who serves each id and key digest now: the inline settings, or a file."""
        ids: dict[str, str] = {}
        digests: dict[str, str] = {}
        self._claim(self.inline_source, self.inline, ids, digests)
        for name, f in sorted(self._files.items()):
            self._claim(self._path(name), f.served, ids, digests)
        return ids, digests

    @staticmethod
    def _claim(source: str, entries: Iterable[TenantEntry], ids: dict[str, str], digests: dict[str, str]) -> None:
        for t in entries:
            ids[t.id] = source
            for d in t.key_sha256:
                digests[d] = source

    @staticmethod
    def _clash(me: str, entries: tuple[TenantEntry, ...], ids: dict[str, str], digests: dict[str, str]) -> str | None:
        for t in entries:
            if ids.get(t.id, me) != me:
                return f"tenant {t.id} in {me} is already served from {ids[t.id]}"
            for d in t.key_sha256:
                if digests.get(d, me) != me:
                    return f"tenant {t.id} in {me} has a key digest already served from {digests[d]}"
        return None
