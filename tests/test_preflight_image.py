"""The `image` preflight check: the image's packages against what the service imports, and the
image's platforms against the node groups. Each verdict is shown failing on the shape it exists for
(the Dockerfile before the `service` extra, an x86-only build for Graviton nodes), and the
repository's own Dockerfile, extra and stacks pass."""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from google.protobuf import json_format, struct_pb2

from meridian.engine.plan import Plan
from meridian.preflight import image
from meridian.preflight.checks import CHECKS, Context
from stackconfig import load_stack

from .helpers import ROOT, full_project_copy

SOURCE = ROOT / "service"
# service/Dockerfile's install line before the extra (the AWS review's finding 2): boto3 is missing
OLD_DOCKERFILE = """\
FROM python:3.11-slim-bookworm AS build
COPY constraints.txt .
RUN python -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt starlette uvicorn asyncpg uvloop httptools
"""


def _findings(dockerfile: str, pyproject: str | None = None, source: Path = SOURCE) -> list[str]:
    pyproject = pyproject if pyproject is not None else (ROOT / "pyproject.toml").read_text()
    return image.package_findings(source, dockerfile, pyproject, packages_distributions())[0]


# --- packages -----------------------------------------------------------------------------------------


def test_the_repositorys_dockerfile_installs_exactly_what_the_service_imports():
    assert _findings((SOURCE / "Dockerfile").read_text()) == []


def test_the_service_extra_is_the_import_scan_of_what_runs():
    scanned = {image.distribution_of(i.module, packages_distributions()) for i in image.service_imports(SOURCE)}
    extra = set(image.extra_requirements((ROOT / "pyproject.toml").read_text(), "service"))
    assert scanned == extra
    # what the review found missing: the database password (serve and migrate) and S3 need boto3
    where = {i.where.split(":")[0] for i in image.service_imports(SOURCE) if i.module == "boto3"}
    assert {"service/dbsecret.py", "service/objects.py"} <= where


def test_the_old_dockerfile_fails_on_boto3():
    problems = _findings(OLD_DOCKERFILE)
    assert any(p.startswith("the image lacks boto3, which the service imports at service/dbsecret.py") for p in problems), (
        problems
    )
    assert any("lacks botocore" in p for p in problems)


def test_an_install_without_the_pins_or_from_an_unknown_file_is_a_finding():
    unpinned = _findings(OLD_DOCKERFILE.replace("-c constraints.txt ", "") + " boto3 botocore\n")
    assert any("without `-c constraints.txt`" in p for p in unpinned)
    unknown = _findings("RUN pip install -c constraints.txt -r reqs.txt\n")
    assert any("reqs.txt, which the Dockerfile does not write from a pyproject.toml extra" in p for p in unknown)
    assert any("lacks starlette" in p for p in unknown)


def test_the_extra_missing_an_import_or_listing_a_stranger_is_a_finding():
    pyproject = (ROOT / "pyproject.toml").read_text()
    without_boto3 = pyproject.replace('  "boto3",  # the database password', '  # "boto3",  # the database password', 1)
    assert without_boto3 != pyproject
    problems = _findings((SOURCE / "Dockerfile").read_text(), without_boto3)
    assert any("`service` extra misses boto3" in p for p in problems)
    assert any("the image lacks boto3" in p for p in problems)  # the Dockerfile installs the extra: it follows
    stranger = pyproject.replace('  "botocore",\n]', '  "botocore",\n  "requests",\n]', 1)
    assert stranger != pyproject
    assert any(
        "lists requests, which no module of the service imports" in p
        for p in _findings((SOURCE / "Dockerfile").read_text(), stranger)
    )


