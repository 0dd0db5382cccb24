"""Progressive delivery on AWS: each region's ALB with a stable and a canary target group split by
weight, the AWS Load Balancer Controller binding the Services to them, short-TTL failover records
with RTO-derived timing, and the AWS target moving the weights (elbv2 on moto).

The plan is the offline engine's for the real stacks; the AWS target reads exactly the outputs the
engine rendered, with moto's ARNs swapped in for the listener and target groups it creates.
"""

from __future__ import annotations

import json
import re

import boto3
import pytest

from components import ingress, lbcontroller
from components.naming import ELB_LOGICAL_MAX, ELB_NAME_MAX, elb_logical_name, elb_prefix, region_code
from meridian.costmodel import estimate
from meridian.errors import BadInput
from meridian.preflight import names as namerules
from meridian.targets import ROLES, ActionFailed, Target
from meridian.targets import aws as aws_target
from stackconfig import ConfigError, RawConfig, load_stack, parse_config, read_stack_files
from stackconfig.planning import DEFAULT_DNS_TTL_S, derived_failure_threshold, failover_budget

from .helpers import ROOT, STACKS, by_urn, of_type

LB = "aws:lb/loadBalancer:LoadBalancer"
TG = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
RELEASE = "kubernetes:helm.sh/v3:Release"


def regions_of(stack):
    cfg = load_stack(ROOT, stack)
    return cfg, {role: spec.region for role, spec in cfg.regions.both}


def track_of(resource) -> str:
    return resource["inputs"]["metadata"]["labels"]["meridian.io/track"]


