"""`meridian preflight --online` against moto's AWS (STS, Route 53, ECR) and botocore stubs (Cost
Explorer, which moto does not implement), with public DNS answered by a stand-in resolver: each
check passes on what a ready account holds and fails, naming the problem, on each way it is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from components.cost import COST_ALLOCATION_TAGS
from meridian.preflight.analyzers import ANALYZER
from meridian.preflight.checks import Context
from meridian.preflight.image import INDEX_TYPES, MANIFEST_TYPES
from meridian.preflight.online import Aws, run_online_checks
from stackconfig import GuardrailSettings

from .helpers import recorded_plan

pytestmark = pytest.mark.slow  # the plan comes from an offline run of the program

MOTO_ACCOUNT = "123456789012"  # moto's caller; the us stack's configured account too


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return recorded_plan(tmp_path_factory.mktemp("online"))


@pytest.fixture
def account():
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def ready(session, cfg, *, architectures=("arm64", "amd64"), tag=None):
    """An account as the operations guide leaves it: the zone, the image in both regions' repositories."""
    zone = session.client("route53").create_hosted_zone(Name=cfg.failover.api_zone, CallerReference="guide")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_TYPES[1],
        "manifests": [
            {
                "mediaType": MANIFEST_TYPES[1],
                "digest": f"sha256:{i:064x}",
                "size": 1,
                "platform": {"architecture": a, "os": "linux"},
            }
            for i, a in enumerate(architectures)
        ],
    }
    for region in (cfg.regions.primary.region, cfg.regions.dr.region):
        ecr = session.client("ecr", region_name=region)
        ecr.create_repository(repositoryName=cfg.workload.repository)
        ecr.put_image(
            repositoryName=cfg.workload.repository,
            imageManifest=json.dumps(index),
            imageManifestMediaType=INDEX_TYPES[1],
            imageTag=tag or cfg.workload.image_tag,
        )
    failover = cfg.failover.model_copy(update={"hosted_zone_id": zone_id})
    name_servers = session.client("route53").get_hosted_zone(Id=zone_id)["DelegationSet"]["NameServers"]
    return cfg.model_copy(update={"failover": failover}), {ns.lower() for ns in name_servers}


DENIED = {"*": []}  # ListAnalyzers refuses (access denied)


class StubbedCe:
    """A session whose Cost Explorer and Access Analyzer clients answer from botocore stubs (moto has
    neither); everything else goes to moto. `analyzers`: region -> the analyzers ListAnalyzers returns."""

    def __init__(self, session, known_tags: list[str] | None, analyzers: dict[str, list[dict]] | None = None):
        self.session, self.known, self.analyzers = session, known_tags, {} if analyzers is None else analyzers
        self.stubbers: list[Stubber] = []

    def client(self, service, region_name=None):
        client = self.session.client(service, region_name=region_name)
        if service == "accessanalyzer":
            stub = Stubber(client)
            if self.analyzers == DENIED:
                stub.add_client_error("list_analyzers", "AccessDeniedException", "not allowed: access-analyzer:ListAnalyzers")
            else:
                stub.add_response("list_analyzers", {"analyzers": self.analyzers.get(region_name, [])})
            stub.activate()
            self.stubbers.append(stub)
        if service == "ce":
            stub = Stubber(client)
            if self.known is None:
                stub.add_client_error(
                    "list_cost_allocation_tags", "AccessDeniedException", "not allowed: ce:ListCostAllocationTags"
                )
            else:
                stub.add_response(
                    "list_cost_allocation_tags",
                    {"CostAllocationTags": [{"TagKey": k, "Type": "UserDefined", "Status": "Inactive"} for k in self.known]},
                )
            stub.activate()
            self.stubbers.append(stub)
        return client


def cost_tags(plan) -> list[str]:
    """The keys the stack activates once billing has them (the first `up` activates none)."""
    return sorted(COST_ALLOCATION_TAGS)


class Activating(Context):
    """The plan as it is once cost.cost_allocation_tags_in_billing is true: one activation per key."""

    def of_type(self, token):
        if token != "aws:costexplorer/costAllocationTag:CostAllocationTag":
            return super().of_type(token)
        for key in COST_ALLOCATION_TAGS:
            self.inputs[f"urn:activation:{key}"] = {"tagKey": key, "status": "Active"}
        return [SimpleNamespace(urn=f"urn:activation:{key}") for key in COST_ALLOCATION_TAGS]


def results(plan, cfg, session, resolve, known_tags="all", activating=False, analyzers=None, context=None):
    known = cost_tags(plan) if known_tags == "all" else known_tags
    stubbed = StubbedCe(session, known, analyzers)
    ctx = (context or (Activating if activating else Context)).of(plan, cfg)
    out = {r.check: r for r in run_online_checks(ctx, Aws(stubbed, resolve=resolve))}
    for stub in stubbed.stubbers:
        stub.assert_no_pending_responses()
    return out


