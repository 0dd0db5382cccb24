"""The tenancy matrix of `meridian policy --explain --tenant` on the real plans: it claims nothing
a shipped policy document does not grant, it lists who administers the platform from outside the
plan (the account's IAM through a key policy, cluster operators by creating pods), and what rests on
an AWS-managed policy the pack does not ship is printed as assumed while the rule still fails it.
The pack ships the document of every AWS-managed policy the program attaches, each with its source.
"""

from __future__ import annotations

import copy
import json
import re
import sys

import pytest
from rich.console import Console

from meridian.commands.policy import _print_matrix
from meridian.engine.policy import Analyzer, Subject, config_path, effective_config, evaluate, load_policy_config

from .helpers import ROOT
from .policydata import access as data
from .policydata.base import K8S, resource

PACK = ROOT / "policies"
RULE = "tenant-data-access"
SHIPPED = json.loads((PACK / "access" / "aws_managed.json").read_text())
MANAGED_ARN = re.compile(r"arn:aws[\w-]*:iam::aws:policy/[\w+=,.@/-]+")
UNSHIPPED = "arn:aws:iam::aws:policy/AmazonAthenaFullAccess"  # a real AWS-managed policy the pack does not ship
ACCOUNT = "123456789012"


def attached_managed(resources: list[dict]) -> set[str]:
    """Every AWS-managed policy ARN any resource of a plan names (attachments, managedPolicyArns, boundaries)."""
    return {m for r in resources for m in MANAGED_ARN.findall(json.dumps(r.get("inputs") or {}))}


def unshipped(resources: list[dict]) -> set[str]:
    return attached_managed(resources) - {k for k in SHIPPED if not k.startswith("_")}


def rule_config(stack: str) -> dict:
    settings = load_policy_config(config_path(ROOT, stack)).get(RULE, {})
    return {k: v for k, v in settings.items() if k != "enforcementLevel"}


def matrix(resources: list[dict], tenant: str = "acme") -> dict:
    """What `meridian policy --explain` prints as JSON, from the pack's own modules as the CLI runs them."""
    sys.path.insert(0, str(PACK))
    try:
        from access import explain

        return explain.explain({"resources": resources, "config": rule_config("us"), "tenant": tenant})
    finally:
        sys.path.remove(str(PACK))


def with_unshipped_policy_on_the_broker(resources: list[dict]) -> list[dict]:
    """The us plan with an AWS-managed policy the pack does not ship attached to the tenant broker
    (a platform workload's role): as the program would render a RolePolicyAttachment to it."""
    out = copy.deepcopy(resources)
    broker = next(
        r for r in out if r["type"] == "aws:iam/role:Role" and r["urn"].endswith("::us-us-east-1-tenant-identity-broker")
    )
    name = "us-us-east-1-tenant-identity-broker-athena"
    out.append(
        {
            "urn": f"urn:pulumi:us::meridian::aws:iam/role:Role$aws:iam/rolePolicyAttachment:RolePolicyAttachment::{name}",
            "type": "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "name": name,
            "custom": True,
            "parent": broker["urn"],
            "provider": broker["provider"],
            "inputs": {"policyArn": UNSHIPPED, "role": "us-us-east-1-tenant-identity-broker-1a2b3c4"},
            "dependencies": [broker["urn"]],
            "propertyDependencies": {"policyArn": [], "role": [broker["urn"]]},
        }
    )
    return out


@pytest.fixture(scope="module")
def us(previews) -> list[dict]:
    return previews["us"].plan["resources"]


@pytest.fixture(scope="module")
def us_matrix(us) -> dict:
    return matrix(us)


# --- the shipped documents ---------------------------------------------------------------------


def test_every_aws_managed_policy_the_program_attaches_is_shipped_with_its_source(previews):
    for stack, preview in previews.items():
        resources = preview.plan["resources"]
        assert attached_managed(resources), f"{stack}: no AWS-managed policy found: the scan reads nothing"
        assert unshipped(resources) == set(), (
            f"{stack} attaches AWS-managed policies policies/access/aws_managed.json does not ship: add them with "
            "policies/tools/aws_managed_policies.py"
        )
    sources = SHIPPED["_sources"]
    shipped = {k for k in SHIPPED if not k.startswith("_")}
    assert set(sources) == shipped, "every shipped document has its source, and every source its document"
    for arn, source in sources.items():
        name = arn.rsplit("/", 1)[1]
        assert re.fullmatch(r"v\d+", source["versionId"]), (arn, source)
        assert re.fullmatch(
            rf"https://github\.com/zoph-io/IAMTrail/blob/[0-9a-f]{{40}}/policies/{re.escape(name)}", source["source"]
        )
        assert SHIPPED[arn].get("Statement"), f"{arn}: not a policy document"


def test_the_completeness_check_fails_on_a_plan_that_attaches_an_unshipped_policy(us):
    assert unshipped(with_unshipped_policy_on_the_broker(us)) == {UNSHIPPED}


# --- the matrix of the real us plan ------------------------------------------------------------


