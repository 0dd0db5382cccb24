"""Where gate reports go, one place for the writers and the readers.

`.meridian/reports/<kind>-<stack>-<UTC time>/` in the project: `meridian slo` writes kind `slo`,
`meridian up` kind `up` (its SLO gate's report in `slo/` inside), `meridian chaos` kind
`chaos-<scenario>`. `meridian evidence` takes the stack's newest SLO gate report from here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

REPORTS_DIR = Path(".meridian") / "reports"
# the files of one SLO report (meridian/slo/report.py writes them, evidence bundles them)
SLO_JSON, SLO_MD, SLO_PNG = "report.json", "report.md", "latency.png"
_STAMP = "%Y%m%dT%H%M%SZ"
_STAMP_RE = re.compile(r"\d{8}T\d{6}Z")
# kind -> where its SLO gate report sits inside a run directory
SLO_REPORTS = {"slo": Path(SLO_JSON), "up": Path("slo") / SLO_JSON}


def report_dir(project_dir: Path, kind: str, stack: str) -> Path:
    """A new run directory for `kind` on `stack` (not created)."""
    return project_dir / REPORTS_DIR / f"{kind}-{stack}-{datetime.now(UTC).strftime(_STAMP)}"


def latest_slo_report(project_dir: Path, stack: str) -> Path | None:
    """The newest SLO gate report of the stack (`meridian slo` or the gate of `meridian up`), or None."""
    root = project_dir / REPORTS_DIR
    found = []
    for kind, inside in SLO_REPORTS.items():
        prefix = f"{kind}-{stack}-"
        for run in root.glob(f"{prefix}*"):  # the stamp must follow: stack `us` is not `us-west`
            if _STAMP_RE.fullmatch(run.name[len(prefix) :]) and (run / inside).is_file():
                found.append(run / inside)
    return max(found, key=lambda p: (p.stat().st_mtime, str(p))) if found else None


def slo_report_files(report: Path) -> list[Path]:
    """An SLO report and its renderings beside it (Markdown, plot), those that exist."""
    return [report] + [p for p in (report.parent / SLO_MD, report.parent / SLO_PNG) if p != report and p.is_file()]


def slo_report_patterns(stack: str) -> str:
    """Where `latest_slo_report` looks, for messages."""
    return " or ".join(f"{REPORTS_DIR}/{kind}-{stack}-<time>/{inside}" for kind, inside in SLO_REPORTS.items())
