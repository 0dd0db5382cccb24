"""The users' GitHub workflows (.github/workflows): valid against GitHub's workflow schema, their
shell scripts clean under shellcheck, each action's inputs real, every expression pointing at
something that exists, the stacks and the PR comment marker tied to the project, the meridian
commands ones the CLI accepts, and the safety rules a reviewer checks (OIDC only where AWS is used,
real changes only behind an environment).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from meridian.cli import app
from meridian.engine.plandiff import COMMENT_MARKER
from stackconfig import load_stack

from .cli_commands import ROOT, check, commands_in, flags_in, help_text, script_commands

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CI_DOC = ROOT / "docs" / "ci.md"
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))
# Stacks that are no cell: what deploys, drifts and drills run on (a cell is updated after its platform,
# with the CLI, until the workflows run cells in order: docs/ci.md); a PR previews the stacks it touches
CHANGED_MATRIX = "${{ fromJSON(needs.changes.outputs.stacks) }}"
CELLS_MATRIX = "${{ fromJSON(needs.cells.outputs.cells) }}"  # deploy: the changed cells, after their platform
ZONES_MATRIX = "${{ fromJSON(needs.cells.outputs.zones) }}"  # deploy: the zones of those cells, gated after them
PLATFORMS = sorted(
    s for s in STACKS if "meridian:platform" not in (yaml.safe_load((ROOT / f"Pulumi.{s}.yaml").read_text())["config"])
)
RULE = "s3-bucket-public-access-blocked"  # the recorded change's violation (tests/data/plandiff)

# Each action pinned by commit (a tag can be moved; a commit cannot), with the release it is: the
# commit each tag pointed to in the action's own repository when it was pinned.
PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "actions/github-script": ("ed597411d8f924073f98dfc5c65a23a2325f34cd", "v8.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "actions/cache": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
}
# Inputs of each action at the pinned release, from its action.yml at that commit.
ACTION_INPUTS = {
    "actions/checkout": set(
        (
            "allow-unsafe-pr-checkout clean fetch-depth fetch-tags filter github-server-url lfs path persist-credentials "
            "ref repository set-safe-directory show-progress sparse-checkout sparse-checkout-cone-mode ssh-key "
            "ssh-known-hosts ssh-strict ssh-user submodules token"
        ).split()
    ),
    "actions/setup-python": set(
        (
            "allow-prereleases architecture cache cache-dependency-path check-latest freethreaded pip-version "
            "python-version python-version-file token update-environment"
        ).split()
    ),
    "actions/upload-artifact": set(
        ("archive compression-level if-no-files-found include-hidden-files name overwrite path retention-days").split()
    ),
    "actions/github-script": set(
        ("base-url debug github-token previews result-encoding retries retry-exempt-status-codes script user-agent").split()
    ),
    "aws-actions/configure-aws-credentials": set(
        (
            "action-timeout-s allowed-account-ids audience aws-access-key-id aws-profile aws-region aws-secret-access-key "
            "aws-session-token custom-tags disable-retry force-skip-oidc http-proxy inline-session-policy "
            "managed-session-policies mask-aws-account-id no-proxy output-credentials output-env-credentials "
            "overwrite-aws-profile retry-max-attempts role-chaining role-duration-seconds role-external-id "
            "role-session-name role-skip-session-tagging role-to-assume special-characters-workaround sts-endpoint "
            "transitive-tag-keys unset-current-credentials use-existing-credentials web-identity-token-file"
        ).split()
    ),
    "pulumi/actions": set(
        (
            "always-include-summary cloud-url color command comment-on-pr comment-on-pr-number comment-on-summary "
            "config-map continue-on-error debug diff edit-pr-comment exclude exclude-dependents exclude-protected "
            "expect-no-changes github-token log-flow log-verbosity message parallel plan policyPackConfigs policyPacks "
            "pulumi-version pulumi-version-file refresh remove replace secrets-provider stack-name suppress-outputs "
            "suppress-progress target target-dependents upsert work-dir"
        ).split()
    ),
}
ACTION_INPUTS["actions/cache"] = set(
    "enableCrossOsArchive fail-on-cache-miss key lookup-only path restore-keys save-always upload-chunk-size".split()
)
ACTION_INPUTS["actions/download-artifact"] = set(
    "artifact-ids digest-mismatch download-path github-token merge-multiple name path pattern repository run-id skip-decompress".split()
)
REQUIRED_INPUTS = {"aws-actions/configure-aws-credentials": {"aws-region"}}
# The runner that reaches the clusters' Kubernetes API (docs/ci.md, "The runner").
CLUSTER_RUNNER = '${{ fromJSON(vars.MERIDIAN_CLUSTER_RUNNER || \'["self-hosted", "meridian"]\') }}'
USES = re.compile(r"^\s*(?:- )?uses: (?P<action>[\w.-]+/[\w.-]+)@(?P<ref>\S+)(?:\s+# (?P<release>\S+))?\s*$", re.M)
# Subcommands still being written (issue 11), with the flags their issue gives; once one exists in
# the CLI, its real --help is what is checked.
PENDING = {("preflight",): {"--stack"}}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
REFERENCE = re.compile(r"(?<![\w.'\"-])(steps|matrix|inputs|vars|secrets|env|needs)\.([A-Za-z_][\w-]*)")


def load(path: Path) -> dict:
    doc = yaml.load(path.read_text(), Loader=yaml.BaseLoader)  # strings only: `on` stays a key, "true" stays text
    assert isinstance(doc, dict), path
    return doc


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict]:
    assert {p.name for p in WORKFLOWS} >= {"preview.yml", "deploy.yml", "drill.yml", "rollout.yml"}
    return {p.name: load(p) for p in WORKFLOWS}


def jobs(workflows):
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            yield name, job_id, job


def steps(workflows):
    for name, job_id, job in jobs(workflows):
        for i, step in enumerate(job.get("steps", [])):
            yield f"{name}:{job_id}:{step.get('id') or step.get('name') or i}", job, step


def test_workflows_validate_against_the_github_workflow_schema():
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_scripts_pass_shellcheck(workflows, tmp_path):
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    scripts = []
    for where, _job, step in steps(workflows):
        if "run" in step:
            # As the runner sees it: bash -e; an expression becomes plain text.
            body = EXPRESSION.sub("expr", step["run"])
            path = tmp_path / f"{len(scripts):02}.sh"
            path.write_text(f"#!/bin/bash\nset -e\n# {where}\n{body}\n")
            scripts.append(str(path))
    proc = subprocess.run([shellcheck, "--severity=style", "--shell=bash", *scripts], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_actions_are_pinned_by_commit_with_their_release_named():
    found = 0
    for path in WORKFLOWS:
        for m in USES.finditer(path.read_text()):
            found += 1
            where = f"{path.name}: {m.group(0).strip()}"
            assert m["action"] in PINS, f"{where}: not one of the pinned actions"
            sha, release = PINS[m["action"]]
            assert m["ref"] == sha, f"{where}: pin {m['action']} by its commit {sha} ({release}), not a tag"
            assert m["release"] == release, f"{where}: say which release the commit is (# {release})"
    assert found >= 30


def test_actions_are_known_versions_and_get_only_their_real_inputs(workflows):
    for where, _job, step in steps(workflows):
        if "uses" not in step:
            continue
        action = step["uses"].split("@")[0]
        assert action in ACTION_INPUTS, f"{where}: {action} is not one of the pinned actions whose inputs are known"
        given = set(step.get("with", {}))
        assert given <= ACTION_INPUTS[action], f"{where}: {action} has no input {sorted(given - ACTION_INPUTS[action])}"
        missing = REQUIRED_INPUTS.get(action, set()) - given
        assert not missing, f"{where}: {action} needs {sorted(missing)}"


def expressions(node, out: list[str], key: str = ""):
    """Every expression of a workflow, `if:` conditions included (they may omit the ${{ }})."""
    if isinstance(node, dict):
        for k, v in node.items():
            expressions(v, out, k)
    elif isinstance(node, list):
        for v in node:
            expressions(v, out, key)
    elif isinstance(node, str):
        found = EXPRESSION.findall(node)
        out += found if found or key != "if" else [node]


def test_every_expression_refers_to_something_that_exists(workflows):
    documented = CI_DOC.read_text()
    problems = []
    for name, job_id, job in jobs(workflows):
        wf = workflows[name]
        inputs = set((wf["on"].get("workflow_dispatch") or {}).get("inputs", {}) if isinstance(wf["on"], dict) else {})
        env = set(wf.get("env", {})) | set(job.get("env", {}))
        matrix = job.get("strategy", {}).get("matrix", {})
        included = matrix.get("include", [])
        if included == CELLS_MATRIX:  # deploy's cells: the {stack, zone} objects its cells job writes
            included = [{"stack": "", "zone": ""}]
        matrix_keys = set(matrix) - {"include", "exclude"} | {k for inc in included for k in inc}
        seen_steps: set[str] = set()
        for step in job.get("steps", []):
            found: list[str] = []
            expressions(step, found)
            step_env = env | set(step.get("env", {}))
            for expr in found:
                for ctx, key in REFERENCE.findall(expr):
                    ok = {
                        "steps": key in seen_steps,
                        "matrix": key in matrix_keys,
                        "inputs": key in inputs,
                        "env": key in step_env,
                        "needs": key in ({job["needs"]} if isinstance(job.get("needs"), str) else set(job.get("needs", []))),
                        "vars": f"`{key}`" in documented,
                        "secrets": f"`{key}`" in documented,
                    }[ctx]
                    if not ok:
                        problems.append(
                            f"{name}:{job_id}: {ctx}.{key} is not defined"
                            + (" (document it in docs/ci.md)" if ctx in ("vars", "secrets") else "")
                        )
            if "id" in step:
                seen_steps.add(step["id"])
        job_level: list[str] = []
        expressions({k: v for k, v in job.items() if k != "steps"}, job_level)
        for expr in job_level:
            for ctx, key in REFERENCE.findall(expr):
                if ctx == "inputs" and key not in inputs or ctx == "matrix" and key not in matrix_keys:
                    problems.append(f"{name}:{job_id}: {ctx}.{key} is not defined")
        if "matrix." in str(job.get("if", "")):
            problems.append(f"{name}:{job_id}: a job's `if` is evaluated before its matrix exists")
    assert not problems, "\n".join(problems)


def matrix_stacks(job) -> list[str] | None:
    if job.get("strategy", {}).get("matrix", {}).get("include") == CELLS_MATRIX:
        return ["changed cells"]
    if job.get("strategy", {}).get("matrix", {}).get("zone") == ZONES_MATRIX:
        return ["zones of the changed cells"]
    stack = job.get("strategy", {}).get("matrix", {}).get("stack")
    if stack is None:
        return None
    if isinstance(stack, list):
        return stack
    if stack == CHANGED_MATRIX:  # the PR's: the stacks `meridian changes` names (the changes job)
        return ["changed"]
    if stack == "${{ fromJSON(needs.planned.outputs.stacks) }}":  # deploy: the stacks the plan job planned
        return sorted(k.removeprefix("planned_") for k in load(ROOT / ".github/workflows/deploy.yml")["jobs"]["plan"]["outputs"])
    default = re.search(r"'(\[[^']*\])'\s*\)\s*\}\}\s*$", stack)  # fromJSON(<one stack chosen> || '["us", ...]')
    assert default, f"cannot read the stack list from {stack!r}"
    return yaml.safe_load(default.group(1))


def test_every_stack_matrix_covers_exactly_the_projects_stacks(workflows):
    assert PLATFORMS == ["apac", "eu", "us"] and set(STACKS) - set(PLATFORMS) == {"us-cell-001"}
    matrices = {f"{name}:{job_id}": matrix_stacks(job) for name, job_id, job in jobs(workflows)}
    matrices = {k: v for k, v in matrices.items() if v is not None}
    assert {"preview.yml:preview", "deploy.yml:deploy", "drill.yml:dry-run", "drill.yml:sandbox"} <= set(matrices)
    previews = {"preview.yml:preview", "preview.yml:aws-preview"}  # a PR previews the stacks it touches, cells too
    cells = {"deploy.yml:plan-cells", "deploy.yml:deploy-cells"}  # the changed cells, after their platform
    zones = {"deploy.yml:zone-gate"}  # their zones, once each, after them
    for where, stacks in matrices.items():
        want = (
            ["changed"]
            if where in previews
            else ["changed cells"]
            if where in cells
            else ["zones of the changed cells"]
            if where in zones
            else PLATFORMS
        )
        assert sorted(stacks) == want, where
    for name, wf in workflows.items():
        dispatch = (wf["on"].get("workflow_dispatch") or {}).get("inputs", {})
        if "stack" in dispatch:
            assert sorted(set(dispatch["stack"]["options"]) - {"all"}) == PLATFORMS, name


def changes_step(workflows) -> dict:
    return next(s for s in workflows["preview.yml"]["jobs"]["changes"]["steps"] if s.get("id") == "changes")


def repo_with_one_tenant_added(tmp_path: Path) -> tuple[Path, str]:
    """The project's stack files committed on main, then one tenant added to the example cell; its
    `.venv/bin/meridian` is this checkout's CLI."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("Pulumi.yaml", *(f"Pulumi.{s}.yaml" for s in STACKS)):
        shutil.copy(ROOT / name, repo / name)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()
    cell = repo / "Pulumi.us-cell-001.yaml"
    cell.write_text(cell.read_text() + "    - {id: pied-piper, plan: starter, monthly_budget_usd: 50, data_tier: pool}\n")
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "meridian").write_text(f'#!/bin/sh\nexec {sys.executable} -m meridian "$@"\n')
    (repo / ".venv" / "bin" / "meridian").chmod(0o755)
    (repo / ".venv" / "bin" / "python").symlink_to(sys.executable)
    return repo, base