def _granted(doc: dict, sid: str, action: str) -> bool:
    """Whether the statement `sid` of a shipped document is an Allow whose actions match `action`."""
    for st in doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]:
        if st.get("Sid", "") == sid and st["Effect"] == "Allow":
            patterns = st.get("Action", [])
            patterns = patterns if isinstance(patterns, list) else [patterns]
            if any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), action, re.IGNORECASE) for p in patterns):
                return True
    return False


def test_the_us_matrix_claims_nothing_a_shipped_document_does_not_grant(us_matrix):
    rows = us_matrix["rows"]
    principals = {r["principal"] for r in rows}
    # the EKS cluster role and RDS Enhanced Monitoring hold no permission on tenant data (AmazonEKSClusterPolicy,
    # AmazonEKSVPCResourceController, AmazonRDSEnhancedMonitoringRole as shipped)
    assert not [p for p in principals if "eks-cluster-role" in p or "monitoring" in p], principals
    assert not [r for r in rows if r["assumed"] or "treated as every action" in " ".join(r["allowed_by"])]
    assert not [r for r in rows if "may rewrite its own permissions" in r["path"]]
    cited = 0
    for r in rows:
        for why in r["allowed_by"]:
            m = re.fullmatch(r"attached policy (arn:aws:iam::aws:policy/\S+): statement (.+) allows (\S+)", why)
            if m:
                arn, sid, action = m.groups()
                assert _granted(SHIPPED[arn], "" if sid == "(no Sid)" else sid, action), (r["path"], why)
                cited += 1
    assert cited, "the backup role's rows cite the shipped AWS Backup documents"
    assert all(r["verdict"].startswith("allowed") for r in rows)


def test_the_us_matrix_lists_the_account_through_its_key_policies(us_matrix):
    keys = {r["resource"] for r in us_matrix["rows"] if r["resource"].startswith("tenant acme's key")}
    account = [r for r in us_matrix["rows"] if r["origin"] == "account"]
    on_keys = {r["resource"]: r for r in account if r["resource"] in keys}
    assert len(keys) == 2 and set(on_keys) == keys
    for row in on_keys.values():
        assert f"statement AccountAdministers lets arn:aws:iam::{ACCOUNT}:root" in row["path"]
        assert {"kms:Decrypt", "kms:PutKeyPolicy"} <= set(row["actions"])
        assert row["verdict"] == "allowed: platform administration (the account's IAM, outside the plan)"
    # objects too: in its own account an identity policy needs no bucket policy statement
    assert any("objects under tenants/t-acme/" in r["resource"] for r in account)


def test_the_us_matrix_lists_the_cluster_operators_by_their_path_to_the_tenant_role(us_matrix):
    operators = [r for r in us_matrix["rows"] if r["origin"] == "operator"]
    for who in ("meridian-deploy", "meridian-oncall"):
        own_pods = [r for r in operators if who in r["who"] and "-> pods in t-acme as acme-app (" in r["path"]]
        assert own_pods, f"{who}: no row through acme's own pods"
        for r in own_pods:
            steps = r["path"].split(" -> ")
            assert steps[0] == f"arn:aws:iam::{ACCOUNT}:role/{who} (a cluster operator outside the plan)"
            assert re.fullmatch(
                r"runs code in pods in t-acme \(EKS access entry on us-us-(east-1|west-2)-eks with access policy AmazonEKSClusterAdminPolicy\)",
                steps[1],
            )
            assert steps[3].endswith("tenant-identity-role") and steps[-1] == r["resource"]
    # the viewers' AmazonEKSAdminViewPolicy creates no pods
    assert not [r for r in operators if "meridian-preview" in r["who"] or "meridian-plan" in r["who"]]


def test_the_headline_says_what_it_counts(us_matrix):
    counted = {c["class"].split(" (")[0]: c["ways"] for c in us_matrix["coverage"]}
    assert set(counted) == {
        "the plan's principals",
        "principals the plan names but does not hold",
        "principals of the stack's account outside the plan",
        "cluster operators outside the plan",
    }
    assert sum(counted.values()) == len(us_matrix["rows"])
    assert counted["principals of the stack's account outside the plan"] and counted["cluster operators outside the plan"]
    console = Console(record=True, width=4000, no_color=True)
    _print_matrix(us_matrix, "us", console)
    text = " ".join(console.export_text().split())
    rows = len(us_matrix["rows"])
    assert f"tenant acme: {rows} ways in ({rows} proven by the documents the plan and the pack hold, 0 assumed" in text
    assert "0 not allowed by the tenancy design" in text and "Counted, by who: the plan's principals" in text
    assert "Not counted: what SCPs and RCPs deny" in text


# --- an AWS-managed policy the pack does not ship ------------------------------------------------