def test_the_scan_follows_what_runs(tmp_path):
    """Imports inside functions count, in modules reached through other functions; a module nothing
    imports does not; TYPE_CHECKING imports do not; `except ImportError` makes one optional."""
    src = tmp_path / "service"
    src.mkdir()
    files = {
        "__init__.py": "",
        "__main__.py": """
            def main():
                from service import store
                try:
                    import uvloop
                except ImportError:
                    pass
        """,
        "store.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                import mypy_extensions
            def connect():
                from .secret import read
        """,
        "secret.py": "def read():\n    import boto3\n",
        "unused.py": "import numpy\n",
    }
    for name, text in files.items():
        (src / name).write_text(textwrap.dedent(text))
    found = {(i.module, i.where, i.optional) for i in image.service_imports(src)}
    assert found == {("boto3", "service/secret.py:2", False), ("uvloop", "service/__main__.py:5", True)}


# --- architectures ------------------------------------------------------------------------------------

DUMP = r"""
import pickle, sys
from pathlib import Path
from meridian.engine.plan import Plan
from meridian.engine.run import run_program
run = run_program(Path(sys.argv[1]), sys.argv[2])
Path(sys.argv[3]).write_bytes(pickle.dumps(Plan("meridian", sys.argv[2], run.registrations, run.outputs)))
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Plan, object]:
    out = tmp_path_factory.mktemp("preflight-image") / "plan.pickle"
    proc = subprocess.run(
        [sys.executable, "-c", DUMP, str(ROOT), "us", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pickle.loads(out.read_bytes()), load_stack(ROOT, "us")


def _with_node_group(plan: Plan, **changes) -> Plan:
    regs = copy.deepcopy(plan.registrations)
    for reg in regs:
        if reg.type == image.NODE_GROUP:
            inputs = json_format.MessageToDict(reg.inputs)
            inputs.update(changes)
            reg.inputs = json_format.ParseDict(inputs, struct_pb2.Struct())
            reg._dict = None
    return Plan(plan.project, plan.stack, regs, plan.outputs)


def _built(project: Path, cfg, platforms: str) -> image.BuildManifests:
    """What `make image` leaves behind (its printf line) for the stack's tag."""
    (project / image.MANIFEST_DIR).mkdir(parents=True)
    ref = f"{cfg.aws_account_id}.dkr.ecr.{cfg.regions.primary.region}.amazonaws.com/{cfg.workload.repository}:{cfg.workload.image_tag}"
    (project / image.MANIFEST_DIR / f"{cfg.workload.image_tag}.json").write_text(
        json.dumps({"image": ref, "platforms": platforms})
    )
    return image.BuildManifests(project)


@pytest.mark.slow
def test_the_stack_passes_with_a_multi_arch_build_and_says_unknown_without_one(recorded, tmp_path):
    plan, cfg = recorded
    assert CHECKS["image"] is image.check_image
    offline = image.check_image(Context.of(plan, cfg), image.BuildManifests(tmp_path))
    assert offline.passed and offline.checked >= 2 + 2  # imports and both regions' node groups
    assert any("platforms of" in n and "are unknown" in n and "linux/arm64" in n for n in offline.notes), offline.notes
    built = image.check_image(Context.of(plan, cfg), _built(tmp_path, cfg, "linux/arm64,linux/amd64"))
    assert built.passed and not any("unknown" in n for n in built.notes), built.notes


@pytest.mark.slow
def test_an_x86_build_fails_on_graviton_nodes(recorded, tmp_path):
    """The review's finding 3: a plain `docker build` on an x86 machine gives linux/amd64 only."""
    plan, cfg = recorded
    ctx = Context.of(plan, cfg)
    result = image.check_image(ctx, _built(tmp_path, cfg, "linux/amd64"))
    # one finding per image the pods pull (each region pulls its own registry's copy)
    assert len(result.findings) == len({c.spec["image"] for c in ctx.containers()}) == 2
    for f in result.findings:
        assert "built for linux/amd64" in f.problem and "runs linux/arm64" in f.problem and "exec format error" in f.problem
        assert f.urn.split("::")[2].rsplit("$", 1)[-1] in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job"), f.urn


@pytest.mark.slow
def test_an_ami_type_of_another_architecture_than_the_instances_fails(recorded, tmp_path):
    plan, cfg = recorded
    x86 = _with_node_group(plan, amiType="AL2023_x86_64_STANDARD")
    result = image.check_image(Context.of(x86, cfg), image.BuildManifests(tmp_path))
    assert any("m7g.large is linux/arm64, AMI type AL2023_x86_64_STANDARD is linux/amd64" in f.problem for f in result.findings)
    custom = image.check_image(Context.of(_with_node_group(plan, amiType="CUSTOM"), cfg), image.BuildManifests(tmp_path))
    assert any("AMI type CUSTOM: its CPU architecture is not known offline" in f.problem for f in custom.findings)


def test_architectures_of_ami_and_instance_types():
    assert image.ami_architecture("AL2023_ARM_64_STANDARD") == image.ami_architecture("BOTTLEROCKET_ARM_64") == "linux/arm64"
    assert image.ami_architecture("AL2023_x86_64_STANDARD") == image.ami_architecture("AL2_x86_64") == "linux/amd64"
    assert image.ami_architecture("CUSTOM") is None
    for arm in ("m7g.large", "c7gn.xlarge", "r8g.2xlarge", "t4g.small", "im4gn.large", "a1.medium"):
        assert image.instance_architecture(arm) == "linux/arm64", arm
    for x86 in ("m5.large", "c6i.xlarge", "m7a.large", "g5.xlarge", "inf2.xlarge"):
        assert image.instance_architecture(x86) == "linux/amd64", x86


# --- the build ----------------------------------------------------------------------------------------

FAKE_DOCKER = """#!/bin/sh
printf '%s\\n' "$@" > "$(dirname "$0")/args"
"""


def _make_image(project: Path, bindir: Path, registry: str, *extra: str) -> subprocess.CompletedProcess:
    """`make image` in a copy of the project, with a `docker` that records its arguments (no
    container runtime here) and this interpreter's environment for the stack config."""
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [
            "make",
            "-s",
            "image",
            "STACK=us",
            f"REGISTRY={registry}",
            # the install stamp counts as made, and is never remade: no pip install from a test, least
            # of all into this interpreter's venv (make remakes a stale makefile target even with -n)
            "PREVIEW_STAMP=.installed-preview",
            "-o",
            ".installed-preview",
            f"BIN={Path(sys.executable).parent}",
            *extra,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_make_image_builds_for_both_architectures_and_its_manifest_passes_the_check(recorded, tmp_path):
    plan, cfg = recorded
    (tmp_path / "project").mkdir()
    project = full_project_copy(tmp_path / "project")
    shutil.copy(ROOT / "Makefile", project / "Makefile")
    shutil.copy(ROOT / "constraints.txt", project / "constraints.txt")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(FAKE_DOCKER)
    (bindir / "docker").chmod(0o755)
    registry = f"{cfg.aws_account_id}.dkr.ecr.{cfg.regions.primary.region}.amazonaws.com"
    proc = _make_image(project, bindir, registry)
    assert proc.returncode == 0, proc.stderr
    args = (bindir / "args").read_text().split()
    assert args[:2] == ["buildx", "build"] and args[args.index("--platform") + 1] == "linux/arm64,linux/amd64"
    assert args[args.index("-t") + 1] == f"{registry}/{cfg.workload.repository}:{cfg.workload.image_tag}" and "--push" in args
    result = image.check_image(Context.of(plan, cfg), image.BuildManifests(project))
    assert result.passed and not any("unknown" in n for n in result.notes), (result.findings, result.notes)
    # the same manifest from an x86-only build fails the Graviton stack
    assert _make_image(project, bindir, registry, "IMAGE_PLATFORMS=linux/amd64").returncode == 0
    assert not image.check_image(Context.of(plan, cfg), image.BuildManifests(project)).passed
    # no registry: refused before any build
    (bindir / "args").unlink()
    refused = _make_image(project, bindir, "")
    assert refused.returncode != 0 and "set REGISTRY=" in refused.stderr and not (bindir / "args").exists()


def test_the_documented_build_is_the_one_make_runs():
    """docs/operations.md shows the command `make image` runs, word for word."""
    registry = "<account>.dkr.ecr.us-east-1.amazonaws.com"
    dry = subprocess.run(
        [
            "make",
            "-n",
            "image",
            "STACK=us",
            f"REGISTRY={registry}",
            "PREVIEW_STAMP=.installed-preview",
            "-o",
            ".installed-preview",
            f"BIN={Path(sys.executable).parent}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    (build,) = [line for line in dry.stdout.splitlines() if line.startswith("docker buildx build")]
    assert "--platform linux/arm64,linux/amd64" in build
    assert build in (ROOT / "docs" / "operations.md").read_text()


# --- online: the platforms from ECR ------------------------------------------------------------------

REF = "123456789012.dkr.ecr.us-east-1.amazonaws.com/meridian/service:0.1.0"
ECR_CALL = {"registryId": "123456789012", "repositoryName": "meridian/service"}


def _ecr_session(responses):
    """A boto3 session whose ECR client answers with `responses` (botocore's Stubber checks each call)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x").client("ecr", region_name="us-east-1")
    stub = Stubber(client)
    for method, response, params in responses:
        if isinstance(response, str):
            stub.add_client_error(method, service_error_code=response, expected_params=params)
        else:
            stub.add_response(method, response, params)
    stub.activate()

    class Session:
        def client(self, name, region_name=None):
            assert (name, region_name) == ("ecr", "us-east-1")
            return client

    return Session(), stub


def _get_image(manifest: dict, media: str) -> tuple:
    params = {**ECR_CALL, "imageIds": [{"imageTag": "0.1.0"}], "acceptedMediaTypes": [*image.INDEX_TYPES, *image.MANIFEST_TYPES]}
    found = {"registryId": "123456789012", "repositoryName": "meridian/service", "imageId": {"imageTag": "0.1.0"}}
    return (
        "batch_get_image",
        {"images": [{**found, "imageManifest": json.dumps(manifest), "imageManifestMediaType": media}]},
        params,
    )


def test_online_reads_an_image_index_without_its_attestations():
    index = {
        "mediaType": image.INDEX_TYPES[0],
        "manifests": [
            {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:" + "c" * 64, "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    }
    session, stub = _ecr_session([_get_image(index, image.INDEX_TYPES[0])])
    platforms, why = image.EcrPlatforms(session).platforms(REF)
    assert platforms == {"linux/arm64", "linux/amd64"} and "index" in why
    stub.assert_no_pending_responses()


def test_online_reads_a_single_manifests_architecture_from_its_config():
    """What a plain `docker build` on x86 pushes: one manifest, its architecture in the config blob."""
    config = "sha256:" + "d" * 64
    manifest = {"mediaType": image.MANIFEST_TYPES[1], "config": {"digest": config}, "layers": []}
    url = "https://prod-us-east-1-starport-layer-bucket.s3.amazonaws.com/config?signed"
    session, stub = _ecr_session(
        [
            _get_image(manifest, image.MANIFEST_TYPES[1]),
            ("get_download_url_for_layer", {"downloadUrl": url, "layerDigest": config}, {**ECR_CALL, "layerDigest": config}),
        ]
    )
    fetched = []
    reader = image.EcrPlatforms(session, fetch=lambda u: fetched.append(u) or b'{"os": "linux", "architecture": "amd64"}')
    assert reader.platforms(REF)[0] == {"linux/amd64"} and fetched == [url]


def test_online_says_why_it_cannot_tell():
    params = {**ECR_CALL, "imageIds": [{"imageTag": "0.1.0"}], "acceptedMediaTypes": [*image.INDEX_TYPES, *image.MANIFEST_TYPES]}
    missing = {
        "images": [],
        "failures": [
            {"imageId": {"imageTag": "0.1.0"}, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}
        ],
    }
    session, _ = _ecr_session([("batch_get_image", missing, params)])
    platforms, why = image.EcrPlatforms(session).platforms(REF)
    assert platforms is None and "Requested image not found" in why
    session, _ = _ecr_session([("batch_get_image", "AccessDeniedException", params)])
    platforms, why = image.EcrPlatforms(session).platforms(REF)
    assert platforms is None and "AccessDenied" in why
    assert image.EcrPlatforms(session).platforms("ghcr.io/x/y:1")[0] is None


def test_the_paths_preflight_checks_probes_against_are_the_apps_routes():
    """service.paths lets preflight judge probe paths without Starlette or asyncpg (a preview has
    neither); the app routes exactly these."""
    from service import paths
    from service.app import create_app
    from service.settings import ServiceSettings

    app = create_app(ServiceSettings("r", "primary", "postgresql://x@h/d", "postgresql://x@h/d", ()), store=None)
    assert {r.path for r in app.routes} == set(paths.SERVED)
