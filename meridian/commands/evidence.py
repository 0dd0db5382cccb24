"""`meridian evidence --stack S --out DIR` builds a bundle; `meridian evidence verify DIR` checks one.

A bundle is a zone's, named by its platform stack (a cell stack is refused, exit 2: its evidence is
its zone's). Each stack's plan, policy report and cost come from one offline run of the program, the
same `plan_stack` run that `meridian preview` renders: the platform's here, then each cell's in a
process of its own (the SDK's runtime state is global) reading the platform run's outputs; the
residency attestation is derived from each plan. Exit 1 when any stack's residency attestation or
policy gate fails (the bundle is still written: it is the evidence of that).
A configured key (`--signing-key PATH` or `$MERIDIAN_SIGNING_KEY`) signs the bundle's manifest.

`verify` calls a bundle intact only when its manifest matches every file *and* a signature under a
key the verifier trusts (`--key`) covers that manifest: anyone who edits a file can re-hash the
manifest, and anyone can write a `.sig`. So it exits 1 on any changed, missing or extra file, on a
missing or invalid signature under `--key`, on a signature it was not given a key to check, and on
an unsigned bundle unless `--allow-unsigned` says the files alone are enough; 2 when DIR is not a
bundle, the signature file is malformed or the key is unusable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from meridian.errors import EXIT_GATE, EXIT_OK, BadInput
from meridian.output import report_console


@dataclass(frozen=True, kw_only=True)
class EvidenceRequest:
    stack: str
    out: Path
    project_dir: Path | None = None
    slo_report: Path | None = None
    drill_dir: Path | None = None
    signing_key: Path | None = None
    """--signing-key; None: $MERIDIAN_SIGNING_KEY, or unsigned when that is unset too."""


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


def cell_plan(project_dir: Path, cell: str, platform_outputs: dict[str, dict], platform: list) -> dict:
    """A cell's plan document, in a worker process of its own (the SDK's runtime state is global),
    judged beside its platform's resources (`platform`: policy Subjects), as `preview` judges it."""
    from meridian.engine.pipeline import plan_stack
    from meridian.stackconfig import load_validated

    cfg = load_validated(project_dir, cell)
    return plan_stack(project_dir, cell, cfg, stack_outputs=platform_outputs, policy_context=platform).document()


