"""A cell judged beside its platform's resources (the run `meridian preview --stack <cell>` and
`--zone` make): what the cell leaves to its platform is settled by the values the preview holds,
resource by resource, never assumed. The tenant budgets' topic is the platform's cap-enforcer topic
by ARN (the value the cell's StackReference reads, which the platform's subscription of that topic
carries); the cell's Kubernetes provider reaches the platform's cluster by its kubeconfig's server
and CA, where the platform installs the admission backstops. A cell pointing elsewhere is a
violation; a value only known after apply stays an advisory naming it; judged alone (the real CLI),
the same parts stay advisories naming the platform."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, load_policy_config
from meridian.engine.policy.generated import with_platform
from meridian.engine.recorder import UNKNOWN

from .helpers import ROOT, run_meridian

CELL = "us-cell-001"
BUDGETS = "budgets-limit-and-cap-enforced"
BACKSTOPS = "runtime-backstops-enforced"
BUDGET = "aws:budgets/budget:Budget"
K8S = "pulumi:providers:kubernetes"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
MARK = "which this cell stack reads through a StackReference"

# The platform previewed and recorded in a process of its own (engine.run.platform_context), the
# cell run with the outputs that same run exported: both as plan-like resources.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from google.protobuf import json_format
    from meridian.engine.run import platform_context, run_program

    def plain(s):
        return {"urn": s.urn, "type": s.type, "name": s.name, "custom": s.custom, "parent": s.parent or None,
                "provider": s.provider or None, "inputs": json_format.MessageToDict(s.properties),
                "dependencies": s.dependencies, "propertyDependencies": s.property_dependencies, "protect": s.protect}

    if __name__ == "__main__":
        from meridian.engine.policy.wire import Subject
        root, cell, first = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "first-preview"
        outputs, platform = platform_context(root, "us", first_preview=first)
        run = run_program(root, cell, stack_outputs=outputs, first_preview=first)
        json.dump({"platform": [plain(s) for s in platform],
                   "cell": [plain(Subject.from_registration(r)) for r in run.registrations]}, sys.stdout)
    """
)


def _recorded(view: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT), CELL, view], capture_output=True, text=True, timeout=900, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def update():
    return _recorded("update")


@pytest.fixture(scope="module")
def first():
    return _recorded("first-preview")


@pytest.fixture(scope="module")
def analyzer():
    with Analyzer(ROOT / "policies") as running:
        yield running, running.wait_ready()


def judge(analyzer, cell: list[dict], platform: list[dict] | None, *, strip: bool = True) -> list:
    """The cell's verdicts as the engine reaches them: each cell resource analyzed, then AnalyzeStack
    over the cell's resources and (with `platform`) the platform's beside them, with the cell's
    policy config (`with_platform` when they are beside, unless `strip` is False: the config as the
    file has it, `platformStack` kept); verdicts on the platform's resources dropped."""
    running, info = analyzer
    path = ROOT / "policies" / "config" / f"{CELL}.json"
    config = load_policy_config(path)
    running.configure(effective_config(info, with_platform(config) if platform and strip else config, path), stack=CELL)
    own = [Subject.from_dict(r) for r in cell]
    context = [Subject.from_dict(r) for r in platform or []]
    subjects = own + context
    providers = {s.urn: s for s in subjects if s.type.startswith("pulumi:providers:")}
    out = [v for s in own if s.type != "pulumi:pulumi:Stack" for v in running.analyze(s, providers)]
    theirs = {s.urn for s in context}
    return out + [v for v in running.analyze_stack(subjects, providers) if v.urn not in theirs]


def _of(verdicts: list, policy: str) -> list:
    return [v for v in verdicts if v.policy == policy]


def _copy(resources: list[dict]) -> list[dict]:
    return json.loads(json.dumps(resources))


def _budgets_notify(cell: list[dict], arn: str) -> list[dict]:
    cell = _copy(cell)
    for r in cell:
        if r["type"] == BUDGET:
            for n in r["inputs"]["notifications"]:
                n["subscriberSnsTopicArns"] = [arn]
    return cell


def _kubeconfig(cell: list[dict], region: str, change) -> list[dict]:
    """The cell's Kubernetes provider of `region` with its kubeconfig changed by `change(config)`."""
    cell = _copy(cell)
    (provider,) = [r for r in cell if r["type"] == K8S and r["name"].endswith(f"-{region}-k8s")]
    config = json.loads(provider["inputs"]["kubeconfig"])
    provider["inputs"]["kubeconfig"] = change(config)
    return cell


