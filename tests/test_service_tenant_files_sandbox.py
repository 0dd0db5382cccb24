"""Tenants from files, for real: a sandbox of zone `us` whose services serve two of its platform's tenants
from a tenant file of their own (the plan's own entries, moved out of the settings:
meridian.sandbox.podrun) beside the zone's cell us-cell-001's rendered tenant file, with
PostgreSQL, the object stand-in and HAProxy. While it runs, a new cell file's tenant authenticates
within the poll interval, a malformed file keeps the tenants it served, and an id already served is
refused with the log line naming both files.

Skipped only when the PostgreSQL server binaries or haproxy are absent; under CI (CI=true) that fails.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from meridian.sandbox import core
from meridian.sandbox import manifest as mf
from service.auth import key_digest, new_api_key
from service.quotas import TenantQuota
from service.settings import ServiceSettings, TenantEntry, dump_tenant_file
from stackconfig import load_stack
from tests.helpers import STACK, TIME_SCALE, require_sandbox_parts

pytestmark = pytest.mark.sandbox
PROJECT = Path(__file__).resolve().parent.parent
IN_FILES = ("globex", "initech")
MOVED_TO = "us-cell-009"  # a file of no cell of the zone: us-cell-001's own file is its plan's


@pytest.fixture(scope="module")
def doc():
    require_sandbox_parts()
    state = Path(tempfile.mkdtemp(prefix="meridian-tenant-files-"))
    os.chmod(state, 0o755)  # the postgres user must reach the data dirs
    root = core.root_of(PROJECT, STACK, state)
    try:
        res = core.up(
            load_stack(PROJECT, STACK),
            STACK,
            root,
            time_scale=TIME_SCALE,
            project_dir=PROJECT,
            tenant_files={MOVED_TO: IN_FILES},
        )
        yield res.manifest
    finally:
        core.down(root, wipe=True)
        shutil.rmtree(state, ignore_errors=True)


def _settings(doc: mf.Manifest, role: str) -> ServiceSettings:
    return ServiceSettings.load(doc.regions[role].settings_file)


def _write(doc: mf.Manifest, name: str, content) -> None:
    """Into each region's tenants directory, as the kubelet updates a mounted Secret: renamed over."""
    text = content if isinstance(content, str) else dump_tenant_file(content)
    for role in ("primary", "dr"):
        path = Path(_settings(doc, role).tenant_files_dir) / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def _status(url: str, tenant: str, key: str) -> int:
    return httpx.get(f"{url}/v1/tenants/{tenant}/events", headers={"Authorization": f"Bearer {key}"}, timeout=5).status_code


def _log_lines(doc: mf.Manifest, role: str = "primary") -> list[dict]:
    text = (Path(doc.root) / "logs" / f"svc-{role}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_running_service_follows_its_tenant_files(doc):
    primary = _settings(doc, "primary")
    poll = primary.tenant_poll_s
    tenants_dir = Path(primary.tenant_files_dir)
    assert {t.id for t in primary.tenants} == {t.id for t in doc.tenants if t.stack == STACK} - set(IN_FILES)
    assert sorted(p.name for p in tenants_dir.glob("*.json")) == ["us-cell-001.json", f"{MOVED_TO}.json"]

    # every tenant of the plan is served through the front door, those of the cell file too, with their data
    for t in doc.tenants:
        assert _status(doc.endpoint, t.id, t.api_key) == 200, t.id
    globex = next(t.api_key for t in doc.tenants if t.id == "globex")
    put = httpx.put(
        f"{doc.endpoint}/v1/tenants/globex/objects/a.txt",
        content=b"hi",
        headers={"Authorization": f"Bearer {globex}"},
        timeout=10,
    )
    assert put.status_code == 201, put.text

    # a new cell's file, while it runs: its tenant authenticates within the poll interval
    key = new_api_key("newco")
    newco = TenantEntry("newco", "starter", (key_digest(key),), TenantQuota(50, 1000, 200))
    assert _status(primary_url := doc.regions["primary"].service_url, "newco", key) == 401
    _write(doc, "us-cell-002.json", [newco])
    t0 = time.monotonic()
    while _status(primary_url, "newco", key) != 200:
        assert time.monotonic() - t0 < poll + 2, f"newco not served {poll + 2:.0f} s after its file appeared"
        time.sleep(0.1)
    picked_up = time.monotonic() - t0
    assert picked_up <= poll + 1, picked_up
    deadline = time.monotonic() + poll + 2
    while _status(doc.regions["dr"].service_url, "newco", key) != 200:
        assert time.monotonic() < deadline, "the dr region's service did not pick the file up"
        time.sleep(0.1)

    # a malformed file: logged with file and problem, the tenants it served stay
    _write(doc, "us-cell-002.json", '[{"id": "newco", ')
    time.sleep(poll + 1)
    assert _status(primary_url, "newco", key) == 200
    cell2 = str(tenants_dir / "us-cell-002.json")
    refused = [r for r in _log_lines(doc) if r["msg"].startswith("tenant file refused") and r.get("file") == cell2]
    assert refused and "not JSON" in refused[-1]["problem"] and refused[-1]["kept"] == 1, refused

    # an id another file serves: refused, naming both files; the tenant keeps its key, the twin's is unknown
    twin = new_api_key("newco")
    _write(doc, "us-cell-003.json", [TenantEntry("newco", "pro", (key_digest(twin),), TenantQuota(200, 5000, 2000))])
    time.sleep(poll + 1)
    assert _status(primary_url, "newco", key) == 200 and _status(primary_url, "newco", twin) == 401
    cell3 = str(tenants_dir / "us-cell-003.json")
    messages = [r["msg"] for r in _log_lines(doc) if r.get("file") == cell3]
    assert f"tenant file refused: tenant newco in {cell3} is already served from {cell2}; its previous tenants stay in force" in (
        messages
    ), messages
    for t in doc.tenants:  # nothing of that dropped a tenant
        assert _status(doc.endpoint, t.id, t.api_key) == 200, t.id


def test_tenant_files_named_after_a_cell_of_the_zone_are_refused():
    """The cell's file is its plan's: a test's (or anyone's) file of the same name would replace it."""
    require_sandbox_parts()
    state = Path(tempfile.mkdtemp(prefix="meridian-tenant-files-refused-"))
    os.chmod(state, 0o755)  # the postgres user must reach the data dirs
    try:
        with pytest.raises(core.SandboxMissing, match="us-cell-001: a cell of zone us has that file"):
            core.up(
                load_stack(PROJECT, STACK), STACK, state / STACK, time_scale=TIME_SCALE, tenant_files={"us-cell-001": ("acme",)}
            )
        assert mf.read(state / STACK) is None, "refused before anything started"
    finally:
        shutil.rmtree(state, ignore_errors=True)
