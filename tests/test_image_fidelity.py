"""The image's packages, run for real: a virtualenv made by service/Dockerfile's own build-stage
commands (today: pyproject.toml's `service` extra with the pins of constraints.txt, nothing else)
runs the plan's migration Job and each region's service against the sandbox's PostgreSQL and AWS
stand-in. Only the image's code is on the path: `service/` copied alone, as the Dockerfile copies
it, and no package of this checkout's environment. A package the image lacks (boto3, before the
extra) fails here as it would in the pod: `ModuleNotFoundError` at start.

The virtualenv is built once per Dockerfile, extra and pins (its hash names it under build/, which
git ignores): the first run installs from the package registry, later runs take the cached one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from meridian import ports as portlib
from meridian.preflight import image
from meridian.sandbox import fromplan, podrun
from meridian.sandbox.core import root_of
from meridian.sandbox.manifest import path_of

from .helpers import ROOT, STACK, running_sandbox, wait_ok

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

DOCKERFILE = ROOT / "service" / "Dockerfile"
VENVS = ROOT / "build" / "image-venv"
IMAGE_VENV = "/opt/venv"  # where the Dockerfile builds it


def _build_stage(dockerfile: str) -> tuple[list[str], list[str]]:
    """The first stage's COPY sources and RUN commands (the stage that makes /opt/venv)."""
    stage = re.split(r"^FROM\s", dockerfile, flags=re.MULTILINE | re.IGNORECASE)[1]
    copies = [src for line in stage.splitlines() if line.upper().startswith("COPY ") for src in line.split()[1:-1]]
    return copies, image.run_commands(stage)


def _image_venv() -> Path:
    """The image's virtualenv, built here by the Dockerfile's commands (python:3.11 -> this machine's 3.11)."""
    dockerfile = DOCKERFILE.read_text()
    copies, commands = _build_stage(dockerfile)
    digest = hashlib.sha256("\n".join(commands).encode())
    for src in copies:
        digest.update(b"\0" + (ROOT / src).read_bytes())
    key = digest.hexdigest()[:16]
    done = VENVS / key
    if (done / "installed.json").is_file():
        return done / "venv"
    work = VENVS / f"{key}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    (work / "ctx").mkdir(parents=True)
    for src in copies:
        shutil.copy(ROOT / src, work / "ctx" / Path(src).name)
    base_python = getattr(sys, "_base_executable", sys.executable)  # the interpreter, not this checkout's venv
    script = "\n".join(
        re.sub(r"^python\b", shlex.quote(base_python), c).replace(IMAGE_VENV, str(work / "venv")) for c in commands
    )
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work / "ctx",
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"the Dockerfile's build commands failed here:\n{script}\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    )
    listed = subprocess.run(
        [str(work / "venv" / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    (work / "installed.json").write_text(listed.stdout)
    try:
        work.rename(done)
    except OSError:  # another worker finished first: take its venv
        shutil.rmtree(work, ignore_errors=True)
    return done / "venv"


def _installed(venv: Path) -> set[str]:
    return {image.normalize(p["name"]) for p in json.loads((venv.parent / "installed.json").read_text())}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_the_image_venv_holds_the_service_extra_and_nothing_of_the_harness():
    installed = _installed(_image_venv())
    extra = set(image.extra_requirements((ROOT / "pyproject.toml").read_text(), image.EXTRA))
    assert extra <= installed, f"the image lacks {sorted(extra - installed)}"
    assert not installed & {"pulumi", "pulumi-aws", "moto", "locust", "httpx", "meridian"}, "the venv is not the image's"


def test_the_image_runs_the_migration_and_serves_both_regions(tmp_path):
    venv = _image_venv()
    planned = fromplan.load(ROOT, STACK)
    app = tmp_path / "app"  # COPY service/ /app/service/: the image's code and nothing else of the checkout
    shutil.copytree(ROOT / "service", app / "service", ignore=shutil.ignore_patterns("__pycache__"))
    python = str(venv / "bin" / "python")
    with running_sandbox("meridian-image-") as state:
        root = root_of(ROOT, STACK, state)
        ports = json.loads(path_of(root).read_text())["ports"]
        objects = json.loads((root / "run" / "objects.json").read_text())

        # the one substitution the sandbox makes (fromplan.local_addresses): the plan's endpoints -> local ports
        addresses = fromplan.local_addresses(
            planned, nodes={"primary": ports["pg-primary"], "dr": ports["pg-dr"]}, writer_endpoint=ports["pg-writer"]
        )

        def pod(container, role: str, *, port: int | None) -> tuple[subprocess.Popen, Path]:
            subs = fromplan.local_substitutions(planned, role, addresses=addresses, service_port=port, objects=objects)
            prepared = podrun.prepare(container, tmp_path / f"pod-{role}-{port}", dataclasses.replace(subs, interpreter=python))
            assert prepared.argv[0] == python
            log = tmp_path / f"pod-{role}-{port}.log"
            return podrun.start(prepared, log, cwd=app), log

        # the migration Job again, from the image (schema, the service's user with its secret's password)
        proc, log = pod(planned.migration, "primary", port=None)
        assert proc.wait(120) == 0, f"the migration Job fails from the image's packages:\n{log.read_text()[-3000:]}"

        key = planned.api_keys["acme"]
        for role in ("primary", "dr"):
            port = portlib.allocate([f"image-{role}"])[f"image-{role}"]
            proc, log = pod(planned.services[role], role, port=port)
            try:
                base = f"http://127.0.0.1:{port}"
                ready = wait_ok(base + planned.services[role].spec["readinessProbe"]["httpGet"]["path"], proc, log, timeout=60)
                assert ready.json()["region"] == planned.services[role].region
                auth = {"authorization": f"Bearer {key}"}
                wrote = httpx.post(
                    f"{base}/v1/tenants/acme/events", json={"type": "image", "payload": {"role": role}}, headers=auth
                )
                assert wrote.status_code == 201, wrote.text
                body = f"from the image in {role}".encode()
                put = httpx.put(f"{base}/v1/tenants/acme/objects/image/{role}.txt", content=body, headers=auth, timeout=30)
                assert put.status_code == 201, put.text
                got = httpx.get(f"{base}/v1/tenants/acme/objects/image/{role}.txt", headers=auth, timeout=30)
                assert got.status_code == 200 and got.content == body
            finally:
                _stop(proc)
            text = log.read_text()
            assert "Traceback" not in text, text[-3000:]
