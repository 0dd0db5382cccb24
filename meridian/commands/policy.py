"""`meridian policy`: the policy gate alone (program + pack, no tree or cost), and the catalog.

`meridian policy --stack us [--json PATH]` runs the program offline and evaluates the pack exactly
as `meridian preview` does; exit 1 on a mandatory violation.
`meridian policy --stack us --explain --tenant acme` prints the tenancy matrix of one tenant: who can
reach its data, with which actions, and the statements that allow it (the pack's `tenant-data-access`
evaluator, run from the pack's own directory on the plan; `--format json` for programs), with a
headline that says which classes of principal it counts; a row that rests on an AWS-managed policy
the pack does not ship is printed as assumed, never as proven reach.
`meridian policy --catalog docs/policies.md` regenerates the catalog from the pack's own metadata
(GetAnalyzerInfo) and the real messages of one failing example per rule (meridian/engine/policy/catalog_examples.py).
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from meridian.commands.common import policy_line, prepare, print_violations, writable
from meridian.errors import EXIT_GATE, EXIT_OK
from meridian.output import Format, report_console


@dataclass(frozen=True, kw_only=True)
class PolicyRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None
    catalog_path: Path | None = None
    format: Format = Format.text
    write_config: bool = False
    explain: bool = False
    tenant: str | None = None


def run_policy(req: PolicyRequest, console: Console | None = None) -> int:
    console = console or report_console()
    if req.explain or req.tenant is not None:
        return explain_tenant(req, console)
    if req.write_config:
        from meridian.engine.policy import config_path, load_policy_config
        from meridian.engine.policy.generated import render

        prep = prepare(req.stack, req.project_dir, None)
        path = config_path(prep.project_dir, req.stack)
        path.write_text(render(load_policy_config(path) if path.exists() else None, prep.cfg, prep.project_dir, req.stack))
        console.print(f"policy config written to {path.relative_to(prep.project_dir)} (from Pulumi.{req.stack}.yaml)")
        return EXIT_OK
    if req.catalog_path is not None:
        from meridian.project import find_project_dir

        path = writable(req.catalog_path)
        path.write_text(catalog_markdown(find_project_dir(req.project_dir)))
        console.print(f"policy catalog written to {path}")
        return EXIT_OK

    from meridian.engine.pipeline import open_policy_stream
    from meridian.engine.run import run_program

    prep = prepare(req.stack, req.project_dir, None)
    json_path = writable(req.json_path)
    with contextlib.ExitStack() as scope:
        stream = open_policy_stream(scope, prep.project_dir, req.stack, prep.cfg)
        run = run_program(prep.project_dir, req.stack, record=True, on_register=stream.on_register)
        report = stream.finish()
    document = json.dumps({"stack": req.stack, **report.to_json()}, indent=1) + "\n"
    notes = console if req.format == Format.text else report_console(stderr=True)  # stdout: the document only
    if req.format == Format.text:
        print_violations(report, console)
        console.print(f"policy: {policy_line(report)}; {run.resource_count} resources in {run.seconds:.2f} s")
    else:
        from meridian.render import violations_markdown

        verdict = "**FAILED**" if report.mandatory else "passed"
        markdown = f"## meridian policy: stack `{req.stack}`: {verdict}\n\n{violations_markdown(report)}\n"
        console.out(document if req.format == Format.json else markdown, highlight=False, end="")
    if json_path:
        json_path.write_text(document)
        notes.print(f"policy report written to {json_path}")
    return EXIT_GATE if report.mandatory else EXIT_OK


# --- the tenancy matrix ----------------------------------------------------------------------


def explain_tenant(req: PolicyRequest, console: Console) -> int:
    """Print who can reach one tenant's data and why; exit 1 if anyone may who should not."""
    import subprocess
    import sys

    from meridian.engine.pipeline import plan_stack
    from meridian.engine.policy import config_path, load_policy_config, pack_dir_of
    from meridian.errors import BadInput

    if not (req.explain and req.tenant):
        raise BadInput("--explain needs --tenant <id> (the tenancy matrix of that tenant), and --tenant needs --explain")
    prep = prepare(req.stack, req.project_dir, None)
    path = config_path(prep.project_dir, req.stack)
    settings = load_policy_config(path) if path.exists() else {}
    rule = settings.get("tenant-data-access", {})
    config = {k: v for k, v in rule.items() if k != "enforcementLevel"} if isinstance(rule, dict) else {}
    planned = plan_stack(prep.project_dir, req.stack, prep.cfg, policy=False)
    request = json.dumps({"resources": planned.plan.resource_dicts, "config": config, "tenant": req.tenant})
    proc = subprocess.run(
        [sys.executable, "-m", "access.explain"],
        input=request,
        capture_output=True,
        text=True,
        cwd=pack_dir_of(prep.project_dir),
        check=False,
    )
    if proc.returncode == 2:
        raise BadInput(proc.stderr.strip().removeprefix("error: "))
    if proc.returncode != 0:
        raise RuntimeError(f"the pack's access evaluator failed: {proc.stderr.strip()[-2000:]}")
    matrix = json.loads(proc.stdout)
    violations = [r for r in matrix["rows"] if r["verdict"].startswith("violation")]
    mandatory = [f for f in matrix["findings"] if f["level"] == "mandatory"]
    if req.format == Format.json:
        console.out(json.dumps({"stack": req.stack, **matrix}, indent=1), highlight=False)
    else:
        _print_matrix(matrix, req.stack, console)
    return EXIT_GATE if violations or mandatory else EXIT_OK


