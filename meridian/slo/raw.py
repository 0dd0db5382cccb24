"""Raw per-request samples on disk (`raw.csv`): written by the Locust plugin, read by the gate.
No Locust import here: this module is used outside Locust processes."""

from __future__ import annotations

import csv
from pathlib import Path

from meridian.slo.evaluate import ERROR, OK, THROTTLED, Sample

RAW_FIELDS = ("start", "name", "ms", "status", "outcome", "tenant")


def outcome_of(status: int, exception) -> str:
    if status == 429:
        return THROTTLED
    return ERROR if exception is not None else OK


def write_raw(path: Path, rows: list[tuple]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RAW_FIELDS)
        w.writerows(rows)


def read_raw(path: Path) -> list[Sample]:
    with path.open(newline="") as f:
        r = csv.reader(f)
        header = next(r, None)
        if tuple(header or ()) != RAW_FIELDS:
            raise ValueError(f"{path}: not a raw samples file (header {header})")
        return [Sample(float(a), b, float(c), int(d), e, f_) for a, b, c, d, e, f_ in r]
