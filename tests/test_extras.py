"""`make preview` installs only pyproject.toml's base set, so `meridian preview` (and the preflight it
runs) must work with nothing else: every package outside the base set's dependency closure is made
unimportable in a subprocess (a meta-path finder from sitecustomize; the policy pack's analyzer
inherits it), which then runs the CLI's start and a whole preview. The same sitecustomize records
what each process imported, so the base set is shown to hold nothing the preview does not import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .helpers import ROOT

BLOCKER = """\
import atexit
import os
import signal
import sys

BLOCKED = frozenset({blocked})
RECORD = {record}


def record(signum=None, frame=None):
    with open(os.path.join(RECORD, f"{{os.getpid()}}.txt"), "w") as out:
        out.write("\\n".join(sorted({{m.partition(".")[0] for m in list(sys.modules)}})))
    if signum is not None:  # the engine stops the analyzer with SIGTERM: record, then die of it as before
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


atexit.register(record)
signal.signal(signal.SIGTERM, record)


class OutsideTheBaseSet:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (outside the base set: tests/test_extras.py)", name=name)
        return None


sys.meta_path.insert(0, OutsideTheBaseSet())
"""
# what the issue names as never needed by a preview
HARNESS = {"locust", "matplotlib", "moto", "chaoslib", "chaostoolkit", "asyncpg", "starlette", "uvicorn", "httpx", "pytest"}


def _name(dist: metadata.Distribution) -> str:
    return Requirement(dist.metadata["Name"]).name.lower().replace("_", "-").replace(".", "-")


def base_closure() -> set[str]:
    """The distributions `pip install -e .` brings: the base dependencies and theirs, without extras."""
    todo = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = req.name.lower().replace("_", "-").replace(".", "-")
        if name in seen:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.distribution(req.name).requires or []]
    return seen


def blocked_modules() -> set[str]:
    """Top-level modules that only distributions outside the base closure provide."""
    allowed = base_closure() | {"meridian"}  # the project itself (this checkout)
    providers = metadata.packages_distributions()
    return {
        module
        for module, dists in providers.items()
        if not module.startswith("_") and not {d.lower().replace("_", "-").replace(".", "-") for d in dists} & allowed
    } - set(sys.stdlib_module_names)


@pytest.fixture(scope="module")
def imports_dir(tmp_path_factory) -> Path:
    """Where each process in the base-only environment writes the top-level modules it imported."""
    return tmp_path_factory.mktemp("imports")


@pytest.fixture(scope="module")
def base_env(tmp_path_factory, imports_dir) -> dict[str, str]:
    site = tmp_path_factory.mktemp("base-only")
    blocked = blocked_modules()
    assert HARNESS <= blocked, f"the base set pulls in {sorted(HARNESS - blocked)}"
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=json.dumps(sorted(blocked)), record=repr(str(imports_dir))))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def import_names(distribution: str) -> set[str]:
    """The top-level modules an installed distribution provides."""
    wanted = distribution.lower().replace("_", "-").replace(".", "-")
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if wanted in {d.lower().replace("_", "-").replace(".", "-") for d in dists}
    }


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_blocker_blocks(base_env):
    """What the other tests prove rests on this: a harness package really is unimportable there."""
    for module in ("locust", "moto", "asyncpg", "matplotlib", "cfnlint", "boto3", "dns"):
        proc = _run(base_env, "-c", f"import {module}")
        assert proc.returncode == 1 and "outside the base set" in proc.stderr, (module, proc.stderr[-500:])
    assert _run(base_env, "-c", "import pulumi_aws, pulumi_policy, principalmapper, typer, rich, pydantic, yaml").returncode == 0


def test_the_cli_starts_without_the_extras(base_env):
    for args in (["--help"], ["preview", "--help"], ["preflight", "--help"]):
        proc = _run(base_env, "-m", "meridian", *args, timeout=60)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])


@pytest.mark.slow
def test_a_whole_preview_runs_on_the_base_set_and_imports_all_of_it(base_env, imports_dir):
    """The program, the policy pack's analyzer, cost and the deploy preflight, as `make preview` runs
    them, need nothing outside the base set; and each of the base set's own dependencies is imported
    by the preview or its analyzer: the base set holds nothing a preview does not need."""
    for old in imports_dir.iterdir():
        old.unlink()
    proc = _run(base_env, "-m", "meridian", "preview", "--stack", "us")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "deploy preflight: passed" in proc.stdout, proc.stdout[-3000:]
    assert "outside the base set" not in proc.stdout + proc.stderr

    processes = [set(path.read_text().split()) for path in imports_dir.iterdir()]
    assert any("pulumi_aws" in p for p in processes), "the CLI's process recorded no imports"
    assert any("pulumi_policy" in p for p in processes), "the analyzer's process recorded no imports"
    imported = set().union(*processes)
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    unused = sorted(req.name for req in map(Requirement, dependencies) if not import_names(req.name) & imported)
    assert not unused, f"in the base set but never imported by a preview (move them to an extra): {unused}"


@pytest.mark.slow
def test_a_command_that_needs_an_extra_says_so(base_env):
    """`meridian preflight --online` needs boto3 (the `aws` extra), which `make preview` does not install."""
    proc = _run(base_env, "-m", "meridian", "preflight", "--stack", "us", "--online")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "needs boto3, which is not installed" in proc.stderr and "`make setup`" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_make_preview_installs_the_base_set_and_make_test_everything():
    makefile = (ROOT / "Makefile").read_text()
    assert "preview: $(PREVIEW_STAMP)" in makefile and "$(INSTALL) -e .\n" in makefile
    assert "$(INSTALL) --compile-bytecode -e '.[service,harness,dev]'" in makefile
    assert "lint: $(STAMP)" in makefile and "test: lint" in makefile
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"service", "aws", "harness", "dev"} == set(extras)
    assert "meridian[service,aws]" in extras["harness"], "make test installs the aws extra through the harness"


def test_the_extras_hold_every_package_the_harness_imports():
    """Each third-party import of meridian/, loadtests/ and benchmarks/ is in the base closure or an extra."""
    import ast

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = {Requirement(r).name.lower() for reqs in project["optional-dependencies"].values() for r in reqs}
    listed |= base_closure()
    providers = metadata.packages_distributions()
    first_party = {"meridian", "components", "stackconfig", "service", "policies", "loadtests", "benchmarks", "tests"}
    missing = set()
    for folder in ("meridian", "loadtests", "benchmarks", "components", "stackconfig"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in first_party or path.parent.joinpath(f"{top}.py").is_file():
                        continue
                    dists = {d.lower().replace("_", "-") for d in providers.get(top, [top])}
                    if not dists & {n.replace("_", "-") for n in listed}:
                        missing.add(f"{top} ({Path(path).relative_to(ROOT)})")
    assert not missing, sorted(missing)


def test_the_pr_preview_job_s_diff_runs_on_the_base_set(base_env, tmp_path):
    """preview.yml installs only the base set (`make setup-preview`) and runs `meridian diff` there."""
    import gzip

    data = ROOT / "tests" / "data" / "plandiff"
    for label in ("base", "head-public-bucket"):
        (tmp_path / f"{label}.json").write_bytes(gzip.decompress((data / f"us-{label}.json.gz").read_bytes()))
    proc = _run(base_env, "-m", "meridian", "diff", str(tmp_path / "base.json"), str(tmp_path / "head-public-bucket.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "outside the base set" not in proc.stdout + proc.stderr and "Resources:" in proc.stdout
