"""`meridian evidence --stack S --out DIR` builds a bundle; `meridian evidence verify DIR` checks one.

The bundle's plan, policy report and cost come from one offline run of the program, the same
`plan_stack` run that `meridian preview` renders; the residency attestation is derived from that
plan. Exit 1 when the residency attestation or the policy gate fails (the bundle is still
written: it is the evidence of that).
`verify` exits 1 on any changed, missing or extra file (and, with `--key`, on a missing or invalid
signature), 2 when DIR is not a bundle or the key is unusable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from meridian.errors import EXIT_GATE, EXIT_OK, BadInput


@dataclass(frozen=True, kw_only=True)
class EvidenceRequest:
    stack: str
    out: Path
    project_dir: Path | None = None
    slo_report: Path | None = None
    drill_dir: Path | None = None


def region_exceptions(project_dir: Path, stack: str) -> list[dict]:
    from meridian.engine.policy import config_path, load_policy_config

    entry = load_policy_config(config_path(project_dir, stack)).get("aws-resource-region-allowed")
    return list(entry.get("regionExceptions") or []) if isinstance(entry, dict) else []


def drill_record(project_dir: Path, stack: str, given: Path | None) -> list[Path] | None:
    """The files of a drill record: the given run directory, else the newest under .meridian/drills/<stack>."""
    from meridian.evidence.bundle import DRILL_DIR, latest_report, report_files

    if given is not None:
        timeline = given / "timeline.json"
        if not timeline.is_file():
            raise BadInput(f"--drill {given}: no timeline.json there (a directory `meridian drill` wrote)")
        return report_files(timeline)
    latest = latest_report(project_dir / DRILL_DIR / stack)
    return report_files(latest) if latest is not None and latest.name == "timeline.json" else None


def build(req: EvidenceRequest, console: Console | None = None, drill_files: list[Path] | None = None) -> int:
    console = console or Console()
    from meridian.commands.common import prepare
    from meridian.engine.pipeline import plan_stack
    from meridian.evidence.bundle import prepare_out_dir, write_bundle
    from meridian.reports import latest_slo_report

    prep = prepare(req.stack, req.project_dir, None)
    out = prepare_out_dir(req.out)
    if req.slo_report is not None and not req.slo_report.is_file():
        raise BadInput(f"--slo-report {req.slo_report}: no such file")
    slo = req.slo_report or latest_slo_report(prep.project_dir, req.stack)
    drill = drill_files if drill_files is not None else drill_record(prep.project_dir, req.stack, req.drill_dir)
    exceptions = region_exceptions(prep.project_dir, req.stack)
    console.print(f"evidence for stack {req.stack}: running the program offline with the policy pack ...")
    plan = plan_stack(prep.project_dir, req.stack, prep.cfg).document()
    bundle = write_bundle(
        out,
        project_dir=prep.project_dir,
        stack=req.stack,
        zone=prep.cfg.zone,
        allowed_regions=list(prep.cfg.allowed_regions),
        region_exceptions=exceptions,
        plan=plan,
        slo_report=slo,
        drill_files=drill,
    )
    for rel in sorted(bundle.contents):
        console.print(f"  {rel}", highlight=False)
    for part, why in bundle.absent.items():
        console.print(f"  [yellow]no {part}:[/] {escape(why)}")
    att = bundle.attestation
    mandatory = [v for v in plan["policy"]["violations"] if v.get("level") == "mandatory"]
    style = "green" if att["verdict"] == "compliant" else "bold red"
    console.print(
        f"residency: [{style}]{att['verdict']}[/] ({att['resources']['count']} resources, "
        f"{att['destinations']['count']} copy destinations); policy: {len(mandatory)} mandatory violations"
    )
    console.print(f"bundle written to {out} (MANIFEST.sha256: {len(bundle.contents)} files)")
    return EXIT_GATE if att["verdict"] != "compliant" or mandatory else EXIT_OK


def verify(bundle_dir: Path, console: Console | None = None, *, key: Path | None = None) -> int:
    """Exit 0 when every file matches the manifest (and, with `key`, the manifest's signature
    verifies under that key); 1 otherwise; BadInput (2) when DIR is no bundle or the key unusable."""
    from meridian.evidence.manifest import MANIFEST
    from meridian.evidence.manifest import verify as check
    from meridian.evidence.signature import check_signature, read_signature

    console = console or Console()
    if not bundle_dir.is_dir():
        raise BadInput(f"{bundle_dir}: no such directory")
    if not (bundle_dir / MANIFEST).is_file():
        raise BadInput(f"{bundle_dir}: no {MANIFEST}; not an evidence bundle")
    result = check(bundle_dir)
    signed = check_signature(bundle_dir, key) if key is not None else None
    if result.ok:
        console.print(f"[green]bundle intact:[/] {result.checked} files match {MANIFEST}")
    else:
        console.print(f"[bold red]bundle does not match {MANIFEST}[/] ({result.checked} files intact):")
        for problem in result.problems():
            console.print(f"  {escape(problem)}", highlight=False)
    if signed is not None:
        style = "green" if signed.ok else "bold red"
        console.print(f"[{style}]signature {'valid' if signed.ok else 'INVALID'}:[/] {escape(signed.detail)}")
    else:
        sig = read_signature(bundle_dir)
        console.print(
            "unsigned"
            if sig is None
            else f"signed ({sig['algorithm']}, key {sig.get('key_id', '?')}): not checked; pass --key with the key you trust"
        )
    return EXIT_OK if result.ok and (signed is None or signed.ok) else EXIT_GATE
