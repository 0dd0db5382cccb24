"""Evidence bundles: what a release or a drill leaves behind for auditors and SREs.

<dir>/bundle.json        what is inside, where each part came from, what is absent and why
<dir>/plan.json          the offline plan (resources, outputs, policy, cost)
<dir>/policy.json        the policy pack's report
<dir>/cost.json          the cost estimate against the caps
<dir>/residency.json|md  the residency attestation derived from the plan
<dir>/slo/...            the stack's newest SLO gate report (meridian.reports), if there is one
<dir>/drill/...          the drill timeline (JSON, Markdown, PNG), if a drill ran
<dir>/MANIFEST.sha256    sha256 of every other file (`meridian evidence verify <dir>`)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meridian.errors import BadInput
from meridian.evidence.manifest import write_manifest
from meridian.evidence.residency import attest, markdown
from meridian.reports import slo_report_files, slo_report_patterns

DRILL_DIR = Path(".meridian") / "drills"


def prepare_out_dir(out: Path) -> Path:
    """A bundle goes into a new or empty directory: never mixed with (or overwriting) other files."""
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise BadInput(f"--out {out}: directory is not empty; give a new or empty directory (a bundle never overwrites files)")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: parent directory {out.parent} does not exist")
    return out


def latest_report(root: Path) -> Path | None:
    """The newest JSON report under `root` (recursively), or None."""
    if not root.is_dir():
        return None
    reports = [p for p in root.rglob("*.json") if p.is_file()]
    return max(reports, key=lambda p: (p.stat().st_mtime, str(p))) if reports else None


def report_files(report: Path) -> list[Path]:
    """A report and its renderings beside it (same stem: .md, .png), or its whole run directory
    when the report is the only JSON there."""
    siblings = [p for p in report.parent.iterdir() if p.is_file()]
    if len([p for p in siblings if p.suffix == ".json"]) == 1:
        return sorted(siblings)
    return sorted(p for p in siblings if p.stem == report.stem)


def git_revision(project_dir: Path) -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_dir, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


@dataclass
class Bundle:
    out: Path
    attestation: dict[str, Any]
    contents: dict[str, str] = field(default_factory=dict)  # path -> what it is
    absent: dict[str, str] = field(default_factory=dict)  # part -> why


def write_bundle(
    out: Path,
    *,
    project_dir: Path,
    stack: str,
    zone: str,
    allowed_regions: list[str],
    region_exceptions: Sequence[Mapping[str, Any]],
    plan: dict[str, Any],
    slo_report: Path | None,
    drill_files: list[Path] | None,
) -> Bundle:
    out.mkdir(exist_ok=True)
    attestation = attest(plan, allowed_regions, region_exceptions, zone)
    bundle = Bundle(out, attestation)

    def put(rel: str, text: str, what: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        bundle.contents[rel] = what

    def dump(value: Any) -> str:
        return json.dumps(value, indent=1, sort_keys=True, default=str) + "\n"

    put("plan.json", dump(plan), "offline plan: every resource with inputs, region, dependencies; outputs; policy; cost")
    put("policy.json", dump({"stack": stack, **plan.get("policy", {})}), "policy pack report (violations by rule and level)")
    put("cost.json", dump(plan.get("cost", {})), "monthly cost estimate per type, region and tenant against the caps")
    put("residency.json", dump(attestation), f"residency attestation: {attestation['verdict']}")
    put("residency.md", markdown(attestation), "residency attestation, readable")

    if slo_report is None:
        bundle.absent["slo"] = (
            f"no SLO report found at {slo_report_patterns(stack)} (run `meridian slo` or `meridian up`, or pass --slo-report)"
        )
    else:
        for src in slo_report_files(slo_report):
            _copy(src, out / "slo" / src.name, bundle, f"SLO report ({slo_report.name})")
    if not drill_files:
        bundle.absent["drill"] = f"no drill record found under {DRILL_DIR / stack} (run `meridian drill ... --evidence DIR`)"
    else:
        for src in drill_files:
            _copy(src, out / "drill" / src.name, bundle, "drill timeline")

    index = {
        "kind": "meridian-evidence",
        "version": 1,
        "stack": stack,
        "zone": zone,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": git_revision(project_dir),
        "residency_verdict": attestation["verdict"],
        "policy": {
            "mandatory": sum(1 for v in plan.get("policy", {}).get("violations", []) if v.get("level") == "mandatory"),
            "evaluated": bool(plan.get("policy", {}).get("evaluated")),
        },
        "contents": dict(sorted(bundle.contents.items())),
        "absent": bundle.absent,
    }
    put("bundle.json", dump(index), "this index")
    write_manifest(out)
    return bundle


def _copy(src: Path, dst: Path, bundle: Bundle, what: str) -> None:
    if src.is_symlink() or not src.is_file():
        raise BadInput(f"{src}: not a regular file; evidence takes plain files only")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    bundle.contents[dst.relative_to(bundle.out).as_posix()] = f"{what}: copied from {src}"