def _server(config: dict, server: str) -> str:
    for c in config["clusters"]:
        c["cluster"]["server"] = server
    return json.dumps(config)


def _ca(config: dict, ca: str) -> str:
    for c in config["clusters"]:
        c["cluster"]["certificate-authority-data"] = ca
    return json.dumps(config)


def test_the_shipped_cell_beside_its_platform_has_no_finding_at_all(analyzer, update):
    """Both parts it leaves to the platform are settled by value: no advisory, no violation."""
    verdicts = judge(analyzer, update["cell"], update["platform"])
    assert verdicts == [], [(v.policy, v.message) for v in verdicts]
    # the evidence is the value: the cell's budgets name the ARN the platform's enforcer subscription carries
    enforcer = [r for r in update["platform"] if r["type"] == SUBSCRIPTION and r["inputs"]["protocol"] == "lambda"]
    arns = {
        a
        for r in update["cell"]
        if r["type"] == BUDGET
        for n in r["inputs"]["notifications"]
        for a in n["subscriberSnsTopicArns"]
    }
    assert arns == {enforcer[0]["inputs"]["topic"]}


def test_judged_alone_the_same_parts_stay_advisories_naming_the_platform(analyzer, update):
    verdicts = judge(analyzer, update["cell"], None)
    for policy in (BUDGETS, BACKSTOPS):
        found = _of(verdicts, policy)
        assert found and all(v.level == "advisory" and MARK in v.message for v in found), found


def test_a_tenant_budget_notifying_another_topic_is_a_violation_naming_the_arn(analyzer, update):
    other = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"
    verdicts = _of(judge(analyzer, _budgets_notify(update["cell"], other), update["platform"]), BUDGETS)
    assert {v.level for v in verdicts} == {"mandatory"} and len(verdicts) == 3, verdicts
    assert all(other in v.message and MARK not in v.message for v in verdicts), verdicts
    alone = _of(judge(analyzer, _budgets_notify(update["cell"], other), None), BUDGETS)
    assert {v.level for v in alone} == {"advisory"} and all(MARK in v.message for v in alone), alone


def test_a_tenant_budget_notifying_a_platform_topic_that_runs_no_enforcer_is_a_violation(analyzer, update):
    """The platform's failover alarm topic is a real topic of the platform, found by the same ARN
    evidence: it alerts people, it caps nothing."""
    failover = next(
        r["inputs"]["topic"] for r in update["platform"] if r["type"] == SUBSCRIPTION and "failover" in r["inputs"]["topic"]
    )
    verdicts = _of(judge(analyzer, _budgets_notify(update["cell"], failover), update["platform"]), BUDGETS)
    assert {v.level for v in verdicts} == {"mandatory"} and len(verdicts) == 3, verdicts
    assert all("topic us-failover-alarms" in v.message and "runs no enforcing function" in v.message for v in verdicts)


@pytest.mark.parametrize("topic", ["failover", "nobody-listens"])
def test_beside_its_platform_the_cost_rule_defers_nothing_whatever_the_config(analyzer, update, topic):
    """Review 20's Z09 and Z05, replayed with the cell's config as the file has it (`platformStack`
    kept): the platform's resources are in the run, so the rule judges the cell's budgets on them and
    defers nothing to "the platform's own plan", which never holds the cell's budgets."""
    arn = (
        next(r["inputs"]["topic"] for r in update["platform"] if r["type"] == SUBSCRIPTION and "failover" in r["inputs"]["topic"])
        if topic == "failover"
        else "arn:aws:sns:us-east-1:123456789012:nobody-listens"
    )
    verdicts = _of(judge(analyzer, _budgets_notify(update["cell"], arn), update["platform"], strip=False), BUDGETS)
    assert {v.level for v in verdicts} == {"mandatory"} and len(verdicts) == 3, verdicts
    assert all(arn in v.message and MARK not in v.message for v in verdicts), verdicts
    assert _of(judge(analyzer, update["cell"], update["platform"], strip=False), BUDGETS) == []


