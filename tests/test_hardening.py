"""Issue 11 items 8-10 in the plan of the real stacks: what `pulumi up` would create, read from the
offline preview (the same registrations the engine sends), each test naming the resource it judges."""

from __future__ import annotations

import json

import pytest

from components.failover import METRICS_REGION
from components.naming import tenant_namespace
from components.network import INTERFACE_ENDPOINTS
from components.tagging import TAG_COST_CENTER, TAG_REGION, TAG_STACK, TAG_ZONE
from stackconfig import ConfigError, load_stack, parse_config

from .helpers import ROOT, STACKS, by_urn, of_type, small_raw_config

PROVIDER = "pulumi:providers:aws"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def decoded(value):
    """Provider inputs arrive JSON-encoded, as the engine passes provider config."""
    return json.loads(value) if isinstance(value, str) else value


# --- item 10: providers pinned to the account, stack tags as provider default tags ---------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_aws_provider_is_pinned_to_the_account_and_carries_the_stack_tags(previews, stack):
    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    providers = of_type(plan, PROVIDER)
    assert providers
    for p in providers:
        inputs = p["inputs"]
        assert decoded(inputs["allowedAccountIds"]) == [cfg.aws_account_id], p["urn"]
        assert decoded(inputs["defaultTags"])["tags"] == {
            TAG_STACK: stack,
            TAG_ZONE: cfg.zone,
            TAG_REGION: inputs["region"],
            TAG_COST_CENTER: cfg.cost.cost_center,
        }, p["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_resources_keep_only_their_own_tags_and_no_stack_transformation_runs(previews, stack):
    """The stack tags come from the provider: a resource's own `tags` hold only what is its own
    (a real preview shows the default tags in no resource's inputs)."""
    plan = previews[stack].plan
    own = [r for r in plan["resources"] if r["type"].startswith("aws:") and isinstance(r["inputs"].get("tags"), dict)]
    assert own
    for r in own:
        assert TAG_STACK not in r["inputs"]["tags"], f"{r['urn']} carries stack tags itself"
    tenant_keys = [r for r in of_type(plan, "aws:kms/key:Key") if "meridian:tenant" in (r["inputs"].get("tags") or {})]
    assert tenant_keys, "resource-specific tags (meridian:tenant) stay on the resource"


# --- item 10: VPC endpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_each_vpc_reaches_sts_and_ecr_through_interface_endpoints_and_s3_through_a_gateway(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    urns = by_urn(plan)
    for _, spec in cfg.regions.both:
        endpoints = [r for r in of_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint") if r["region"] == spec.region]
        services = {r["inputs"]["serviceName"]: r for r in endpoints}
        assert services[f"com.amazonaws.{spec.region}.s3"]["inputs"]["vpcEndpointType"] == "Gateway"
        for service in INTERFACE_ENDPOINTS:
            ep = services[f"com.amazonaws.{spec.region}.{service}"]
            assert ep["inputs"]["vpcEndpointType"] == "Interface" and ep["inputs"]["privateDnsEnabled"], ep["urn"]
            assert len(ep["inputs"]["subnetIds"]) == cfg.network.az_count, ep["urn"]
            (sg_urn,) = ep["propertyDependencies"]["securityGroupIds"]
            (rule,) = urns[sg_urn]["inputs"]["ingress"]
            assert (rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == (443, 443, [str(spec.cidr)]), sg_urn


# --- item 10: identifiers that survive the resource, replicas that can grow ---------------------


@pytest.mark.parametrize("stack", STACKS)
def test_final_snapshot_and_global_cluster_ids_carry_a_stable_random_suffix(previews, stack):
    plan = previews[stack].plan
    urns = by_urn(plan)
    named = [
        (r, prop)
        for r in plan["resources"]
        for prop in ("finalSnapshotIdentifier", "globalClusterIdentifier")
        if r["type"] in ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance", "aws:rds/globalCluster:GlobalCluster")
        and prop in r["inputs"]
        and (prop != "globalClusterIdentifier" or r["type"] == "aws:rds/globalCluster:GlobalCluster")
    ]
    assert named
    for r, prop in named:
        sources = {urns[u]["type"] for u in r["propertyDependencies"].get(prop, [])}
        assert "random:index/randomId:RandomId" in sources, (
            f"{r['urn']}.{prop} is fixed: it collides when the stack is re-created"
        )
        suffix = r["inputs"][prop].rsplit("-", 1)[1]
        assert len(suffix) == 6 and int(suffix, 16) >= 0, r["urn"]


def test_every_rds_replica_can_grow_its_storage(previews):
    plan = previews["apac"].plan
    replicas = [r for r in of_type(plan, "aws:rds/instance:Instance") if r["inputs"].get("replicateSourceDb")]
    assert replicas
    for r in replicas:
        assert r["inputs"].get("maxAllocatedStorage", 0) > 0, r["urn"]


# --- item 10: the service is not the master user; the master password is no output --------------


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_migration_secret_is_built_from_the_master_password(previews, stack):
    plan = previews[stack].plan
    passwords = of_type(plan, "random:index/randomPassword:RandomPassword")
    (master,) = [r["urn"] for r in passwords if r["name"].endswith("-master-password")]
    (app,) = [r["urn"] for r in passwords if r["name"].endswith("-app-credential-initial-password")]
    secrets = of_type(plan, "kubernetes:core/v1:Secret")
    service = [s for s in secrets if s["name"].endswith("-api-settings")]
    migration = [s for s in secrets if s["name"].endswith("-migrate-settings")]
    assert len(service) == 2 and len(migration) == 1
    for s in [*service, *migration]:
        # the application user's password reaches no pod through Kubernetes: it is read from Secrets Manager
        assert app not in s["dependencies"], f"{s['urn']}: a pod's settings are built from the application user's password"
    for s in service:
        assert master not in s["dependencies"], f"{s['urn']}: the service gets the master password"
    assert master in migration[0]["dependencies"]
    assert "password" not in json.dumps(sorted(plan["outputs"])), "a password is a stack output"


# --- item 10: the application user's password in Secrets Manager, rotated -----------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_app_password_lives_in_a_rotated_secret_each_region_reads_its_own_copy_of(previews, stack):
    from components.dbcredential import ROTATION_APPLICATION, replica_arn

    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    urns = by_urn(plan)
    primary, dr = cfg.regions.primary.region, cfg.regions.dr.region
    (secret,) = of_type(plan, "aws:secretsmanager/secret:Secret")
    assert secret["region"] == primary
    (replica,) = secret["inputs"]["replicas"]
    assert replica["region"] == dr, "the copy stays in the stack's zone, in the dr region"
    (key,) = [urns[u] for u in secret["propertyDependencies"]["kmsKeyId"]]
    assert key["type"] == "aws:kms/key:Key" and key["region"] == primary and key["name"].endswith(f"-db-{primary}-key")
    (version,) = of_type(plan, "aws:secretsmanager/secretVersion:SecretVersion")
    assert version["inputs"]["secretString"] == "[secret]", "the first password is secret in the plan and the state"
    primary_arn = version["inputs"]["secretId"]
    assert f":secretsmanager:{primary}:" in primary_arn
    (rotation,) = of_type(plan, "aws:secretsmanager/secretRotation:SecretRotation")
    assert rotation["inputs"]["rotationRules"]["automaticallyAfterDays"] == 30
    (rotator,) = of_type(plan, "aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
    assert rotator["inputs"]["applicationId"] == ROTATION_APPLICATION and rotator["region"] == primary
    assert [urns[u]["urn"] for u in rotation["propertyDependencies"]["rotationLambdaArn"]] == [rotator["urn"]]
    # the rotation function: in the data subnets, with a group that reaches only the VPC on 5432 and 443
    (sg,) = [
        urns[u] for u in rotator["propertyDependencies"]["parameters"] if urns[u]["type"] == "aws:ec2/securityGroup:SecurityGroup"
    ]
    assert sg["inputs"]["ingress"] == []
    assert sorted((e["fromPort"], tuple(e["cidrBlocks"])) for e in sg["inputs"]["egress"]) == [
        (443, (str(cfg.regions.primary.cidr),)),
        (5432, (str(cfg.regions.primary.cidr),)),
    ]
    (db_sg,) = [r for r in of_type(plan, "aws:ec2/securityGroup:SecurityGroup") if r["name"].endswith(f"-db-{primary}-sg")]
    assert sg["urn"] in db_sg["propertyDependencies"]["ingress"], "the database admits the rotation function"
    # each region's pods read their own copy (the settings' content is checked by running them:
    # tests/test_workload_fidelity.py); they are built from the secret, not from any password
    arns = {primary: primary_arn, dr: replica_arn(primary_arn, primary, dr)}
    for s in of_type(plan, "kubernetes:core/v1:Secret"):
        if s["name"].endswith(("-api-settings", "-canary-settings", "-migrate-settings")):
            assert secret["urn"] in s["dependencies"], f"{s['urn']}: not built from the database user's secret"
    # the broker (the pods' identity) reads exactly its region's copy, decrypting through Secrets Manager only
    grants = [p for p in of_type(plan, "aws:iam/rolePolicy:RolePolicy") if p["name"].endswith("-broker-db-credential")]
    assert {p["region"] for p in grants} == {primary, dr}
    for p in grants:
        doc = json.loads(p["inputs"]["policy"])
        read, decrypt = doc["Statement"]
        assert (read["Action"], read["Resource"]) == ("secretsmanager:GetSecretValue", arns[p["region"]])
        assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{p['region']}.amazonaws.com"}}


def test_the_rotation_application_is_named_in_the_partition_and_the_replica_arn_is_checked():
    from components.dbcredential import replica_arn

    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
    assert replica_arn(arn, "eu-west-1", "eu-central-1") == "arn:aws:secretsmanager:eu-central-1:123456789012:secret:db-AbCdEf"
    with pytest.raises(ValueError, match="not a Secrets Manager ARN in eu-central-1"):
        replica_arn(arn, "eu-central-1", "eu-west-1")


# --- item 9: alerts go somewhere ------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_alert_topic_delivers_to_every_configured_subscriber(previews, stack):
    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    urns = by_urn(plan)
    topics = {r["urn"]: r for r in of_type(plan, "aws:sns/topic:Topic")}
    alarmed = {
        a
        for r in of_type(plan, "aws:cloudwatch/metricAlarm:MetricAlarm")
        for a in r["propertyDependencies"].get("alarmActions", [])
    }
    budgeted = {
        t
        for r in of_type(plan, "aws:budgets/budget:Budget")
        for t in r["propertyDependencies"].get("notifications", [])
        if t in topics
    }
    assert alarmed and budgeted
    wanted = {(s.protocol, s.endpoint) for s in cfg.alerts.subscriptions}
    assert wanted
    for topic in alarmed | budgeted:
        subs = [r for r in of_type(plan, SUBSCRIPTION) if topic in r["propertyDependencies"].get("topic", [])]
        delivered = {(r["inputs"]["protocol"], r["inputs"]["endpoint"]) for r in subs}
        assert wanted <= delivered, topic
        # beyond the subscribers, only the budget topic runs the stack's cap enforcer
        extra = [r for r in subs if (r["inputs"]["protocol"], r["inputs"]["endpoint"]) not in wanted]
        assert all(r["inputs"]["protocol"] == "lambda" and topic in budgeted for r in extra), topic
        assert all(
            urns[d]["type"] == "aws:lambda/function:Function" for r in extra for d in r["propertyDependencies"]["endpoint"]
        )
        for r in subs:
            assert r["region"] == urns[topic]["region"], f"{r['urn']}: a subscription lives in its topic's region"
    failover_topics = {t for t in alarmed if "failover" in t}
    assert {urns[t]["region"] for t in failover_topics} == {METRICS_REGION}


def test_alert_subscriptions_are_validated_with_file_and_key():
    ok = parse_config(
        small_raw_config(
            aws_account_id="123456789012",
            alerts={
                "subscriptions": [
                    {"protocol": "email", "endpoint": "oncall@example.com"},
                    {"protocol": "https", "endpoint": "https://events.example.com/hook"},
                    {"protocol": "sqs", "endpoint": "arn:aws:sqs:eu-west-1:123456789012:alerts"},
                    {"protocol": "lambda", "endpoint": "arn:aws:lambda:eu-central-1:123456789012:function:page"},
                ]
            },
        )
    )
    assert [s.region for s in ok.alerts.subscriptions] == [None, None, "eu-west-1", "eu-central-1"]
    with pytest.raises(ConfigError) as err:
        parse_config(
            small_raw_config(
                alerts={"subscriptions": [{"protocol": "sqs", "endpoint": "arn:aws:sqs:us-east-1:123456789012:alerts"}]}
            )
        )
    assert "meridian:alerts.subscriptions[0].endpoint: sqs endpoint in us-east-1 is outside residency zone 'eu'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config(
            small_raw_config(
                alerts={
                    "subscriptions": [
                        {"protocol": "http", "endpoint": "http://hooks.example.com"},
                        {"protocol": "email", "endpoint": "not-an-address"},
                        {"protocol": "lambda", "endpoint": "arn:aws:sqs:eu-west-1:123456789012:q"},
                    ]
                }
            )
        )
    text = str(err.value)
    assert "Pulumi.eu.yaml: meridian:alerts.subscriptions[0].protocol" in text
    assert "meridian:alerts.subscriptions[1]: email endpoint must be an address" in text
    assert "meridian:alerts.subscriptions[2]: lambda endpoint must be the ARN of a Lambda function" in text


def test_production_needs_an_account_and_somewhere_for_alerts_and_roles_in_that_account():
    with pytest.raises(ConfigError) as err:
        parse_config(small_raw_config(production=True))
    text = str(err.value)
    assert "meridian:aws_account_id: required for a production stack" in text
    assert "meridian:alerts.subscriptions: a production stack needs at least one" in text
    with pytest.raises(ConfigError) as err:
        parse_config(small_raw_config(aws_account_id="210987654321"))
    assert "meridian:cluster.deploy_role_arn: arn:aws:iam::123456789012:role/deploy is in account 123456789012" in str(err.value)


@pytest.mark.slow
def test_the_program_keeps_an_account_id_with_a_leading_zero(tmp_path):
    """The engine passes every value as text: an account id must not be JSON-decoded into a number."""
    import subprocess
    import sys

    script = (
        "import pulumi\n"
        "from stackconfig import engine_config, from_engine\n"
        "from pathlib import Path\n"
        "import sys\n"
        "cfg = engine_config(Path(sys.argv[1]), 'eu')\n"
        "cfg['meridian:aws_account_id'] = '012345678901'\n"
        "cfg['meridian:cluster'] = cfg['meridian:cluster'].replace('123456789012', '012345678901')\n"
        "pulumi.runtime.set_all_config(cfg)\n"
        "print(from_engine('eu').aws_account_id)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(ROOT)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "012345678901"


# --- item 8: cost caps that can trigger ----------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_the_hard_cap_reaches_the_roles_the_tenants_workloads_assume(previews, stack):
    plan = previews[stack].plan
    urns = by_urn(plan)
    identity_roles = {r["urn"] for r in of_type(plan, "aws:iam/role:Role") if r["inputs"].get("path") == "/meridian/tenants/"}
    tenant_namespaces = {tenant_namespace(t.id) for t in load_stack(ROOT, stack).tenants}
    assumed = {  # by the tenants' own service accounts (the broker and the LB controller are the platform's)
        u
        for a in of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a["inputs"]["namespace"] in tenant_namespaces
        for u in a["propertyDependencies"]["roleArn"]
    }
    assert identity_roles and assumed == identity_roles, "tenant service accounts assume the tenant identity roles"
    # the cap: a deny in the data-access policy of each of these roles, on keys the enforcer tags
    capped = {
        p["propertyDependencies"]["role"][0]
        for p in of_type(plan, "aws:iam/rolePolicy:RolePolicy")
        if any(st.get("Sid") == "TenantOverBudget" for st in json.loads(p["inputs"]["policy"])["Statement"])
    }
    assert capped == identity_roles, "every role the tenants' workloads assume carries the cap"
    (enforcer,) = of_type(plan, "aws:lambda/function:Function")
    assert set(enforcer["inputs"]["environment"]["variables"]["REGIONS"].split(",")) == {
        urns[u]["region"] for u in identity_roles
    }
    (access,) = [p for p in of_type(plan, "aws:iam/rolePolicy:RolePolicy") if p["name"].endswith("-enforcer-access")]
    (tagging,) = [st for st in json.loads(access["inputs"]["policy"])["Statement"] if st.get("Sid") == "TagTenantKeysOverBudget"]
    assert tagging["Condition"]["StringEquals"] == {"aws:ResourceTag/meridian:stack": stack}
    assert tagging["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["meridian:over-budget"]}, (
        "the enforcer sets no tag but the cap's, and only on this stack's tenant keys"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_node_instances_volumes_and_interfaces_carry_the_cost_tags(previews, stack):
    plan, cfg = previews[stack].plan, load_stack(ROOT, stack)
    urns = by_urn(plan)
    for group in of_type(plan, "aws:eks/nodeGroup:NodeGroup"):
        (lt_urn,) = group["propertyDependencies"]["launchTemplate"]
        lt = urns[lt_urn]
        assert lt["inputs"]["metadataOptions"]["httpTokens"] == "required", lt_urn
        specs = {s["resourceType"]: s["tags"] for s in lt["inputs"]["tagSpecifications"]}
        assert set(specs) == {"instance", "volume", "network-interface"}, lt_urn
        for tags in specs.values():
            assert tags[TAG_STACK] == stack and tags[TAG_COST_CENTER] == cfg.cost.cost_center, lt_urn
            assert tags[TAG_REGION] == group["region"], lt_urn
    for d in of_type(plan, "kubernetes:apps/v1:Deployment"):
        labels = d["inputs"]["spec"]["template"]["metadata"]["labels"]
        assert labels["meridian.io/cost-center"] == cfg.cost.cost_center, d["urn"]


def test_interface_endpoints_are_priced_per_az_and_new_types_are_not_unpriced():
    from meridian.costmodel import estimate, load_prices

    prices = load_prices()
    cfg = load_stack(ROOT, "eu")
    endpoint = {
        "urn": "ep",
        "type": "aws:ec2/vpcEndpoint:VpcEndpoint",
        "region": "eu-west-1",
        "custom": True,
        "inputs": {"vpcEndpointType": "Interface", "subnetIds": ["a", "b", "c"]},
    }
    free = [
        {"urn": t, "type": t, "region": "eu-west-1", "custom": True, "inputs": {}}
        for t in ("aws:costexplorer/costAllocationTag:CostAllocationTag", "aws:lambda/permission:Permission", SUBSCRIPTION)
    ]
    report = estimate([endpoint, *free], cfg, "eu")
    (line,) = [line for line in report.lines if line.urn == "ep"]
    expected = prices["hourly"]["interface_endpoint_az"] * prices["hours_per_month"] * prices["regional_factor"]["eu-west-1"] * 3
    assert line.monthly_usd == pytest.approx(expected) and line.tenant is None
    assert report.unpriced_types == []