def _print_matrix(matrix: dict[str, Any], stack: str, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"who can reach tenant {matrix['tenant']}'s data (stack {stack})", show_lines=True)
    for column in ("resource", "who", "actions", "allowed by", "verdict"):
        table.add_column(column, overflow="fold")
    for row in matrix["rows"]:
        style = "red" if row["verdict"].startswith("violation") else ("yellow" if row["assumed"] else None)
        via = " -> ".join(row["path"].split(" -> ")[:-2])
        via = f"\n[dim]{via}[/dim]" if via != row["who"] else ""
        basis = f"{ASSUMED}:\n" + "\n".join(row["assumed"]) + "\n" if row["assumed"] else ""
        table.add_row(
            row["resource"],
            row["who"] + via,
            "\n".join(row["actions"]),
            "\n".join(row["allowed_by"]),
            basis + row["verdict"],
            style=style,
        )
    console.print(table)
    for f in matrix["findings"]:
        console.print(
            f"[{'red' if f['level'] == 'mandatory' else 'yellow'}]{f['level']}[/]: {f['urn'] or '(the stack)'}\n  {f['message']}"
        )
    console.print(_headline(matrix), highlight=False)


ASSUMED = "assumed: policy document not shipped"


def _headline(matrix: dict[str, Any]) -> str:
    """The count, what it covers and what it cannot: "0 not allowed" is complete only for the classes listed."""
    rows = matrix["rows"]
    bad = [r for r in rows if r["verdict"].startswith("violation")]
    assumed = sum(bool(r["assumed"]) for r in rows)
    counted = "; ".join(f"{c['class']}: {c['ways']}" for c in matrix["coverage"])
    return (
        f"tenant {matrix['tenant']}: {len(rows)} ways in ({len(rows) - assumed} proven by the documents the plan and the pack hold, "
        f"{assumed} {ASSUMED}), {len(bad)} not allowed by the tenancy design "
        f"({sum(bool(r['assumed']) for r in bad)} of them assumed).\n"
        f"Counted, by who: {counted}.\n"
        f"Not counted: {'; '.join(matrix['not_counted'])}."
    )


# --- the catalog -----------------------------------------------------------------------------


def _schema_rows(info: Any, config: dict[str, Any]) -> list[str]:
    rows = []
    for key, schema in sorted(info.schema.items()):
        default = json.dumps(schema["default"]) if "default" in schema else ("required" if key in info.required else "-")
        rows.append(f"| `{key}` | {schema.get('type', '')} | {default} | {schema.get('description', '')} |")
    return rows


