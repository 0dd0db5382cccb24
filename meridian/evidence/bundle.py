"""Evidence bundles: what a release or a drill leaves behind for auditors and SREs, for a zone: its
platform stack and every cell stack it lists (one front door, database and workload serve them all,
so the SLO report and the drill speak for the whole zone).

<dir>/bundle.json        what is inside, where each part came from, what is absent and why; `stacks`:
                         every stack of the zone with its config file's sha256, its tenant count,
                         its plan's sha256 and its own residency and policy verdicts
<dir>/plan.json          the platform stack's offline plan (resources, outputs, policy, cost)
<dir>/policy.json        its policy pack report
<dir>/cost.json          its cost estimate against the caps
<dir>/residency.json|md  its residency attestation derived from the plan
<dir>/cells/<cell>/...   the same five files for each cell stack of the zone
<dir>/slo/...            the zone's newest SLO gate report (meridian.reports), if there is one
<dir>/drill/...          the drill timeline (JSON, Markdown, PNG), if a drill ran
<dir>/MANIFEST.sha256    sha256 of every other file (`meridian evidence verify <dir>`)

The bundle's verdicts are the zone's: compliant only if every stack's attestation is, its mandatory
violations the sum over every stack.
"""

from __future__ import annotations

import hashlib
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


@dataclass(frozen=True, kw_only=True)
class StackEvidence:
    """One stack of the zone as the bundle holds it."""

    stack: str
    role: str  # "platform" or "cell"
    config_file: str  # Pulumi.<stack>.yaml, as the project holds it
    config_sha256: str  # of that file's bytes: the config the plan rendered from (a cell's also reads its platform's)
    tenants: int  # the tenants this stack holds (inline in the platform, or the cell's)
    plan: dict[str, Any]
    allowed_regions: list[str]
    region_exceptions: list[Mapping[str, Any]]

    @property
    def folder(self) -> str:
        return "" if self.role == "platform" else f"cells/{self.stack}/"


def config_digest(project_dir: Path, stack: str) -> tuple[str, str]:
    """(file name, sha256 of its bytes) of a stack's config file."""
    name = f"Pulumi.{stack}.yaml"
    return name, hashlib.sha256((project_dir / name).read_bytes()).hexdigest()


@dataclass
class Bundle:
    out: Path
    attestation: dict[str, Any]  # the zone's: per stack in `attestations`
    contents: dict[str, str] = field(default_factory=dict)  # path -> what it is
    absent: dict[str, str] = field(default_factory=dict)  # part -> why
    attestations: dict[str, dict[str, Any]] = field(default_factory=dict)  # stack -> its attestation
    mandatory: dict[str, int] = field(default_factory=dict)  # stack -> its mandatory violations


def write_bundle(
    out: Path,
    *,
    project_dir: Path,
    zone: str,
    stacks: Sequence[StackEvidence],
    slo_report: Path | None,
    drill_files: list[Path] | None,
) -> Bundle:
    """`stacks`: the zone's platform first, then its cells."""
    platform = stacks[0]
    assert platform.role == "platform" and all(s.role == "cell" for s in stacks[1:]), "the platform, then its cells"
    out.mkdir(exist_ok=True)
    bundle = Bundle(out, {})

    def put(rel: str, text: str, what: str) -> None:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        bundle.contents[rel] = what

    def dump(value: Any) -> str:
        return json.dumps(value, indent=1, sort_keys=True, default=str) + "\n"

    listed = []
    for one in stacks:
        plan, at = one.plan, one.folder
        attestation = attest(plan, one.allowed_regions, one.region_exceptions, zone)
        bundle.attestations[one.stack] = attestation
        bundle.mandatory[one.stack] = sum(
            1 for v in plan.get("policy", {}).get("violations", []) if v.get("level") == "mandatory"
        )
        whose = f"stack {one.stack}'s"
        put(
            f"{at}plan.json",
            dump(plan),
            f"{whose} offline plan: every resource with inputs, region, dependencies; outputs; policy; cost",
        )
        put(f"{at}policy.json", dump({"stack": one.stack, **plan.get("policy", {})}), f"{whose} policy pack report")
        put(f"{at}cost.json", dump(plan.get("cost", {})), f"{whose} monthly cost estimate per type, region and tenant")
        put(f"{at}residency.json", dump(attestation), f"{whose} residency attestation: {attestation['verdict']}")
        put(f"{at}residency.md", markdown(attestation), f"{whose} residency attestation, readable")
        listed.append(
            {
                "stack": one.stack,
                "role": one.role,
                "config_file": one.config_file,
                "config_sha256": one.config_sha256,
                "tenants": one.tenants,
                "plan": f"{at}plan.json",
                "plan_sha256": hashlib.sha256((out / f"{at}plan.json").read_bytes()).hexdigest(),
                "residency_verdict": attestation["verdict"],
                "mandatory": bundle.mandatory[one.stack],
                "policy_evaluated": bool(plan.get("policy", {}).get("evaluated")),
            }
        )
    compliant = all(a["verdict"] == "compliant" for a in bundle.attestations.values())
    bundle.attestation = {"verdict": "compliant" if compliant else "not compliant", "stacks": len(stacks)}

    if slo_report is None:
        bundle.absent["slo"] = (
            f"no SLO report found at {slo_report_patterns(platform.stack)} (run `meridian slo` or `meridian up`, or pass --slo-report)"
        )
    else:
        for src in slo_report_files(slo_report):
            _copy(src, out / "slo" / src.name, bundle, f"SLO report ({slo_report.name})")
    if not drill_files:
        bundle.absent["drill"] = (
            f"no drill record found under {DRILL_DIR / platform.stack} (run `meridian drill ... --evidence DIR`)"
        )
    else:
        for src in drill_files:
            _copy(src, out / "drill" / src.name, bundle, "drill timeline")

    index = {
        "kind": "meridian-evidence",
        "version": 2,  # 2: a zone, every stack of it listed
        "stack": platform.stack,
        "zone": zone,
        "stacks": listed,
        "tenants": sum(s.tenants for s in stacks),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": git_revision(project_dir),
        "residency_verdict": bundle.attestation["verdict"],
        "policy": {
            "mandatory": sum(bundle.mandatory.values()),
            "evaluated": all(s["policy_evaluated"] for s in listed),
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