def run_step(step: dict, repo: Path, tmp_path: Path, **env: str) -> tuple[str, str]:
    """A step's script in `repo` as the runner runs it (bash -e): what it wrote to GITHUB_OUTPUT and the summary."""
    for name in ("output", "summary"):
        (tmp_path / name).write_text("")
    env = {
        **os.environ,
        **env,
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return (tmp_path / "output").read_text(), (tmp_path / "summary").read_text()


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq (on GitHub's ubuntu runners) is not installed here")
def test_the_pr_matrix_is_the_stacks_meridian_changes_names(workflows, tmp_path):
    """The changes job's script, run on a repository where one cell's tenant was added: its output
    is the one-cell matrix the preview jobs run on."""
    job = workflows["preview.yml"]["jobs"]["changes"]
    assert job["outputs"]["stacks"] == "${{ steps.changes.outputs.stacks }}"
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == "0", "the base commit must be in the clone"
    repo, base = repo_with_one_tenant_added(tmp_path)
    output, summary = run_step(changes_step(workflows), repo, tmp_path, BASE_SHA=base)
    assert output == 'stacks=["us-cell-001"]\n'
    assert "its tenants changed: added pied-piper" in summary


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq (on GitHub's ubuntu runners) is not installed here")
def test_deploy_updates_the_changed_cells_after_every_platform(workflows, tmp_path):
    wf = workflows["deploy.yml"]["jobs"]
    cells, plan, deploy = wf["cells"], wf["plan-cells"], wf["deploy-cells"]
    assert cells["needs"] == ["planned", "deploy"] and "needs.deploy.result == 'success'" in cells["if"]
    assert plan["needs"] == "cells" and deploy["needs"] == ["cells", "plan-cells"]
    assert "needs.plan-cells.result == 'success'" in deploy["if"] and "environment" not in plan
    assert deploy["environment"] == "${{ matrix.zone }}", "a cell deploys behind its zone's environment"
    gate = next(s for s in plan["steps"] if "meridian preview --stack" in s.get("run", ""))
    assert "--changed" not in gate["run"], "at merge the whole cell is judged (what a PR's subset left to it)"
    step = next(s for s in cells["steps"] if s.get("id") == "cells")
    repo, base = repo_with_one_tenant_added(tmp_path)
    output, _ = run_step(step, repo, tmp_path, BEFORE=base, DEPLOYED='["us", "eu", "apac"]')
    assert output == 'cells=[{"stack":"us-cell-001","zone":"us"}]\nzones=["us"]\n'
    output, _ = run_step(step, repo, tmp_path, BEFORE=base, DEPLOYED='["eu"]')
    assert output == "cells=[]\nzones=[]\n", "a cell whose platform was not deployed waits, and so does its zone's gate"
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qam", "x"], cwd=repo, check=True)
    output, _ = run_step(step, repo, tmp_path, BEFORE="", DEPLOYED='["us"]')  # by hand: every cell of the platform
    assert output == 'cells=[{"stack":"us-cell-001","zone":"us"}]\nzones=["us"]\n'


def _needs(job: dict) -> set[str]:
    return {job["needs"]} if isinstance(job.get("needs"), str) else set(job.get("needs", []))


def _after(jobs: dict, job_id: str) -> set[str]:
    """Every job `job_id` waits for, directly or through the jobs it needs."""
    seen: set[str] = set()
    todo = list(_needs(jobs[job_id]))
    while todo:
        need = todo.pop()
        if need not in seen:
            seen.add(need)
            todo += _needs(jobs[need])
    return seen


def test_after_the_cells_the_zone_is_gated_once_and_its_evidence_lists_every_stack(workflows):
    """The order is platform, changed cells, then the zone's SLO gate and evidence: a cell's update
    changes what its zone serves, and its own deploy job gates nothing. Fails if the gate after the
    cells is gone, runs before them, runs per cell, or is skipped when a cell deployed."""
    jobs = workflows["deploy.yml"]["jobs"]
    gates = [
        job_id
        for job_id, job in jobs.items()
        if any("meridian slo" in s.get("run", "") for s in job.get("steps", [])) and "deploy-cells" in _after(jobs, job_id)
    ]
    assert gates == ["zone-gate"], "no SLO gate runs after the cells deploy"
    gate = jobs["zone-gate"]
    assert {"deploy", "deploy-cells"} <= _after(jobs, "zone-gate") and "deploy" in _after(jobs, "deploy-cells")
    assert not any("meridian slo" in s.get("run", "") for s in jobs["deploy-cells"]["steps"]), "once per zone, not per cell"
    assert gate["strategy"]["matrix"] == {"zone": ZONES_MATRIX} and gate["env"]["STACK"] == "${{ matrix.zone }}"
    # it runs whenever some cell of the zone may be live: a failed cell leaves the others deployed
    condition = gate["if"]
    assert "needs.deploy-cells.result != 'skipped'" in condition and "needs.deploy-cells.result == 'success'" not in condition
    assert "needs.cells.outputs.zones != '[]'" in condition and "!cancelled()" in condition
    assert gate["environment"] == "${{ matrix.zone }}" and gate["concurrency"]["cancel-in-progress"] == "false"
    steps = gate["steps"]
    names = [s.get("id") or s.get("name", "") for s in steps]
    slo = next(s for s in steps if s.get("id") == "slo")
    assert '--stack "$STACK" --target aws --out out/slo' in slo["run"] and "if" not in slo, "the gate is never skipped"
    evidence = next(s for s in steps if "meridian evidence --stack" in s.get("run", ""))
    assert names.index("slo") < steps.index(evidence) and "--slo-report out/slo/report.json" in evidence["run"]
    assert evidence["if"].startswith("always()"), "evidence is written on a breach too"
    assert "meridian evidence verify" in evidence["run"]  # the zone's bundle: every stack (tests/test_evidence.py)
    outputs = next(s for s in steps if "pulumi stack output" in s.get("run", ""))
    assert steps.index(outputs) < names.index("slo"), "the AWS target reads the platform's outputs"
    breach = next(s for s in steps if "runbook" in s.get("name", "").lower())
    assert "steps.slo.outputs.code == '1'" in breach["if"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "out/"


def test_the_pr_comment_is_found_by_the_marker_meridian_diff_writes(workflows):
    for job in ("preview", "aws-preview"):
        step = comment_step(workflows, job)
        assert step["env"]["MARKER"] == COMMENT_MARKER.format(stack="${{ matrix.stack }}")
        assert "startsWith(MARKER)" in step["with"]["script"] and "updateComment" in step["with"]["script"]
    step = comment_step(workflows, "preview")
    runs = [s["run"] for _, _, s in steps(workflows) if "meridian preview --changed" in s.get("run", "")]
    assert runs and '--only "$STACK" --format markdown' in runs[0] and "> out/comment.md" in runs[0]
    assert "out/comment.md" in step["with"]["script"]


# Runs a workflow's actions/github-script body as the action does (an async function of require,
# github, context), with the GitHub API replaced by a recorder of the calls it makes.
GITHUB_SCRIPT_HARNESS = """
const fs = require('fs');
const calls = [];
const existing = JSON.parse(process.env.EXISTING_COMMENTS);
const github = {
  paginate: async (method, params) => { calls.push({call: 'list', method, params}); return existing; },
  rest: {issues: {
    listComments: 'issues.listComments',
    updateComment: async (params) => calls.push({call: 'update', params}),
    createComment: async (params) => calls.push({call: 'create', params}),
  }},
};
const context = {repo: {owner: 'acme', repo: 'infra'}, payload: {pull_request: {number: 42}}};
const core = {setFailed: (message) => calls.push({call: 'failed', message})};
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('require', 'github', 'context', 'core', fs.readFileSync(process.argv[2], 'utf8'))(require, github, context, core)
  .then(() => console.log(JSON.stringify(calls)), (err) => { console.error(err); process.exit(1); });
"""


def comment_step(workflows, job: str) -> dict:
    return next(
        s for s in workflows["preview.yml"]["jobs"][job]["steps"] if s.get("uses", "").startswith("actions/github-script")
    )


def run_comment_script(
    workflows,
    workdir: Path,
    existing: list[dict],
    *,
    job: str = "preview",
    aws_preview: str = "",
    pulumi_outcome: str = "",
    preview_code: str = "1",
) -> list[dict]:
    script = comment_step(workflows, job)["with"]["script"]
    assert "${{" not in script, "expressions inside a script are code injection; pass values through env"
    (workdir / "script.js").write_text(script)
    (workdir / "harness.js").write_text(GITHUB_SCRIPT_HARNESS)
    env = {
        **os.environ,
        "MARKER": COMMENT_MARKER.format(stack="us"),
        "STACK": "us",
        "PREVIEW_CODE": preview_code,
        "AWS_PREVIEW": aws_preview,
        "PULUMI_OUTCOME": pulumi_outcome,
        "RUN_URL": "https://github.example/acme/infra/actions/runs/1",
        "EXISTING_COMMENTS": json.dumps(existing),
    }
    proc = subprocess.run(["node", "harness.js", "script.js"], cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def comment_dir(tmp_path) -> Path:
    """out/comment.md as `meridian diff --markdown` writes it, for the recorded public-bucket change."""
    data = ROOT / "tests" / "data" / "plandiff"
    for label in ("base", "head-public-bucket"):
        (tmp_path / f"{label}.json").write_bytes(gzip.decompress((data / f"us-{label}.json.gz").read_bytes()))
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(
        app,
        [
            "diff",
            str(tmp_path / "base.json"),
            str(tmp_path / "head-public-bucket.json"),
            "--markdown",
            str(tmp_path / "out" / "comment.md"),
        ],
    )
    assert result.exit_code == 0, result.output
    return tmp_path


def test_the_comment_script_creates_the_stacks_comment_once_then_updates_it(workflows, comment_dir):
    comment = (comment_dir / "out" / "comment.md").read_text()
    others = [{"id": 1, "body": "LGTM"}, {"id": 2, "body": COMMENT_MARKER.format(stack="eu") + "\n..."}, {"id": 3, "body": None}]
    calls = run_comment_script(workflows, comment_dir, others)
    assert [c["call"] for c in calls] == ["list", "create"]
    created = calls[1]["params"]
    assert (created["owner"], created["repo"], created["issue_number"]) == ("acme", "infra", 42)
    assert created["body"].startswith(comment) and "Offline preview only" in created["body"]

    ours = {"id": 7, "body": comment + "\nan older run"}
    calls = run_comment_script(workflows, comment_dir, [*others, ours], aws_preview="configured")
    assert [c["call"] for c in calls] == ["list", "update"]
    assert calls[1]["params"]["comment_id"] == 7
    body = calls[1]["params"]["body"]
    assert body.startswith(comment) and "⏳ `pulumi preview --policy-pack policies` on AWS: running" in body
    assert "an older run" not in body and RULE in body

    # the AWS preview job, later, turns the waiting line into its verdict (and only that line)
    ours = {"id": 7, "body": body}
    for outcome, mark in (("failure", "❌"), ("success", "✅")):
        calls = run_comment_script(workflows, comment_dir, [*others, ours], job="aws-preview", pulumi_outcome=outcome)
        assert [c["call"] for c in calls] == ["list", "update"] and calls[1]["params"]["comment_id"] == 7
        after = calls[1]["params"]["body"]
        assert f"{mark} `pulumi preview --policy-pack policies` on AWS: {outcome}" in after and "⏳" not in after
        assert after.startswith(comment) and after.count("meridian:aws-preview") == 1 and "actions/runs/1" in after
        ours = {"id": 7, "body": after}


def test_the_aws_verdict_without_the_stacks_comment_fails_loudly(workflows, tmp_path):
    calls = run_comment_script(workflows, tmp_path, [{"id": 1, "body": "LGTM"}], job="aws-preview", pulumi_outcome="success")
    assert [c["call"] for c in calls] == ["list", "failed"] and "did not post it" in calls[1]["message"]


def test_a_preview_that_could_not_run_still_gets_its_comment(workflows, tmp_path):
    (tmp_path / "out").mkdir()  # exit 2: no plan, no comment.md
    calls = run_comment_script(workflows, tmp_path, [], preview_code="2")
    body = calls[-1]["params"]["body"]
    assert calls[-1]["call"] == "create" and body.startswith(COMMENT_MARKER.format(stack="us"))
    assert "could not run (exit 2)" in body and "actions/runs/1" in body


def workflow_commands(workflows):
    return [
        c for where, _job, step in steps(workflows) if "run" in step for c in commands_in(script_commands(step["run"], where))
    ]


def pending_path(args: list[str]) -> tuple[str, ...] | None:
    """The longest leading run of words that names a subcommand still being written, if any."""
    words = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    return next((tuple(words[:n]) for n in range(len(words), 0, -1) if tuple(words[:n]) in PENDING), None)


def test_meridian_and_make_commands_in_the_workflows_are_accepted(workflows):
    commands = workflow_commands(workflows)
    assert {c.args[0] for c in commands if c.tool == "meridian"} >= {
        "preview",
        "changes",
        "slo",
        "drill",
        "evidence",
        "preflight",
        "rollout",
    }
    problems = []
    for c in commands:
        path = pending_path(c.args) if c.tool == "meridian" else None
        if path is not None and help_text(path)[0] != 0:  # not in the CLI yet: held to its issue's flags
            problems += [
                f"{c.where}: meridian {' '.join(path)} {f} is not in its issue"
                for f in flags_in(c.args)
                if f not in PENDING[path]
            ]
            continue
        problems += check(c)
    assert not problems, "\n".join(problems)


def test_oidc_and_secrets_only_where_aws_is_used(workflows):
    for name, job_id, job in jobs(workflows):
        uses = [s.get("uses", "") for s in job.get("steps", [])]
        assumes_role = any(u.startswith("aws-actions/configure-aws-credentials") for u in uses)
        assert (job.get("permissions", {}).get("id-token") == "write") == assumes_role, f"{name}:{job_id}"
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("aws-actions/configure-aws-credentials"):
                assert "role-to-assume" in step["with"] and "aws-access-key-id" not in step["with"], f"{name}:{job_id}: OIDC only"
    for name, wf in workflows.items():
        assert wf["permissions"] == {"contents": "read"}, f"{name}: least privilege by default, jobs ask for more"
        assert "secrets.AWS" not in (ROOT / ".github" / "workflows" / name).read_text(), f"{name}: no long-lived AWS keys"


def test_checkouts_leave_no_token_behind_for_the_code_they_run(workflows):
    for where, _job, step in steps(workflows):
        if step.get("uses", "").startswith("actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") == "false", where


def test_changes_to_aws_happen_only_behind_a_protected_environment(workflows):
    for name, job_id, job in jobs(workflows):
        runs = " ".join(s.get("run", "") for s in job.get("steps", []))
        applies = any(s.get("with", {}).get("command") == "up" for s in job.get("steps", []))
        executes_on_aws = "--target aws" in runs and ("--execute" in runs or "meridian rollout" in runs)
        if applies or executes_on_aws:
            assert "environment" in job, f"{name}:{job_id} changes AWS without an environment's protection rules"
            assert job.get("concurrency", {}).get("cancel-in-progress") == "false", (
                f"{name}:{job_id}: never cancel a running change"
            )


def test_the_deploy_gate_points_to_the_rollback_runbook_on_an_slo_breach(workflows):
    deploy = workflows["deploy.yml"]["jobs"]["deploy"]
    ids = [s.get("id") for s in deploy["steps"]]
    assert ids.index("up") < ids.index("slo"), "the SLO gate runs after the update"
    slo = next(s for s in deploy["steps"] if s.get("id") == "slo")
    assert "--target aws" in slo["run"] and "--out out/slo" in slo["run"]
    breach = next(s for s in deploy["steps"] if "runbook" in s.get("name", "").lower())
    assert breach["if"] == "failure() && steps.slo.outputs.code == '1'"
    assert "ROLLBACK_RUNBOOK" in breach["env"]["RUNBOOK_URL"]
    upload = next(s for s in deploy["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"
    assert any("meridian evidence" in s.get("run", "") for s in deploy["steps"])


def test_the_rollout_checks_its_version_signs_its_evidence_and_verifies_it_against_the_signers_key(workflows):
    job = workflows["rollout.yml"]["jobs"]["rollout"]
    names = [s.get("name", "") for s in job["steps"]]
    check = names.index("The version asked for is the one deployed on the canary track")
    assert check < names.index("Roll out (or back)"), "the version is checked before any weight moves"
    run = next(s for s in job["steps"] if s.get("id") == "rollout")
    assert "--signing-key" in run["run"] and "MERIDIAN_SIGNING_KEY" in run["env"]["SIGNING_KEY"]
    assert "rm -f" in run["run"] and "umask 077" in run["run"], "the private key leaves no readable file behind"
    verify = next(s for s in job["steps"] if "bundle verifies" in s.get("name", ""))
    assert "--key" in verify["run"] and "vars.MERIDIAN_SIGNING_PUBLIC_KEY" in verify["env"]["SIGNER_PUBLIC_KEY"]
    assert job["concurrency"]["group"] == "deploy-${{ inputs.stack }}", "shares the deploy lock: never during an update"


def test_every_job_has_a_timeout(workflows):
    for name, job_id, job in jobs(workflows):
        assert int(job.get("timeout-minutes", 0)) > 0, f"{name}:{job_id}"


def pulumi_steps(workflows):
    """(where, job, step) of every pulumi/actions step that runs the program (not just reads outputs)."""
    for where, job, step in steps(workflows):
        if step.get("uses", "").startswith("pulumi/actions") and step["with"].get("command") in ("preview", "up"):
            yield where, job, step


def test_jobs_that_run_the_program_on_aws_run_where_the_clusters_api_is_reachable(workflows):
    found = list(pulumi_steps(workflows))
    assert len(found) >= 4
    for where, job, _step in found:
        # GitHub-hosted runners have no fixed egress addresses to put in cluster.public_access_cidrs
        assert job["runs-on"] == CLUSTER_RUNNER, f"{where}: runs on {job['runs-on']!r}"
    assert "`MERIDIAN_CLUSTER_RUNNER`" in CI_DOC.read_text()


def test_stacks_are_created_on_their_first_run_and_the_policy_pack_has_its_venv(workflows):
    policy_venv = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())["runtime"]["options"]["virtualenv"]
    made = subprocess.run(["make", "-n", "policy-venv"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert made.returncode == 0 and f"-m venv policies/{policy_venv}" in made.stdout, made.stdout + made.stderr
    for where, job, step in pulumi_steps(workflows):
        if step["with"].get("expect-no-changes") != "true":  # drift: a stack that does not exist is no drift
            assert step["with"].get("upsert") == "true", f"{where}: a new stack must be created (upsert)"
        if "policyPacks" in step["with"]:
            before = job["steps"][: job["steps"].index(step)]
            assert any("policy-venv" in s.get("run", "") for s in before), f"{where}: the pack's venv is not made"


def test_the_deploy_applies_exactly_the_plan_its_approvers_saw(workflows):
    wf = workflows["deploy.yml"]["jobs"]
    plan, deploy = wf["plan"], wf["deploy"]
    assert "environment" not in plan and deploy["environment"] == "${{ matrix.stack }}" and deploy["needs"] == "planned"
    assert wf["planned"]["needs"] == "plan"
    saved = next(s for s in plan["steps"] if s.get("with", {}).get("command") == "preview")
    assert saved["with"]["plan"] == "out/update-plan.json" and saved["with"]["comment-on-summary"] == "true"
    upload = next(s for s in plan["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "out/update-plan.json" and upload["with"]["if-no-files-found"] == "error"
    names = [s.get("id") or s.get("uses", "").split("@")[0] for s in deploy["steps"]]
    download = next(s for s in deploy["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["name"] == upload["with"]["name"]
    up = next(s for s in deploy["steps"] if s.get("id") == "up")
    assert up["with"]["plan"] == "out/update-plan.json" and names.index("actions/download-artifact") < names.index("up")
    kept = next(s for s in deploy["steps"] if s.get("name") == "Plan, SLO report and evidence")
    assert "!out/update-plan.json" in kept["with"]["path"], "the plan is not kept for 400 days with the evidence"


def test_drift_is_detected_daily_without_changing_anything(workflows):
    wf = workflows["drift.yml"]
    assert wf["on"]["schedule"] and "workflow_dispatch" in wf["on"]
    job = wf["jobs"]["drift"]
    step = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions"))
    assert step["with"]["command"] == "preview" and step["with"]["refresh"] == "true"
    assert step["with"]["expect-no-changes"] == "true" and "environment" not in job
    assert job["concurrency"]["group"] == "deploy-${{ matrix.stack }}", "never during an update"


def test_every_role_that_runs_the_program_has_a_kubernetes_access_entry(workflows, previews):
    """kubeconfig authenticates as whatever role the job holds (`aws eks get-token`): each such role is a
    config key that the program turns into an access entry, and docs/ci.md says which variable is which key."""
    role_key = {
        "AWS_PREVIEW_ROLE_ARN": "pr_viewer_role_arns",  # runs pull-request code: view without Secrets
        "AWS_PLAN_ROLE_ARN": "viewer_role_arns",
        "AWS_DEPLOY_ROLE_ARN": "deploy_role_arn",
    }
    doc = CI_DOC.read_text()
    for where, job, _step in pulumi_steps(workflows):
        creds = next(s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials"))
        var = re.fullmatch(r"\$\{\{ vars\.(\w+) \}\}", creds["with"]["role-to-assume"])[1]
        assert var in role_key, f"{where}: {var} is not a role the clusters grant access to"
        assert re.search(rf"`{var}`.*`cluster\.{role_key[var]}`", doc), f"docs/ci.md: say {var} goes in cluster.{role_key[var]}"
    for stack, preview in previews.items():
        cluster = load_stack(ROOT, stack).cluster
        grants = {
            (r["inputs"]["principalArn"], r["inputs"]["policyArn"].rsplit("/", 1)[1])
            for r in preview.plan["resources"]
            if r["type"] == "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
        }
        assert cluster.viewer_role_arns, stack
        for arn in cluster.viewer_role_arns:
            assert (arn, "AmazonEKSAdminViewPolicy") in grants, f"{stack}: {arn} has no view access entry"
        assert cluster.pr_viewer_role_arns, stack
        for arn in cluster.pr_viewer_role_arns:  # review 18 B1: the PR's author chooses what runs with it
            assert {p for a, p in grants if a == arn} == {"AmazonEKSViewPolicy"}, f"{stack}: {arn} must view without Secrets"
        assert (cluster.deploy_role_arn, "AmazonEKSClusterAdminPolicy") in grants, stack


# IAM: a role's MaxSessionDuration defaults to 3600 s, and AssumeRoleWithWebIdentity refuses a longer
# DurationSeconds ("exceeds the MaxSessionDuration set for this role"):
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_update-role-settings.html#id_roles_update-session-duration
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html (DurationSeconds)
IAM_DEFAULT_MAX_SESSION_S = 3600


def documented_max_sessions() -> dict[str, int]:
    """docs/ci.md's table of the MaxSessionDuration each role variable must be raised to."""
    text = CI_DOC.read_text()
    assert "<!-- max-session-duration: tests/test_workflows.py -->" in text
    table = text.split("<!-- max-session-duration: tests/test_workflows.py -->", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.strip().splitlines()[2:]]
    out: dict[str, int] = {}
    for cells in rows:
        var, need = cells[0].strip().strip("`"), int(cells[-1].strip())
        out[var] = max(out.get(var, 0), need)
    return out


def test_credentials_longer_than_an_hour_only_from_roles_whose_setup_raises_their_limit(workflows):
    documented = documented_max_sessions()
    asked = []
    for where, _job, step in steps(workflows):
        if not step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
            continue
        seconds = int(step["with"].get("role-duration-seconds", IAM_DEFAULT_MAX_SESSION_S))
        if seconds <= IAM_DEFAULT_MAX_SESSION_S:
            continue
        var = re.fullmatch(r"\$\{\{ vars\.(\w+) \}\}", step["with"]["role-to-assume"]).group(1)
        asked.append(var)
        assert documented.get(var, IAM_DEFAULT_MAX_SESSION_S) >= seconds, (
            f"{where}: asks {seconds} s of {var}, whose MaxSessionDuration docs/ci.md does not raise to that "
            f"(IAM's default is {IAM_DEFAULT_MAX_SESSION_S} s: the first run would fail to assume the role)"
        )
    assert set(asked) == set(documented), "the docs' table lists exactly the roles asked for more than an hour"


def run_planned_step(workflows, planned: dict, asked: str) -> tuple[list[str], str]:
    """deploy.yml's `planned` step under bash and jq, as the runner runs it: (stacks, annotations)."""
    step = workflows["deploy.yml"]["jobs"]["planned"]["steps"][0]
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"gh-output-{os.getpid()}"
    out.write_text("")
    env = {**os.environ, "PLANNED": json.dumps(planned), "ASKED": asked, "GITHUB_OUTPUT": str(out)}
    proc = subprocess.run(["bash", "-e", "-c", step["run"]], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in out.read_text().splitlines() if ln.startswith("stacks="))
    out.unlink()
    return json.loads(line.removeprefix("stacks=")), proc.stdout


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq (on GitHub's ubuntu runners) is not installed here")
def test_a_stack_whose_plan_failed_asks_nobody_for_approval(workflows):
    # GitHub asks for an environment's approval before a job's first step, and a job's `if` cannot see
    # its matrix (https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/accessing-contextual-information-about-workflow-runs#context-availability):
    # the deploy matrix itself must leave out a stack whose plan leg failed. A matrix job's outputs are
    # merged by name and a failed leg sets none (docs: "Using job outputs in a matrix job").
    wf = workflows["deploy.yml"]["jobs"]
    plan, planned, deploy = wf["plan"], wf["planned"], wf["deploy"]
    assert plan["steps"][-1]["id"] == "planned", "the ready flag is the plan job's last step: set only if all before passed"
    assert plan["outputs"] == {f"planned_{s}": f"${{{{ steps.planned.outputs.planned_{s} }}}}" for s in PLATFORMS}
    assert planned["if"] == "${{ !cancelled() }}" and "environment" not in planned
    assert deploy["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.planned.outputs.stacks) }}"
    assert "needs.planned.outputs.stacks != '[]'" in deploy["if"] and "!cancelled()" in deploy["if"]
    assert planned["steps"][0]["env"]["ASKED"].endswith("""'["us", "eu", "apac"]' }}""")
    stacks, said = run_planned_step(workflows, {"planned_us": "true", "planned_apac": "true"}, '["us", "eu", "apac"]')
    assert stacks == ["us", "apac"] and "::error title=No plan, no deploy::the plan job failed for eu:" in said
    stacks, said = run_planned_step(
        workflows, {"planned_us": "true", "planned_eu": "true", "planned_apac": "true"}, '["us", "eu", "apac"]'
    )
    assert stacks == ["us", "eu", "apac"] and said == ""
    assert run_planned_step(workflows, {}, '["eu"]')[0] == []


def test_every_stack_s_aws_verdict_replaces_its_running_line_even_when_an_offline_gate_failed(workflows):
    # GitHub: "If a job fails or is skipped, all jobs that need it are skipped unless the jobs use a
    # conditional expression that causes the job to continue"; a matrix job fails when any leg fails
    # (https://docs.github.com/en/actions/writing-workflows/workflow-syntax-for-github-actions#jobsjobs_idneeds).
    # The preview legs post "running" for the AWS line whatever their gate says, so the job that
    # replaces it must run after a failed leg too (but not after a cancel: then nothing was posted).
    job = workflows["preview.yml"]["jobs"]["aws-preview"]
    assert job["needs"] == ["changes", "preview"]
    condition = job["if"].removeprefix("${{").removesuffix("}}").strip()
    assert condition.startswith("!cancelled() && "), job["if"]
    posted = comment_step(workflows, "preview")
    assert posted["if"].startswith("always()"), "the running line is posted whatever the offline gate said"


FAKE_GH = """#!/usr/bin/env bash
# gh api repos/<repo>/actions/runs?status=<s>&per_page=100: the runs file's runs with that status
status=$(printf '%s' "$2" | sed -E 's/.*status=([a-z_]+).*/\\1/')
jq --arg s "$status" '{workflow_runs: [.[] | select(.status == $s)]}' "$RUNS_FILE"
"""


def stack_busy(tmp_path, runs: list[dict]) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    (tmp_path / "runs.json").write_text(json.dumps(runs))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RUNS_FILE": str(tmp_path / "runs.json"),
        "GITHUB_REPOSITORY": "acme/infra",
        "GITHUB_RUN_ID": "7",
    }
    script = ROOT / ".github" / "scripts" / "stack-busy.sh"
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)


def _run(run_id: int, workflow: str, status: str) -> dict:
    return {
        "id": run_id,
        "name": workflow,
        "run_number": run_id,
        "status": status,
        "path": f".github/workflows/{workflow}.yml",
        "html_url": f"https://github.example/acme/infra/actions/runs/{run_id}",
    }


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq (on GitHub's ubuntu runners) is not installed here")
def test_nothing_queues_behind_the_stack_lock_where_a_deploy_may_be_pending(workflows, tmp_path):
    # GitHub keeps one pending job per concurrency group: "any existing pending job or workflow in the
    # same concurrency group ... will be canceled and the new queued job or workflow will take its place"
    # (https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/control-the-concurrency-of-workflows-and-jobs).
    # So only deploy may queue on deploy-<stack>; every other job there checks first.
    for name, job_id, job in jobs(workflows):
        deploys = {("deploy.yml", "deploy"), ("deploy.yml", "deploy-cells")}  # the deploy's own queue on its lock
        if not job.get("concurrency", {}).get("group", "").startswith("deploy-") or (name, job_id) in deploys:
            continue
        assert job["needs"] == "stack-free", f"{name}:{job_id} queues on the deploy lock unchecked"
        free = workflows[name]["jobs"]["stack-free"]
        assert free["permissions"] == {"contents": "read", "actions": "read"}
        assert ".github/scripts/stack-busy.sh" in free["steps"][-1]["run"]
        if name == "drift.yml":
            assert job["if"] == "needs.stack-free.outputs.free == 'true'", "drift skips instead of queueing"
    # the script: a deploy waiting for approval (pending behind a running job) makes the stack busy
    busy = stack_busy(
        tmp_path, [_run(7, "rollout", "in_progress"), _run(3, "deploy", "waiting"), _run(4, "preview", "in_progress")]
    )
    assert busy.returncode == 1, busy.stderr
    assert busy.stdout.strip() == "deploy run #3: waiting (https://github.example/acme/infra/actions/runs/3)"
    free = stack_busy(
        tmp_path, [_run(7, "rollout", "in_progress"), _run(4, "preview", "in_progress"), _run(5, "deploy", "completed")]
    )
    assert free.returncode == 0 and free.stdout == "", free.stderr


def test_the_pr_preview_installs_only_the_preview_set_and_caches_what_installs_it(workflows):
    # the preview job runs `meridian preview --changed` and `preflight`, which need only the base set
    # (tests/test_extras.py); the Makefile installs with uv, whose cache is ~/.cache/uv (uv docs,
    # "Caching": https://docs.astral.sh/uv/concepts/cache/), which setup-python's `cache: pip` does not keep
    job = workflows["preview.yml"]["jobs"]["preview"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "make setup-preview" in runs
    assert not re.search(r"make (-C base )?setup(?!-)", runs), "the whole harness installed for a preview"
    py = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert "cache" not in py.get("with", {}), "a pip cache for an install pip does not do"
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == "~/.cache/uv" and "constraints.txt" in cache["with"]["key"]
    uses = [s.get("uses", "") or s.get("run", "") for s in job["steps"]]
    assert uses.index(cache["uses"]) < uses.index("make setup-preview")


def test_the_rollout_job_points_to_a_report_only_when_one_was_written(workflows):
    # a rollout that exits 1 before writing its report (an error) must not send readers to it
    job = workflows["rollout.yml"]["jobs"]["rollout"]
    said = next(s for s in job["steps"] if s.get("name") == "A rolled-back canary says where and why")
    assert "hashFiles('out/rollout/rollout.md') != ''" in said["if"]
    broke = next(s for s in job["steps"] if s.get("name") == "A rollout that broke before its report says so")
    assert "hashFiles('out/rollout/rollout.md') == ''" in broke["if"] and "--rollback" in broke["run"]