def catalog_markdown(project_dir: Path) -> str:
    """docs/policies.md, from the pack's metadata and the messages its examples really produce."""
    from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate, pack_dir_of
    from meridian.engine.policy.catalog_examples import EXAMPLES, SETTINGS

    pack_dir = pack_dir_of(project_dir)
    with Analyzer(pack_dir) as analyzer:
        pack = analyzer.wait_ready()
        messages = {}
        for policy in pack.policies:
            example = EXAMPLES.get(policy.name)
            if example is None:
                continue
            # only this rule enabled: its example's message, at the rule's own default level
            only = {
                **SETTINGS,
                "all": "disabled",
                policy.name: {**SETTINGS.get(policy.name, {}), "enforcementLevel": policy.level},
            }
            analyzer.configure(effective_config(pack, only, "meridian/engine/policy/catalog_examples.py"))
            found = [v for v in evaluate(analyzer, [Subject.from_dict(r) for r in example.resources]) if v.policy == policy.name]
            if found:
                messages[policy.name] = (example.what, found[0])

    per_stack = {p.stem: json.loads(p.read_text()) for p in sorted((pack_dir / "config").glob("*.json"))}
    areas = defaultdict(list)
    for policy in pack.policies:
        areas[policy.tags[0] if policy.tags else "other"].append(policy)

    out = [
        "# Policy catalog",
        "",
        f"<!-- Generated by `meridian policy --catalog docs/policies.md` from the pack `{pack.name}` "
        "(its GetAnalyzerInfo metadata and the messages of meridian/engine/policy/catalog_examples.py). Do not edit: a test compares. -->",
        "",
        f"The CrossGuard pack in `policies/` ({len(pack.policies)} rules) runs in every `meridian preview` (offline, through its "
        "own analyzer) and with the real CLI: `pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json`.",
        "A **mandatory** violation fails the preview (exit 1); **advisory** ones are reported only. Levels and settings per stack "
        "live in `policies/config/<stack>.json` (the format `--policy-pack-config` takes); the level below is the pack's default. "
        "The settings that copy the stack config (allowed regions, dr region, the us-east-1 failover-alarm exception) are generated "
        "from `Pulumi.<stack>.yaml` by `meridian policy --stack <stack> --write-config`; a preview refuses a file that has drifted.",
        "",
        "**Two views, and what a preview cannot prove.** No rule fails open: every rule judges resource by resource, and a resource "
        "whose deciding value is only known after apply gets its own advisory finding `unverifiable at preview: <property>` while "
        "every other resource is still judged at the rule's level. `meridian preview` (the default, *update view*) gives every output "
        "a value, as the analyzer sees resources during `pulumi up`; `meridian preview --first-preview` leaves the computed outputs "
        "of resources being created unknown, as a real first `pulumi preview` does, and lists what stays unverifiable until `up`, "
        "per rule that will enforce it then. Each rule below says what it proves and what it does not prove: what it leaves to "
        "`pulumi up`, to AWS, to the runtime backstops the program deploys (docs/operations.md) or to another rule.",
        "",
        "| rule | kind | default level | severity | " + " | ".join(f"{s}" for s in per_stack) + " |",
        "|---|---|---|---|" + "---|" * len(per_stack),
    ]
    for policy in pack.policies:
        levels = []
        for cfg in per_stack.values():
            entry = cfg.get(policy.name, cfg.get("all", policy.level))
            levels.append(entry if isinstance(entry, str) else entry.get("enforcementLevel", policy.level))
        out.append(
            f"| [`{policy.name}`](#{policy.name}) | {policy.kind} | {policy.level} | {policy.severity} | "
            + " | ".join(levels)
            + " |"
        )
    for area, policies in areas.items():
        out += ["", f"## {area}"]
        for policy in policies:
            what, _, rest = policy.description.partition(" Why: ")
            why, _, limits = rest.partition(" Limits: ")
            out += [
                "",
                f"### {policy.name}",
                "",
                f"**What it proves.** {what}",
                "",
                f"**Why.** {why}",
                "",
                f"**What it does not prove.** {limits or 'nothing beyond what is listed above.'}",
                "",
                f"**Kind:** {policy.kind} rule. **Default level:** {policy.level}. **Severity:** {policy.severity}.",
                "",
            ]
            if policy.schema:
                out += [
                    "**Config:**",
                    "",
                    "| setting | type | default | meaning |",
                    "|---|---|---|---|",
                    *_schema_rows(policy, {}),
                    "",
                ]
            else:
                out += ["**Config:** none besides `enforcementLevel`.", ""]
            out += [f"**Remediation.** {policy.remediation}", ""]
            if policy.name in messages:
                what_broke, v = messages[policy.name]
                out += [
                    f"**Example violation** ({what_broke}):",
                    "",
                    "```",
                    f"{v.level}: {v.policy}",
                    f"  {v.urn or '(the stack)'}",
                    f"    {v.message}",
                    "```",
                ]
    return "\n".join(out).rstrip() + "\n"