def zone_evidence(project_dir: Path, platform: str, cfg, console: Console) -> list:
    """Every stack of the zone as the bundle holds it: the platform planned here, its cells in
    parallel worker processes (one per core), each reading the platform run's outputs."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from meridian.engine.pipeline import plan_stack
    from meridian.evidence.bundle import StackEvidence, config_digest
    from meridian.stackconfig import load_validated

    def evidence(stack: str, role: str, one, plan: dict) -> StackEvidence:
        name, digest = config_digest(project_dir, stack)
        return StackEvidence(
            stack=stack,
            role=role,
            config_file=name,
            config_sha256=digest,
            tenants=len(one.tenants),
            plan=plan,
            allowed_regions=list(one.allowed_regions),
            region_exceptions=region_exceptions(project_dir, stack),
        )

    cells = {cell: load_validated(project_dir, cell) for cell in cfg.cells.names}  # bad cell config: exit 2 first
    staged = plan_stack(project_dir, platform, cfg)
    stacks = [evidence(platform, "platform", cfg, staged.document())]
    if cells:
        console.print(f"evidence for zone {platform}: its cells {', '.join(cells)}, each against the platform's outputs ...")
        from meridian.engine.policy.wire import Subject

        outputs = {platform: staged.run.wire_outputs}
        context = [Subject.from_registration(r) for r in staged.run.registrations]
        workers = max(1, min(len(cells), multiprocessing.cpu_count()))
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            plans = {cell: pool.submit(cell_plan, project_dir, cell, outputs, context) for cell in cells}
            stacks += [evidence(cell, "cell", cells[cell], plans[cell].result()) for cell in cells]
    return stacks


def build(req: EvidenceRequest, console: Console | None = None, drill_files: list[Path] | None = None) -> int:
    console = console or report_console()
    from meridian.commands.common import prepare
    from meridian.evidence.bundle import prepare_out_dir, write_bundle
    from meridian.evidence.signature import sign, signing_key_path
    from meridian.project import find_project_dir, require_zone
    from meridian.reports import latest_slo_report

    key_path = signing_key_path(req.signing_key)  # an unusable key is refused before the plan is run
    require_zone(find_project_dir(req.project_dir), req.stack)
    prep = prepare(req.stack, req.project_dir, None)
    out = prepare_out_dir(req.out)
    if req.slo_report is not None and not req.slo_report.is_file():
        raise BadInput(f"--slo-report {req.slo_report}: no such file")
    slo = req.slo_report or latest_slo_report(prep.project_dir, req.stack)
    drill = drill_files if drill_files is not None else drill_record(prep.project_dir, req.stack, req.drill_dir)
    console.print(f"evidence for zone {req.stack}: running the program offline with the policy pack ...")
    stacks = zone_evidence(prep.project_dir, req.stack, prep.cfg, console)
    bundle = write_bundle(out, project_dir=prep.project_dir, zone=prep.cfg.zone, stacks=stacks, slo_report=slo, drill_files=drill)
    signature = sign(out, key_path) if key_path is not None else None
    for rel in sorted(bundle.contents):
        console.print(f"  {rel}", highlight=False)
    for part, why in bundle.absent.items():
        console.print(f"  [yellow]no {part}:[/] {escape(why)}")
    for one in stacks:
        att = bundle.attestations[one.stack]
        style = "green" if att["verdict"] == "compliant" else "bold red"
        console.print(
            f"  {one.role} {one.stack} ({one.tenants} tenants, {one.config_file} sha256 {one.config_sha256[:12]}): "
            f"residency [{style}]{att['verdict']}[/] ({att['resources']['count']} resources, "
            f"{att['destinations']['count']} copy destinations); policy: {bundle.mandatory[one.stack]} mandatory violations"
        )
    verdict = bundle.attestation["verdict"]
    style = "green" if verdict == "compliant" else "bold red"
    console.print(
        f"zone {req.stack}: residency [{style}]{verdict}[/] across {len(stacks)} stack(s); "
        f"policy: {sum(bundle.mandatory.values())} mandatory violations"
    )
    signed = (
        f"signed ({signature['algorithm']}, key {signature['key_id']})" if signature else "unsigned (no signing key configured)"
    )
    console.print(f"bundle written to {out} (MANIFEST.sha256: {len(bundle.contents)} files; {signed})")
    return EXIT_GATE if verdict != "compliant" or any(bundle.mandatory.values()) else EXIT_OK


def verify(bundle_dir: Path, console: Console | None = None, *, key: Path | None = None, allow_unsigned: bool = False) -> int:
    """Exit 0 when every file matches the manifest and the manifest's signature verifies under `key`
    (or, with `allow_unsigned` and no key, when the bundle carries no signature); 1 otherwise;
    BadInput (2) when DIR is no bundle, its signature file is malformed or the key unusable."""
    from meridian.evidence.manifest import MANIFEST, SIGNATURE
    from meridian.evidence.manifest import verify as check
    from meridian.evidence.signature import SIGNING_KEY_ENV, check_signature, read_signature

    console = console or report_console()
    if key is not None and allow_unsigned:
        raise BadInput("--allow-unsigned contradicts --key: with --key the bundle must be signed by that key")
    if key is not None and not key.is_file():
        raise BadInput(f"--key {key}: no such file")
    if not bundle_dir.is_dir():
        raise BadInput(f"{bundle_dir}: no such directory")
    if not (bundle_dir / MANIFEST).is_file():
        raise BadInput(f"{bundle_dir}: no {MANIFEST}; not an evidence bundle")
    result = check(bundle_dir)
    sig = read_signature(bundle_dir)
    if result.ok:
        console.print(f"files match {MANIFEST}: {result.checked} checked")
    else:
        console.print(f"[bold red]bundle does not match {MANIFEST}[/] ({result.checked} files match):")
        for problem in result.problems():
            console.print(f"  {escape(problem)}", highlight=False)
    if key is not None:
        signed = check_signature(bundle_dir, key)
        style = "green" if signed.ok else "bold red"
        console.print(f"[{style}]signature {'valid' if signed.ok else 'INVALID'}:[/] {escape(signed.detail)}")
        authentic = signed.ok
    elif sig is not None:
        console.print(
            f"[bold red]signature not checked:[/] the bundle is signed ({escape(sig['algorithm'])}, key "
            f"{escape(str(sig.get('key_id', '?')))}), but no key was given; a {SIGNATURE} anyone can write proves "
            f"nothing until it is checked: run `meridian evidence verify {escape(str(bundle_dir))} --key KEY` with the "
            f"signer's public key (Ed25519) or the shared HMAC secret"
        )
        authentic = False
    elif allow_unsigned:
        console.print(
            "[yellow]unsigned (accepted by --allow-unsigned):[/] the files match the manifest, but whoever edits a "
            "file can re-hash the manifest too; only a signature shows who wrote it"
        )
        authentic = True
    else:
        console.print(
            f"[bold red]unsigned:[/] whoever edits a file can re-hash {MANIFEST}, so matching it proves nothing; sign "
            f"bundles with --signing-key or ${SIGNING_KEY_ENV} and verify with --key, or pass --allow-unsigned to "
            f"accept the files alone"
        )
        authentic = False
    if result.ok and authentic:
        console.print(f"[green]bundle intact[/]{'' if sig is not None else ' (unsigned)'}")
        return EXIT_OK
    return EXIT_GATE
