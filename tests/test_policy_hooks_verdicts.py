"""The pack's hooks into pulumi-policy (policies/sdkhooks.py: decoding once per call, a Struct decoded
without the JSON printer, each provider decoded once, the stack rules sharing one call's indexes)
decide exactly what the SDK's own Analyze and AnalyzeStack decide, on a real plan: the us stack at
its first preview, where unknowns give every rule something to report (170 verdicts)."""

from __future__ import annotations

import json
import subprocess
import sys

from .helpers import ROOT

# Runs the pack in-process on the resources in argv[2] (plan-JSON-like) with its hooks ("hooks") or
# without them ("sdk": the SDK's own servicer methods), and prints the sorted verdicts as JSON.
EVALUATE = r"""
import json, runpy, sys
from pathlib import Path
pack, resources, mode = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()), sys.argv[3]
sys.path.insert(0, str(pack))
import sdkhooks
if mode == "sdk":
    sdkhooks.install = sdkhooks.require_sdk  # the version check only: the SDK's own servicer
import pulumi_policy
captured = {}
pulumi_policy.PolicyPack = lambda **kw: captured.update(kw)
runpy.run_path(str(pack / "__main__.py"), run_name="__pack__")
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import policy as sdk
from meridian.engine.policy.analyzer import Analyzer
from meridian.engine.policy.config import _LEVEL_ENUM, _pack_info, effective_config
from meridian.engine.policy.wire import Subject, _violations
svc = sdk._PolicyAnalyzerServicer(
    captured["name"], "0.0.1", captured["policies"], captured["enforcement_level"], None, "", None, None, None, None, None
)
info = _pack_info(svc.GetAnalyzerInfo(empty_pb2.Empty(), None), pack)
request = analyzer_pb2.ConfigureAnalyzerRequest()
for name, (level, props) in effective_config(info, json.loads((pack / "config" / "us.json").read_text()), "us").items():
    request.policyConfig[name].enforcementLevel = _LEVEL_ENUM[level]
    request.policyConfig[name].properties.update(props)
svc.Configure(request, None)
subjects = [Subject.from_dict(r) for r in resources]
providers = {s.urn: s for s in subjects if s.type.startswith("pulumi:providers:")}
builder = Analyzer.__new__(Analyzer)  # only its request builders
out = []
for s in subjects:
    if s.type != "pulumi:pulumi:Stack":
        out += _violations(svc.Analyze(builder.analyze_request(s, providers), None), s.urn)
stack = analyzer_pb2.AnalyzeStackRequest.FromString(builder.stack_request(subjects, providers))
out += _violations(svc.AnalyzeStack(stack, None), "")
print(json.dumps(sorted([v.policy, v.level, v.urn, v.message] for v in out)))
"""


def test_the_hooks_decide_what_the_sdk_decides_on_a_real_first_preview(tmp_path, registrations):
    resources = tmp_path / "us.json"
    resources.write_text(json.dumps(registrations("us", first_preview=True)))
    verdicts = {}
    for mode in ("hooks", "sdk"):
        run = subprocess.run(
            [sys.executable, "-c", EVALUATE, str(ROOT / "policies"), str(resources), mode],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        verdicts[mode] = json.loads(run.stdout)
    assert len(verdicts["sdk"]) >= 100  # unknowns at a first preview: advisories from many rules
    assert len({v[0] for v in verdicts["sdk"]}) >= 10
    assert verdicts["hooks"] == verdicts["sdk"]