def problems(result) -> str:
    return " | ".join(f.problem for f in result.findings)


def test_a_ready_account_passes_every_online_check(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    out = results(plan, cfg, account, resolve=lambda zone: ns)
    assert all(r.passed for r in out.values()), {k: problems(r) for k, r in out.items() if not r.passed}
    assert all(r.checked for r in out.values()), "a check that looked at nothing proves nothing"
    assert not any("unknown" in n for n in out["image"].notes), "both regions' platforms read from ECR"
    assert out["online-cost-tags"].checked == len(cost_tags(plan)) >= 3


def test_credentials_of_another_account_fail(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    other = cfg.model_copy(update={"aws_account_id": "210987654321"})
    out = results(plan, other, account, resolve=lambda zone: ns)
    assert not out["online-account"].passed and f"of account {MOTO_ACCOUNT}, not the stack's 210987654321" in problems(
        out["online-account"]
    )


def test_a_zone_public_dns_does_not_delegate_to_fails(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    out = results(plan, cfg, account, resolve=lambda zone: {"ns1.registrar.example"})
    assert "delegates us.meridian.example.com to ns1.registrar.example" in problems(out["online-delegation"])

    def nxdomain(zone):
        raise LookupError(f"{zone}: NXDOMAIN")

    out = results(plan, cfg, account, resolve=nxdomain)
    assert "not delegated" in problems(out["online-delegation"])
    assert all(n in out["online-delegation"].findings[0].fix for n in ns), "the fix lists the zone's name servers"


def test_a_zone_of_another_name_fails(recorded, account):
    plan, cfg = recorded
    zone = account.client("route53").create_hosted_zone(Name="elsewhere.example.org", CallerReference="x")
    wrong = cfg.model_copy(
        update={"failover": cfg.failover.model_copy(update={"hosted_zone_id": zone["HostedZone"]["Id"].rsplit("/", 1)[1]})}
    )
    out = results(plan, wrong, account, resolve=lambda z: set())
    assert "is elsewhere.example.org, not meridian:failover.api_zone" in problems(out["online-delegation"])


def test_an_image_not_pushed_or_built_for_another_cpu_fails(recorded, account):
    plan, cfg = recorded
    cfg_ready, ns = ready(account, cfg, architectures=("amd64",))
    out = results(plan, cfg_ready, account, resolve=lambda zone: ns)
    assert "is built for linux/amd64; the node group us-us-east-1-eks-nodes runs linux/arm64" in problems(out["image"])
    assert len(out["image"].findings) == 2, "both regions"


def test_an_image_tag_not_pushed_fails(recorded, account):
    plan, cfg = recorded
    cfg_ready, ns = ready(account, cfg, tag="0.0.9")
    out = results(plan, cfg_ready, account, resolve=lambda zone: ns)
    assert f"ECR has no meridian/service:{cfg.workload.image_tag} in us-east-1" in problems(out["image"])


def test_a_single_platform_image_is_judged_by_its_config_blob(recorded, account):
    plan, cfg = recorded
    cfg_ready, ns = ready(account, cfg, tag="0.0.1")  # the repositories; the release below is one platform
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPES[1],
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "c" * 64, "size": 2},
        "layers": [],
    }
    for region in (cfg.regions.primary.region, cfg.regions.dr.region):
        account.client("ecr", region_name=region).put_image(
            repositoryName=cfg.workload.repository,
            imageManifest=json.dumps(manifest),
            imageManifestMediaType=MANIFEST_TYPES[1],
            imageTag=cfg.workload.image_tag,
        )
    fetched = []

    def blob(url):
        fetched.append(url)
        return json.dumps({"architecture": "amd64", "os": "linux"}).encode()

    # moto does not serve layer downloads: the config blob's URL is stubbed like the rest of ECR would be
    class Layers(StubbedCe):
        def client(self, service, region_name=None):
            client = super().client(service, region_name)
            if service == "ecr":
                client.get_download_url_for_layer = lambda **kw: {"downloadUrl": f"https://ecr.example/{kw['layerDigest']}"}
            return client

    ctx = Context.of(plan, cfg_ready)
    out = {r.check: r for r in run_online_checks(ctx, Aws(Layers(account, cost_tags(plan)), resolve=lambda z: ns, fetch=blob))}
    assert fetched and all(u.endswith("c" * 64) for u in fetched), problems(out["image"])
    assert "is built for linux/amd64; the node group" in problems(out["image"])


def test_cost_allocation_tags_billing_has_not_seen_fail(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    tags = cost_tags(plan)
    out = results(plan, cfg, account, resolve=lambda zone: ns, known_tags=tags[:1], activating=True)
    assert len(out["online-cost-tags"].findings) == len(tags) - 1
    assert f"billing has not seen tag {tags[1]} yet" in problems(out["online-cost-tags"])


def test_a_question_aws_would_not_answer_fails_saying_what_it_could_not_read(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    out = results(plan, cfg, account, resolve=lambda zone: ns, known_tags=None)
    assert not out["online-cost-tags"].passed
    assert "could not read the account's cost-allocation tags: ClientError" in problems(out["online-cost-tags"])


def test_before_activation_the_online_check_says_when_the_tags_can_be_turned_on(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    waiting = results(plan, cfg, account, resolve=lambda zone: ns, known_tags=[])["online-cost-tags"]
    assert waiting.passed and "billing has not seen" in " ".join(waiting.notes)
    ready_now = results(plan, cfg, account, resolve=lambda zone: ns)["online-cost-tags"]
    assert ready_now.passed and "cost_allocation_tags_in_billing to true" in " ".join(ready_now.notes)


# --- Access Analyzers: one account-level analyzer of each type per account and region ---------------


def _analyzer(name: str, type_: str, region: str) -> dict:
    return {
        "arn": f"arn:aws:access-analyzer:{region}:{MOTO_ACCOUNT}:analyzer/{name}",
        "name": name,
        "type": type_,
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
        "status": "ACTIVE",
    }


def _planned_analyzers(plan) -> dict[str, list[dict]]:
    """The analyzers the plan creates, as ListAnalyzers answers once an `up` made them."""
    out: dict[str, list[dict]] = {}
    for r in plan.resource_dicts:
        if r["type"] == ANALYZER:
            region = plan.region_of(next(g for g in plan.custom if g.urn == r["urn"]))
            out.setdefault(region, []).append(_analyzer(r["inputs"]["analyzerName"], r["inputs"]["type"], region))
    return out


class WithoutAnalyzers(Context):
    """The plan as `guardrails.access_analyzer: existing` renders it: no analyzer of its own."""

    def of_type(self, token):
        return [] if token == ANALYZER else super().of_type(token)


def test_an_account_that_already_runs_an_analyzer_of_a_type_the_stack_creates_fails(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    primary = cfg.regions.primary.region
    found = results(
        plan, cfg, account, resolve=lambda zone: ns, analyzers={primary: [_analyzer("account-default", "ACCOUNT", primary)]}
    )["online-access-analyzers"]
    assert len(found.findings) == 1, problems(found)
    (finding,) = found.findings
    assert f"{primary} already has the account-level ACCOUNT analyzer account-default" in finding.problem
    assert finding.urn.endswith("-external-access") and "meridian:guardrails.access_analyzer to existing" in finding.fix
    assert found.checked == 4  # two types in each of two regions


def test_the_stacks_own_analyzers_after_its_up_pass(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    found = results(plan, cfg, account, resolve=lambda zone: ns, analyzers=_planned_analyzers(plan))["online-access-analyzers"]
    assert found.passed and found.checked == 4, problems(found)


def test_relying_on_the_accounts_analyzers_needs_each_type_in_each_region(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    cfg = cfg.model_copy(update={"guardrails": GuardrailSettings(access_analyzer="existing")})
    primary, dr = cfg.regions.primary.region, cfg.regions.dr.region
    covered = {
        primary: [_analyzer("org", "ORGANIZATION", primary), _analyzer("unused", "ACCOUNT_UNUSED_ACCESS", primary)],
        dr: [_analyzer("ext", "ACCOUNT", dr), _analyzer("org-unused", "ORGANIZATION_UNUSED_ACCESS", dr)],
    }
    run = results(plan, cfg, account, resolve=lambda zone: ns, analyzers=covered, context=WithoutAnalyzers)
    assert run.get("online-access-analyzers").passed, problems(run["online-access-analyzers"])
    missing = {primary: covered[primary], dr: covered[dr][:1]}
    found = results(plan, cfg, account, resolve=lambda zone: ns, analyzers=missing, context=WithoutAnalyzers)
    (finding,) = found["online-access-analyzers"].findings
    assert f"existing, but {dr} has no ACCOUNT_UNUSED_ACCESS or ORGANIZATION_UNUSED_ACCESS analyzer" in finding.problem


def test_analyzers_that_cannot_be_listed_fail_saying_so(recorded, account):
    plan, cfg = recorded
    cfg, ns = ready(account, cfg)
    found = results(plan, cfg, account, resolve=lambda zone: ns, analyzers=DENIED)["online-access-analyzers"]
    assert not found.passed and found.checked == 0
    assert "could not read the Access Analyzers of" in problems(found) and "AccessDenied" in problems(found)