# --- the plan: ALB, target groups, weighted listener ---------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_region_has_an_alb_with_two_target_groups_and_a_weighted_https_listener(previews, stack):
    plan = previews[stack].plan
    cfg, regions = regions_of(stack)
    urns = by_urn(plan)
    for region in regions.values():
        (alb,) = of_type(plan, LB, region)
        assert alb["inputs"]["loadBalancerType"] == "application" and alb["inputs"]["internal"] is False
        assert alb["inputs"]["clientKeepAlive"] == failover_budget(10, 1).keep_alive_s, "the pinned-client term counts on it"
        (sg_urn,) = alb["propertyDependencies"]["securityGroups"]
        assert [r["fromPort"] for r in urns[sg_urn]["inputs"]["ingress"]] == [443]
        groups = {g["inputs"]["tags"]["meridian:track"]: g for g in of_type(plan, TG, region)}
        assert set(groups) == {"stable", "canary"}
        for group in groups.values():
            assert group["inputs"]["targetType"] == "ip" and group["inputs"]["port"] == cfg.workload.container_port
            assert group["inputs"]["healthCheck"]["path"] == "/healthz" and group["inputs"]["healthCheck"]["matcher"] == "200"
            assert len(group["name"]) <= ELB_LOGICAL_MAX, "pulumi-aws could not auto-name it within 32 characters"
        (listener,) = of_type(plan, LISTENER, region)
        assert listener["inputs"]["protocol"] == "HTTPS" and listener["inputs"]["port"] == 443
        assert listener["inputs"]["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")
        assert alb["urn"] in listener["propertyDependencies"]["loadBalancerArn"]
        (validation,) = [urns[u] for u in listener["propertyDependencies"]["certificateArn"]]
        assert validation["type"] == "aws:acm/certificateValidation:CertificateValidation" and validation["region"] == region
        (action,) = listener["inputs"]["defaultActions"]
        weighted = action["forward"]["targetGroups"]
        assert action["type"] == "forward" and [w["weight"] for w in weighted] == [100, 0], "created all stable"
        assert set(listener["propertyDependencies"]["defaultActions"]) == {g["urn"] for g in groups.values()}
        for i, track in enumerate(ingress.TRACKS):
            assert f"/{groups[track]['name']}-" in weighted[i]["arn"], f"weight {i} is not the {track} group"


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_alb_reaches_the_pods_port(previews, stack):
    plan = previews[stack].plan
    urns = by_urn(plan)
    cfg, regions = regions_of(stack)
    for region in regions.values():
        (alb,) = of_type(plan, LB, region)
        (alb_sg,) = [urns[u] for u in alb["propertyDependencies"]["securityGroups"]]
        assert [(e["fromPort"], e["toPort"], e["cidrBlocks"]) for e in alb_sg["inputs"]["egress"]] == [
            (cfg.workload.container_port, cfg.workload.container_port, [str(dict(cfg.regions.both)[r].cidr)])
            for r, spec in cfg.regions.both
            if spec.region == region
        ]
        (rule,) = of_type(plan, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", region)
        assert rule["propertyDependencies"]["referencedSecurityGroupId"] == [alb_sg["urn"]]
        assert (rule["inputs"]["fromPort"], rule["inputs"]["toPort"]) == (cfg.workload.container_port,) * 2
        (cluster,) = of_type(plan, "aws:eks/cluster:Cluster", region)
        assert rule["propertyDependencies"]["securityGroupId"] == [cluster["urn"]], "the pods' (cluster) security group"


def _resolve(inputs: dict, path: str):
    node = inputs
    for part in re.findall(r"[A-Za-z]+|\[\d+\]", path):
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return node


def test_the_weights_pulumi_ignores_are_the_listener_weights(previews):
    """`ignore_changes` paths that name nothing would silently let `pulumi up` reset a rollout."""
    (listener, *_) = of_type(previews["us"].plan, LISTENER)
    assert [_resolve(listener["inputs"], p) for p in ingress.RUNTIME_OWNED] == [100, 0]


@pytest.mark.parametrize("stack", STACKS)
def test_target_group_bindings_name_each_tracks_service_and_group(previews, stack):
    plan = previews[stack].plan
    urns = by_urn(plan)
    _, regions = regions_of(stack)
    for region in regions.values():
        bindings = of_type(plan, BINDING, region)
        assert sorted(track_of(b) for b in bindings) == ["canary", "stable"]
        (release,) = of_type(plan, RELEASE, region)
        deployments = {track_of(d): d for d in of_type(plan, "kubernetes:apps/v1:Deployment", region)}
        for binding in bindings:
            track = track_of(binding)
            spec = binding["inputs"]["spec"]
            assert spec["targetType"] == "ip"
            (group,) = [urns[u] for u in binding["propertyDependencies"]["spec"] if urns[u]["type"] == TG]
            (service,) = [
                urns[u] for u in binding["propertyDependencies"]["spec"] if urns[u]["type"] == "kubernetes:core/v1:Service"
            ]
            assert group["inputs"]["tags"]["meridian:track"] == track and group["region"] == region
            assert f"/{group['name']}-" in spec["targetGroupARN"]
            assert service["inputs"]["spec"]["type"] == "ClusterIP" and track_of(service) == track
            assert spec["serviceRef"]["port"] == service["inputs"]["spec"]["ports"][0]["port"]
            pod_labels = deployments[track]["inputs"]["spec"]["template"]["metadata"]["labels"]
            assert service["inputs"]["spec"]["selector"].items() <= pod_labels.items(), "the Service selects its track's pods"
            others = [d for t, d in deployments.items() if t != track]
            assert not any(
                service["inputs"]["spec"]["selector"].items() <= d["inputs"]["spec"]["template"]["metadata"]["labels"].items()
                for d in others
            )
            assert release["urn"] in binding["dependencies"], "the chart installs the TargetGroupBinding CRD first"


@pytest.mark.parametrize("stack", STACKS)
def test_canary_runs_the_stable_image_without_a_canary_tag(previews, stack):
    plan = previews[stack].plan
    cfg, regions = regions_of(stack)
    for region in regions.values():
        deployments = {track_of(d): d for d in of_type(plan, "kubernetes:apps/v1:Deployment", region)}
        image = {t: d["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] for t, d in deployments.items()}
        assert cfg.workload.canary_image_tag is None and image["canary"] == image["stable"]
        assert deployments["canary"]["inputs"]["spec"]["replicas"] == cfg.rollout.canary_replicas
        assert deployments["stable"]["inputs"]["spec"]["replicas"] == cfg.workload.replicas


# --- the controller: chart, role, policy, trust -----------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_load_balancer_controller_chart_and_its_pod_identity(previews, stack):
    plan = previews[stack].plan
    urns = by_urn(plan)
    _, regions = regions_of(stack)
    vendored = json.loads(lbcontroller.IAM_POLICY_FILE.read_text())
    for region in regions.values():
        (release,) = of_type(plan, RELEASE, region)
        inputs = release["inputs"]
        assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (
            "aws-load-balancer-controller",
            lbcontroller.CHART_VERSION,
            "https://aws.github.io/eks-charts",
        )
        (cluster,) = of_type(plan, "aws:eks/cluster:Cluster", region)
        (vpc,) = of_type(plan, "aws:ec2/vpc:Vpc", region)
        values = inputs["values"]
        assert values["clusterName"] == cluster["inputs"]["name"] and values["region"] == region
        assert values["vpcId"].startswith("vpc-") and vpc["urn"] in release["dependencies"]
        (association,) = [
            a
            for a in of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation", region)
            if a["inputs"]["namespace"] == "kube-system"
        ]
        assert association["inputs"]["serviceAccount"] == values["serviceAccount"]["name"] and values["serviceAccount"]["create"]
        assert association["urn"] in release["dependencies"], "credentials exist before the controller starts"
        (role,) = [urns[u] for u in association["propertyDependencies"]["roleArn"]]
        (trust,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert (
            trust["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-arn"]
            == f"arn:aws:eks:{region}:123456789012:cluster/{cluster['inputs']['name']}"
        )
        attachments = [
            a for a in of_type(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment") if role["urn"] in a["dependencies"]
        ]
        (policy,) = [urns[u] for a in attachments for u in a["propertyDependencies"]["policyArn"]]
        assert json.loads(policy["inputs"]["policy"]) == vendored


def test_the_vendored_policy_is_the_controllers_own():
    doc = json.loads(lbcontroller.IAM_POLICY_FILE.read_text())
    actions = {a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    # what the controller calls to keep a TargetGroupBinding's group filled
    assert {"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets", "ec2:DescribeInstances"} <= actions
    assert lbcontroller.CONTROLLER_VERSION == f"v{lbcontroller.CHART_VERSION}"


# --- Route 53: short-TTL records to the ALB, RTO-derived timing ----------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_failover_records_point_at_each_regions_alb_with_a_short_ttl_and_a_check_through_it(previews, stack):
    plan = previews[stack].plan
    urns = by_urn(plan)
    cfg, regions = regions_of(stack)
    records = [r for r in of_type(plan, "aws:route53/record:Record") if r["inputs"].get("failoverRoutingPolicies")]
    by_role = {r["inputs"]["failoverRoutingPolicies"][0]["type"]: r for r in records}
    assert set(by_role) == {"PRIMARY", "SECONDARY"}
    for role, region in (("PRIMARY", regions["primary"]), ("SECONDARY", regions["dr"])):
        record = by_role[role]
        # not an alias: Route 53 would answer an alias to an ELB with the balancer's fixed 60 s TTL
        assert record["inputs"]["type"] == "CNAME" and "aliases" not in record["inputs"]
        assert record["inputs"]["ttl"] == cfg.failover.dns_ttl_s == 10
        (alb,) = of_type(plan, LB, region)
        assert {urns[u]["urn"] for u in record["propertyDependencies"]["records"]} == {alb["urn"]}
        (target,) = record["inputs"]["records"]
        assert target.endswith(f".{region}.elb.amazonaws.com")
        # the check goes through the ALB: no healthy target -> the ALB answers 503 -> the region leaves DNS
        (check,) = [urns[u] for u in record["propertyDependencies"]["healthCheckId"]]
        assert check["inputs"]["fqdn"] == target and check["inputs"]["resourcePath"] == "/healthz"
        assert check["inputs"]["type"] == "HTTPS"
        assert check["inputs"]["failureThreshold"] == cfg.failover.failure_threshold
    outputs = plan["outputs"]
    assert outputs["failover_detection_bound_s"] == cfg.failover.detection_bound_s
    assert outputs["failover_bound_s"] == cfg.failover.failover_bound_s <= cfg.failover.rto_target_s < 60 + 1
    assert cfg.failover.failover_bound_s < 60, "the product target: automatic region failover under 60 s"


def test_failover_budget_states_its_margin():
    b = failover_budget(10, 2)
    assert (b.detection_s, b.dns_ttl_s, b.aggregation_s, b.margin_s, b.keep_alive_s) == (20, DEFAULT_DNS_TTL_S, 10, 10, 60)
    assert b.detection_bound_s == 30 and b.total_s == 50 and b.pinned_client_s == 110
    assert "10 x 2 + TTL 10 + checker aggregation 10 + propagation margin 10 = 50 s" in b.explain()
    assert failover_budget(10, 2, 60).total_s == 100, "an alias's fixed 60 s TTL alone would miss the 60 s target"
    for rto in (40, 60, 150, 600):
        for interval in (10, 30):
            for ttl in (5, 10, 60):
                t = derived_failure_threshold(rto, interval, ttl)
                if failover_budget(interval, 1, ttl).total_s <= rto:
                    assert failover_budget(interval, t, ttl).total_s <= rto
                    assert t == 10 or failover_budget(interval, t + 1, ttl).total_s > rto, "the largest threshold that fits"


def _raw(stack, **failover):
    raw, _ = read_stack_files(ROOT, stack)
    values = json.loads(json.dumps(raw.values))
    values["failover"] = {k: v for k, v in {**values["failover"], **failover}.items() if v is not None}
    return RawConfig(values, raw.sources, raw.default_source, raw.foreign)


def test_a_ttl_that_alone_spends_the_target_is_refused_with_the_fix():
    with pytest.raises(ConfigError, match=r"lower dns_ttl_s or raise rto_target_s to at least 90 s"):
        parse_config(_raw("us", dns_ttl_s=60, rto_target_s=60))


def test_dns_ttl_is_bounded():
    for ttl in (0, 301, "ten"):
        with pytest.raises(ConfigError, match=r"meridian:failover.dns_ttl_s"):
            parse_config(_raw("us", dns_ttl_s=ttl))


def test_an_absent_threshold_is_derived_from_the_rto_target():
    cfg = parse_config(_raw("us", failure_threshold=None, rto_target_s=90))
    assert cfg.failover.failure_threshold == derived_failure_threshold(90, 10) == 6
    assert cfg.failover.failover_bound_s <= 90


def test_a_dr_rto_shorter_than_a_pinned_clients_wait_is_refused():
    raw = _raw("us")
    raw.values["dr"] = {**raw.values.get("dr", {}), "rto_minutes": 1.5}
    with pytest.raises(ConfigError, match=r"dr.rto_minutes.*client keep-alive \(110 s\)"):
        parse_config(raw)


# --- names, cost -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["us", "apac", "a-very-long-stack-name-indeed"])
@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2", "ap-northeast-3", "eu-central-1"])
def test_elb_names_fit_32_characters_by_construction(stack, region):
    prefix = elb_prefix(stack, region)
    for thing in ("api", "stable", "canary"):
        logical = elb_logical_name(prefix, thing)
        assert len(logical) <= ELB_LOGICAL_MAX
        assert logical == f"{prefix}-{thing}" or len(prefix) + len(thing) + 1 > ELB_LOGICAL_MAX, "readable whenever it fits"
        for rule in (namerules.RULES[LB], namerules.RULES[TG]):
            assert namerules.check_name(rule, "urn:x", logical, {}) == []
    assert region_code("ap-southeast-2") != region_code("ap-south-2")


def test_preflight_refuses_an_elb_name_over_32_characters():
    too_long = "x" * (ELB_NAME_MAX - 7)  # + "-" + 7 random characters = 33
    for token in (LB, TG):
        (problem,) = namerules.check_name(namerules.RULES[token], "urn:x", too_long, {})
        assert "32" in problem.message
    (problem,) = namerules.check_name(namerules.RULES[LB], "urn:x", "lb", {"name": "internal-api"})
    assert problem.name == "internal-api"


def test_the_alb_is_priced_and_its_parts_are_free(previews):
    plan = previews["us"].plan
    cfg = load_stack(ROOT, "us")
    report = estimate(plan["resources"], cfg, "us")
    lines = [line for line in report.lines if line.type == LB]
    assert len(lines) == 2 and all("application load balancer" in line.basis and line.monthly_usd > 0 for line in lines)
    assert not {TG, LISTENER, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"} & set(report.unpriced_types)


# --- the AWS target moves the weights (elbv2 on moto) --------------------------------------------------


class Elbv2:
    """Per region on moto: an ALB, its stable and canary target groups and the listener as the stack builds them."""

    def __init__(self, region: str):
        self.client = boto3.client("elbv2", region_name=region)
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        azs = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"][:2]]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
            for i, az in enumerate(azs)
        ]
        alb = self.client.create_load_balancer(Name=f"api-{region_code(region)}", Subnets=subnets, Type="application")
        self.groups = {
            track: self.client.create_target_group(
                Name=f"{track}-{region_code(region)}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
            )["TargetGroups"][0]["TargetGroupArn"]
            for track in ("stable", "canary")
        }
        self.listener = self.client.create_listener(
            LoadBalancerArn=alb["LoadBalancers"][0]["LoadBalancerArn"],
            Protocol="HTTP",
            Port=443,
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": self.groups["stable"], "Weight": 100},
                            {"TargetGroupArn": self.groups["canary"], "Weight": 0},
                        ]
                    },
                }
            ],
        )["Listeners"][0]["ListenerArn"]

    def weights(self) -> dict[str, int]:
        (listener,) = self.client.describe_listeners(ListenerArns=[self.listener])["Listeners"]
        tgs = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
        by_arn = {t["TargetGroupArn"]: t["Weight"] for t in tgs}
        return {track: by_arn[arn] for track, arn in self.groups.items()}


ARN = re.compile(r"^arn:aws:elasticloadbalancing:[a-z0-9-]+:\d{12}:(listener/app|targetgroup)/")


def canary_target(previews, tmp_path, calls):
    """The target over the us stack's rendered outputs, moto's ALBs in place of the rendered ARNs."""
    outputs = json.loads(json.dumps(previews["us"].plan["outputs"]))
    lbs = {}
    for role in ROLES:
        rendered = outputs["regions"][role]
        assert ARN.match(rendered["listener_arn"]) and all(ARN.match(a) for a in rendered["target_group_arns"].values())
        assert set(rendered["target_group_arns"]) == {"stable", "canary"}
        lbs[role] = Elbv2(rendered["region"])
        rendered["listener_arn"], rendered["target_group_arns"] = lbs[role].listener, dict(lbs[role].groups)
    path = tmp_path / "us-outputs.json"
    path.write_text(json.dumps(outputs))

    def factory(service, region):
        client = boto3.client(service, region_name=region)
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.append((service, region, model.name)))
        return client

    return aws_target.from_stack("us", ROOT, outputs=path, client_factory=factory), lbs


def register_canary(lb: Elbv2) -> None:
    lb.client.register_targets(TargetGroupArn=lb.groups["canary"], Targets=[{"Id": "10.0.0.10", "Port": 8080}])


def test_set_canary_weight_modifies_the_listener_and_reads_back(previews, aws_env, tmp_path):
    calls: list = []
    target, lbs = canary_target(previews, tmp_path, calls)
    assert isinstance(target, Target)
    assert target.canary_weights() == {"primary": 0, "dr": 0}
    register_canary(lbs["primary"])
    calls.clear()
    result = target.set_canary_weight("primary", 5)
    assert result.changed and "95 % stable, 5 % canary" in result.detail
    assert [c[2] for c in calls] == ["DescribeListeners", "DescribeTargetHealth", "ModifyListener"]
    assert {c[1] for c in calls} == {target.regions["primary"]}
    assert lbs["primary"].weights() == {"stable": 95, "canary": 5} and lbs["dr"].weights() == {"stable": 100, "canary": 0}
    assert target.canary_weights() == {"primary": 5, "dr": 0}
    again = target.set_canary_weight("primary", 5)
    assert not again.changed, "a step repeated after an interruption changes nothing"
    rolled_back = target.set_canary_weight("primary", 0)
    assert rolled_back.changed and lbs["primary"].weights() == {"stable": 100, "canary": 0}


def test_no_traffic_shifts_to_a_canary_with_no_healthy_target(previews, aws_env, tmp_path):
    calls: list = []
    target, lbs = canary_target(previews, tmp_path, calls)
    with pytest.raises(ActionFailed, match="no healthy target"):
        target.set_canary_weight("dr", 25)
    assert lbs["dr"].weights() == {"stable": 100, "canary": 0}
    assert "ModifyListener" not in [c[2] for c in calls]


def test_a_listener_forwarding_elsewhere_is_not_read_as_a_split(previews, aws_env, tmp_path):
    target, lbs = canary_target(previews, tmp_path, [])
    lb = lbs["primary"]
    vpc = lb.client.describe_target_groups(TargetGroupArns=[lb.groups["stable"]])["TargetGroups"][0]["VpcId"]
    stranger = lb.client.create_target_group(Name="stranger", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
        "TargetGroups"
    ][0]
    lb.client.modify_listener(
        ListenerArn=lb.listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": stranger["TargetGroupArn"]}]
    )
    with pytest.raises(ActionFailed, match="does not own"):
        target.canary_weights()


@pytest.mark.parametrize("percent", [-1, 101, 2.5, True])
def test_weights_are_whole_percents(previews, aws_env, tmp_path, percent):
    target, _ = canary_target(previews, tmp_path, [])
    with pytest.raises(BadInput, match="whole percent"):
        target.set_canary_weight("primary", percent)


def test_outputs_of_an_older_stack_say_what_to_do(previews, aws_env, tmp_path):
    outputs = json.loads(json.dumps(previews["us"].plan["outputs"]))
    del outputs["regions"]["dr"]["listener_arn"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(outputs))
    target = aws_target.from_stack("us", ROOT, outputs=path, client_factory=lambda s, r: None)
    with pytest.raises(BadInput, match=r"regions.dr.listener_arn .* run `pulumi up`"):
        target.set_canary_weight("dr", 1)
    assert target.explain("set_canary_weight", "primary", 25)[-1].startswith("elbv2.modify_listener(")


# --- each region's own name: a rollout judges the region failover routing keeps idle ----------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_region_has_its_own_name_on_its_certificate_pointing_at_its_alb(previews, stack):
    plan = previews[stack].plan
    urns = by_urn(plan)
    cfg, regions = regions_of(stack)
    zone = cfg.failover.api_zone
    regional = {region: f"{cfg.failover.api_record}-{region}.{zone}" for region in regions.values()}
    records = [r for r in of_type(plan, "aws:route53/record:Record") if r["inputs"]["name"] in regional.values()]
    assert len(records) == 2
    for record in records:
        region = next(r for r, name in regional.items() if name == record["inputs"]["name"])
        assert record["inputs"]["type"] == "CNAME" and "failoverRoutingPolicies" not in record["inputs"]
        (alb,) = of_type(plan, LB, region)
        assert {urns[u]["urn"] for u in record["propertyDependencies"]["records"]} == {alb["urn"]}
    api = f"{cfg.failover.api_record}.{zone}"
    certs = of_type(plan, "aws:acm/certificate:Certificate")
    assert len(certs) == 2
    for cert in certs:
        assert cert["inputs"]["domainName"] == api
        assert sorted(cert["inputs"]["subjectAlternativeNames"]) == sorted(regional.values()), "the same names in both regions"
    # one validation record per name (ACM gives the same record in every region), all waited on by both
    validation_records = [
        r for r in of_type(plan, "aws:route53/record:Record") if r["name"].split("-cert-validation")[0] != r["name"]
    ]
    assert sorted(r["inputs"]["name"].split(".", 1)[1].rstrip(".") for r in validation_records) == sorted(
        [api, *regional.values()]
    )
    for v in of_type(plan, "aws:acm/certificateValidation:CertificateValidation"):
        assert {urns[u]["urn"] for u in v["propertyDependencies"]["validationRecordFqdns"]} == {
            r["urn"] for r in validation_records
        }
    for role, region in regions.items():
        assert plan["outputs"]["regions"][role]["api_url"] == f"https://{regional[region]}"


def test_the_aws_target_loads_each_region_through_its_own_name(previews, aws_env, tmp_path):
    target, _ = canary_target(previews, tmp_path, [])
    cfg, regions = regions_of("us")
    for role, region in regions.items():
        assert target.region_endpoint(role) == f"https://{cfg.failover.api_record}-{region}.{cfg.failover.api_zone}"
    assert target.region_endpoint("dr") != target.endpoint(), "the idle region is reached directly, not through failover"
    outputs = json.loads(json.dumps(previews["us"].plan["outputs"]))
    del outputs["regions"]["dr"]["api_url"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(outputs))
    old = aws_target.from_stack("us", ROOT, outputs=path, client_factory=lambda s, r: None)
    with pytest.raises(ActionFailed, match="no api_url for dr"):
        old.region_endpoint("dr")
