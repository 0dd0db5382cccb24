"""`make preview` installs only pyproject.toml's base set, so `meridian preview` (and the preflight it
runs) must work with nothing else: every package outside the base set's dependency closure is made
unimportable in a subprocess (a meta-path finder from sitecustomize; the policy pack's analyzer
inherits it), which then runs the CLI's start and a whole preview."""

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
import sys

BLOCKED = frozenset({blocked})


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
def base_env(tmp_path_factory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("base-only")
    blocked = blocked_modules()
    assert HARNESS <= blocked, f"the base set pulls in {sorted(HARNESS - blocked)}"
    (site / "sitecustomize.py").write_text(BLOCKER.format(blocked=json.dumps(sorted(blocked))))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def _run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_blocker_blocks(base_env):
    """What the other tests prove rests on this: a harness package really is unimportable there."""
    for module in ("locust", "moto", "asyncpg", "matplotlib"):
        proc = _run(base_env, "-c", f"import {module}")
        assert proc.returncode == 1 and "outside the base set" in proc.stderr, (module, proc.stderr[-500:])
    assert _run(base_env, "-c", "import pulumi_aws, pulumi_policy, typer, rich, pydantic, yaml, boto3").returncode == 0


def test_the_cli_starts_without_the_extras(base_env):
    for args in (["--help"], ["preview", "--help"], ["preflight", "--help"]):
        proc = _run(base_env, "-m", "meridian", *args, timeout=60)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])


@pytest.mark.slow
def test_a_whole_preview_runs_on_the_base_set(base_env):
    """The program, the policy pack's analyzer, cost and the deploy preflight, as `make preview` runs them."""
    proc = _run(base_env, "-m", "meridian", "preview", "--stack", "us")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "deploy preflight: passed" in proc.stdout, proc.stdout[-3000:]
    assert "outside the base set" not in proc.stdout + proc.stderr


def test_make_preview_installs_the_base_set_and_make_test_everything():
    makefile = (ROOT / "Makefile").read_text()
    assert "preview: $(PREVIEW_STAMP)" in makefile and "$(INSTALL) -e .\n" in makefile
    assert "$(INSTALL) --compile-bytecode -e '.[service,harness,dev]'" in makefile
    assert "lint: $(STAMP)" in makefile and "test: lint" in makefile
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"service", "harness", "dev"} == set(extras)


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