def test_beside_its_platform_the_platforms_enforcer_path_is_judged_for_the_cells_budgets(analyzer, update):
    """The cell's budgets reach the platform's enforcer by ARN: a path the platform breaks (here its
    subscription's filter policy) leaves every cell tenant uncapped, a violation on each cell budget."""
    platform = _copy(update["platform"])
    (sub,) = [r for r in platform if r["type"] == SUBSCRIPTION and r["inputs"]["protocol"] == "lambda"]
    sub["inputs"]["filterPolicy"] = json.dumps({"never": ["match"]})
    verdicts = _of(judge(analyzer, update["cell"], platform), BUDGETS)
    assert {v.level for v in verdicts} == {"mandatory"} and len(verdicts) == 3, verdicts
    assert all("filterPolicy" in v.message for v in verdicts), verdicts


def test_a_cell_provider_for_another_cluster_is_a_violation_for_each_backstop(analyzer, update):
    other = "https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com"
    cell = _kubeconfig(update["cell"], "us-east-1", lambda c: _server(c, other))
    verdicts = _of(judge(analyzer, cell, update["platform"]), BACKSTOPS)
    assert len(verdicts) == 3 and {v.level for v in verdicts} == {"mandatory"}, verdicts
    assert all("us-cell-001-us-east-1-k8s" in v.message and other.lower() in v.message for v in verdicts), verdicts
    assert not any("us-west-2" in v.message for v in verdicts)  # the other region's provider is the platform's cluster
    alone = _of(judge(analyzer, cell, None), BACKSTOPS)
    assert {v.level for v in alone} == {"advisory"} and all(MARK in v.message for v in alone)


def test_the_platforms_endpoint_with_another_ca_is_not_the_platforms_cluster(analyzer, update):
    cell = _kubeconfig(update["cell"], "us-west-2", lambda c: _ca(c, "TUlTTUFUQ0hFRC1DQQ=="))
    verdicts = _of(judge(analyzer, cell, update["platform"]), BACKSTOPS)
    assert len(verdicts) == 3 and {v.level for v in verdicts} == {"mandatory"}, verdicts
    assert all("us-cell-001-us-west-2-k8s" in v.message for v in verdicts)


@pytest.mark.parametrize("kubeconfig", [UNKNOWN, "apiVersion: v1\nkind: Config\n"], ids=["unknown", "yaml"])
def test_a_kubeconfig_the_pack_cannot_place(analyzer, update, kubeconfig):
    """Unknown at preview: an advisory saying which value is unknown. Known but unreadable (YAML):
    no cluster is proven, so no backstop is either (a violation; the provider rule names the YAML)."""
    cell = _kubeconfig(update["cell"], "us-east-1", lambda c: kubeconfig)
    verdicts = _of(judge(analyzer, cell, update["platform"]), BACKSTOPS)
    assert len(verdicts) == 3, verdicts
    if kubeconfig == UNKNOWN:
        assert {v.level for v in verdicts} == {"advisory"}
        assert all("unverifiable at preview" in v.message and "`kubeconfig` server and CA" in v.message for v in verdicts)
    else:
        assert {v.level for v in verdicts} == {"mandatory"}


def test_a_first_preview_leaves_both_unknown_and_says_so(analyzer, first):
    """Before the platform's first `up` its topic ARN and cluster endpoint are unknown, in its plan and
    in the cell's: advisories naming the unknown values, never a pass and never a violation."""
    verdicts = judge(analyzer, first["cell"], first["platform"])
    assert not [v for v in verdicts if v.level == "mandatory"], [(v.policy, v.message) for v in verdicts]
    budgets, backstops = _of(verdicts, BUDGETS), _of(verdicts, BACKSTOPS)
    assert len(budgets) == 3 and all("unverifiable at preview" in v.message and "notifications" in v.message for v in budgets)
    assert len(backstops) == 6 and all("`kubeconfig` server and CA" in v.message for v in backstops)
    assert not any(MARK in v.message for v in budgets + backstops)


def test_meridian_policy_judges_a_cell_beside_its_platform_as_preview_does():
    """`meridian policy --stack <cell>` is the pack's verdict alone: the same run as the preview's
    (the platform previewed first for its outputs and resources), so the same (empty) verdicts."""
    cli = run_meridian("policy", "--stack", CELL, "--format", "json", timeout=900)
    assert cli.code == 0, cli
    report = json.loads(cli.out)
    assert report["stack"] == CELL and report["violations"] == [], report["violations"]
