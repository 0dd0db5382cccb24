"""Raw per-request samples on disk (`raw.csv`): written by the Locust plugin, read by the gate.
No Locust import here: this module is used outside Locust processes."""

from __future__ import annotations

import csv
from pathlib import Path

from meridian.slo.evaluate import ERROR, OK, THROTTLED, Sample

RAW_FIELDS = ("start", "name", "ms", "status", "outcome", "tenant", "version")
LEGACY_FIELDS = RAW_FIELDS[:-1]  # raw.csv files written before the version column


def outcome_of(status: int, exception) -> str:
    if status == 429:
        return THROTTLED
    return ERROR if exception is not None else OK


def write_raw(path: Path, rows: list[tuple]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RAW_FIELDS)
        w.writerows(rows)


def sample_of(row: list[str]) -> Sample:
    return Sample(float(row[0]), row[1], float(row[2]), int(row[3]), row[4], row[5], row[6] if len(row) > 6 else "")


def read_raw(path: Path) -> list[Sample]:
    with path.open(newline="") as f:
        r = csv.reader(f)
        header = next(r, None)
        if tuple(header or ()) not in (RAW_FIELDS, LEGACY_FIELDS):
            raise ValueError(f"{path}: not a raw samples file (header {header})")
        return [sample_of(row) for row in r]


class LiveReader:
    """Reads the samples a running suite appends to `live.csv` (complete lines only), from where
    the last call stopped: how a rollout judges a canary while the load is still running."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new(self) -> list[Sample]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        rows = csv.reader(data[:end].decode().splitlines())
        return [sample_of(row) for row in rows if row and row[0] != RAW_FIELDS[0]]