def test_an_unshipped_managed_policy_is_an_assumed_row_and_still_fails_the_rule(us):
    assert UNSHIPPED not in SHIPPED
    resources = with_unshipped_policy_on_the_broker(us)
    found = matrix(resources)
    label = f"unknown AWS-managed policy {UNSHIPPED} treated as every action"
    assumed = [r for r in found["rows"] if r["assumed"]]
    assert assumed and all(r["assumed"] == [label] for r in assumed)
    assert {r["principal"] for r in assumed} == {"role us-us-east-1-tenant-identity-broker"}
    # the broker's own pods: a violation; cluster operators creating such pods: platform administration, listed
    bad = [r for r in assumed if r["verdict"].startswith("violation")]
    assert bad and all(r["verdict"].startswith("violation: a platform workload reaches it") for r in bad)
    assert {r["origin"] for r in assumed} == {"platform", "operator"}
    # what the broker's own documents prove (its tagged sessions for acme) stays proven, apart
    assert [r for r in found["rows"] if "tenant-identity-broker" in r["path"] and not r["assumed"]]

    console = Console(record=True, width=4000, no_color=True)
    _print_matrix(found, "us", console)
    text = " ".join(console.export_text().split())
    assert "│ assumed: policy document not shipped: │" in text and f"│ {label} │" in text  # the verdict cell
    assert f"{len(assumed)} assumed: policy document not shipped" in text and f"({len(bad)} of them assumed)" in text

    with Analyzer(PACK) as analyzer:
        info = analyzer.wait_ready()
        analyzer.configure(
            effective_config(info, {"all": "disabled", RULE: {**rule_config("us"), "enforcementLevel": "mandatory"}}, "test")
        )
        violations = [v for v in evaluate(analyzer, [Subject.from_dict(r) for r in resources]) if v.policy == RULE]
    mandatory = [v.message for v in violations if v.level == "mandatory"]
    assert any("Tenant acme's data" in m and label in m for m in mandatory), mandatory


# --- Kubernetes RBAC: running code in a tenant's pods ---------------------------------------------


def _exec_into_acme(subject: dict) -> list[dict]:
    """The synthetic tenancy stack with a Role in t-acme that may exec into its pods, bound to `subject`."""
    resources = data.tenancy_stack("tagged-broker")
    rules = [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]
    role = {"metadata": {"name": "acme-debug", "namespace": "t-acme"}, "rules": rules}
    binding = {
        "metadata": {"name": "acme-debug", "namespace": "t-acme"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "acme-debug"},
        "subjects": [subject],
    }
    for type_, name, body in (("Role", "acme-debug-role", role), ("RoleBinding", "acme-debug-binding", binding)):
        resources.append({**resource(f"kubernetes:rbac.authorization.k8s.io/v1:{type_}", name, body), "provider": K8S})
    return resources


def _synthetic(resources: list[dict], tenant: str = "acme") -> tuple[list, dict]:
    sys.path.insert(0, str(PACK))
    try:
        from access import explain, rule

        found = rule.findings(explain.from_plan(resources), data.CONFIG[RULE])[3]
        return [m for _, m in found], explain.explain({"resources": resources, "config": data.CONFIG[RULE], "tenant": tenant})
    finally:
        sys.path.remove(str(PACK))


def test_a_kubernetes_user_bound_to_exec_into_a_tenants_pods_is_listed_with_its_path():
    found, explained = _synthetic(_exec_into_acme({"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}))
    assert found == []  # who alice is the plan does not say: platform administration, listed, not a violation
    alice = [r for r in explained["rows"] if r["who"].startswith("Kubernetes User alice")]
    assert alice and all(r["origin"] == "operator" for r in alice)
    assert any(
        "-> runs code in pods in t-acme (Kubernetes binding of User alice) -> pods in t-acme as acme-app (" in r["path"]
        for r in alice
    )
    _, plain = _synthetic(data.tenancy_stack("tagged-broker"))
    assert not [r for r in plain["rows"] if "alice" in r["who"]]


def test_a_platform_workload_bound_to_exec_into_a_tenants_pods_is_a_violation():
    found, _ = _synthetic(_exec_into_acme({"kind": "ServiceAccount", "name": "meridian-api", "namespace": "platform"}))
    assert any(
        "Tenant acme's data" in m and "runs code in pods in t-acme (Kubernetes binding of ServiceAccount meridian-api)" in m
        for m in found
    ), found


def test_a_cluster_that_makes_its_creator_admin_lists_the_creator(us, us_matrix):
    creator = "the IAM principal that creates cluster us-us-east-1-eks"
    assert not [r for r in us_matrix["rows"] if r["who"].startswith("the IAM principal that creates")]  # false in the plan
    resources = copy.deepcopy(us)
    cluster = next(r for r in resources if r["type"] == "aws:eks/cluster:Cluster" and r["inputs"]["name"] == "us-us-east-1-eks")
    del cluster["inputs"]["accessConfig"]["bootstrapClusterCreatorAdminPermissions"]  # EKS's default: true
    rows = [r for r in matrix(resources)["rows"] if r["who"].startswith(creator)]
    assert rows and all(r["verdict"].startswith("allowed: platform administration") for r in rows)
    assert any("-> pods in t-acme as acme-app (pod identity association us-us-east-1-t-acme-identity)" in r["path"] for r in rows)
    assert not [r for r in rows if "us-us-west-2" in r["path"]]  # that cluster's own pods only
