"""policies/sdkhooks.py: the one place the pack touches pulumi-policy internals, behind one version
check. These tests fail loudly when the pinned pulumi-policy moves away from the release the hooks
were written against, and prove each hook still finds what it reads in the installed SDK."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from types import ModuleType

import pytest
from pulumi_policy import EnforcementLevel, Severity
from pulumi_policy import policy as sdk
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from meridian.engine.policy import Analyzer
from meridian.engine.policy.config import PolicyPackError
from meridian.engine.recorder import UNKNOWN

from .helpers import ROOT

PACK = ROOT / "policies"


def _pack_module(name: str) -> ModuleType:
    """A pack module loaded as the analyzer loads it (the pack's folder on the path), under a test name."""
    sys.path.insert(0, str(PACK))
    try:
        spec = importlib.util.spec_from_file_location(f"meridian_policy_{name}_test", PACK / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(PACK))


hooks = _pack_module("sdkhooks")


def _pinned(path, package: str) -> str:
    pattern = re.compile(rf"^{package.replace('-', '[-_]')}==([^\s#]+)", re.IGNORECASE | re.MULTILINE)
    found = pattern.findall(path.read_text())
    assert len(found) == 1, f"{path.name} must pin {package} exactly once"
    return found[0]


def test_the_pinned_pulumi_policy_is_the_release_the_hooks_were_written_against():
    from pulumi_policy.version import VERSION

    pins = {
        "constraints.txt": _pinned(ROOT / "constraints.txt", "pulumi-policy"),
        "policies/requirements.txt": _pinned(PACK / "requirements.txt", "pulumi-policy"),
        "installed": VERSION,
    }
    assert set(pins.values()) == {hooks.SDK_VERSION}, (
        f"pulumi-policy moved ({pins}) but policies/sdkhooks.py reads its internals as of {hooks.SDK_VERSION}: "
        "re-read every hook against the new release (proxy._is_unknown, the report closure, the servicer's "
        "Analyze/AnalyzeStack), port them, then raise SDK_VERSION"
    )


def test_another_release_is_refused_with_both_versions_named():
    hooks.require_sdk(hooks.SDK_VERSION)
    with pytest.raises(hooks.SdkVersionError) as err:
        hooks.require_sdk("1.22.0")
    assert f"as of {hooks.SDK_VERSION}" in str(err.value) and "pulumi-policy 1.22.0 is installed" in str(err.value)


def test_the_pack_does_not_start_on_a_release_its_hooks_do_not_declare(tmp_path):
    pack = tmp_path / "policies"
    shutil.copytree(PACK, pack, ignore=shutil.ignore_patterns("__pycache__"))
    source = (pack / "sdkhooks.py").read_text()
    declared = f'SDK_VERSION = "{hooks.SDK_VERSION}"'
    assert declared in source
    (pack / "sdkhooks.py").write_text(source.replace(declared, 'SDK_VERSION = "0.0.1"'))
    with pytest.raises(PolicyPackError) as err, Analyzer(pack) as analyzer:
        analyzer.wait_ready()
    assert "SdkVersionError" in str(err.value) and f"pulumi-policy {hooks.SDK_VERSION} is installed" in str(err.value)


def test_the_advisory_reporter_builds_an_advisory_twin_of_the_sdks_report():
    """The reporter reads the closure of the `report` the SDK hands a policy: it must still find the
    servicer, the response and the policy's name, description and severity there."""
    servicer = object.__new__(sdk._PolicyAnalyzerServicer)  # only what _create_report_violation reads
    servicer._PolicyAnalyzerServicer__policy_pack_name = "meridian"
    servicer._PolicyAnalyzerServicer__policy_pack_version = "0.1.0"
    response = sdk.proto.AnalyzeResponse()
    report = servicer._create_report_violation(response, "rule-x", "Checks that x.", EnforcementLevel.MANDATORY, Severity.HIGH)
    advisory = hooks.advisory_reporter(report)
    assert advisory is not None, "the SDK's report closure no longer holds what the advisory reporter reads"
    advisory("unverifiable at preview: x", "urn:a")
    report("X must be y", "urn:b")
    twin, original = response.diagnostics
    assert (twin.enforcementLevel, original.enforcementLevel) == (sdk.proto.ADVISORY, sdk.proto.MANDATORY)
    assert (twin.policyName, twin.description, twin.severity) == (original.policyName, original.description, original.severity)
    assert (twin.urn, twin.policyPackName, twin.policyPackVersion) == ("urn:a", "meridian", "0.1.0")
    assert hooks.advisory_reporter(lambda message, urn=None: None) is None  # not the SDK's


def test_is_unknown_recognises_the_engines_unknown_sentinel():
    assert hooks.is_unknown(UNKNOWN)
    assert not hooks.is_unknown("us-east-1") and not hooks.is_unknown(None) and not hooks.is_unknown(0)
    with pytest.raises(UnknownValueError):  # as the rules meet it through the SDK's proxy
        unknown_checking_proxy({"region": UNKNOWN})["region"]
    ruleutil = _pack_module("ruleutil")
    assert ruleutil.known({"region": UNKNOWN, "name": "x"}) == {"region": ruleutil.UNKNOWN, "name": "x"}
