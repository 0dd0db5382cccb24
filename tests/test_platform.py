"""The regional platform under the offline engine: clusters, replicated database, failover, workload."""

from __future__ import annotations

import json

import pytest
import yaml

from stackconfig import load_stack

from .helpers import ROOT, STACKS, of_type, run_meridian


def pair(stack):
    cfg = load_stack(ROOT, stack)
    return cfg, cfg.regions.primary.region, cfg.regions.dr.region


@pytest.mark.parametrize("stack", STACKS)
def test_both_regions_have_cluster_database_and_workload(previews, stack):
    plan = previews[stack].plan
    cfg, primary, dr = pair(stack)
    for region in (primary, dr):
        (eks,) = of_type(plan, "aws:eks/cluster:Cluster", region)
        assert len(of_type(plan, "aws:eks/nodeGroup:NodeGroup", region)) == 1
        assert len(of_type(plan, "aws:iam/openIdConnectProvider:OpenIdConnectProvider", region)) == 1
        (deployment,) = [
            d
            for d in of_type(plan, "kubernetes:apps/v1:Deployment", region)
            if d["inputs"]["metadata"]["labels"]["meridian.io/track"] == "stable"
        ]
        container = deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]
        (repo,) = of_type(plan, "aws:ecr/repository:Repository", region)
        assert repo["inputs"]["name"] == cfg.workload.repository and repo["inputs"]["imageTagMutability"] == "IMMUTABLE"
        assert (
            container["image"]
            == f"123456789012.dkr.ecr.{region}.amazonaws.com/{cfg.workload.repository}:{cfg.workload.image_tag}"
        ), "each region pulls from its own ECR repository"
        # the ALB (components.ingress) is the way in: the Services stay inside the cluster
        services = of_type(plan, "kubernetes:core/v1:Service", region)
        assert len(services) == 2 and {s["inputs"]["spec"]["type"] for s in services} == {"ClusterIP"}
    if cfg.database.engine == "aurora-postgresql":
        members = of_type(plan, "aws:rds/clusterInstance:ClusterInstance", primary)
        assert len(members) == 1 + cfg.database.readers, "writer plus the configured in-region readers"
        assert len(of_type(plan, "aws:rds/clusterInstance:ClusterInstance", dr)) >= 1
    else:
        assert len(of_type(plan, "aws:rds/instance:Instance", primary)) == 1 + cfg.database.readers
        assert len(of_type(plan, "aws:rds/instance:Instance", dr)) == 1


@pytest.mark.parametrize("stack", STACKS)
def test_secondary_database_member_is_in_the_dr_region(previews, stack):
    plan = previews[stack].plan
    cfg, primary, dr = pair(stack)
    if cfg.database.engine == "aurora-postgresql":
        (global_cluster,) = of_type(plan, "aws:rds/globalCluster:GlobalCluster")
        clusters = of_type(plan, "aws:rds/cluster:Cluster")
        assert sorted(c["region"] for c in clusters) == sorted([primary, dr])
        for cluster in clusters:
            assert global_cluster["urn"] in cluster["dependencies"], f"{cluster['urn']} is not a member of the global cluster"
        (secondary,) = [c for c in clusters if c["region"] == dr]
        assert "masterPassword" not in secondary["inputs"], "a secondary takes its credentials from the primary"
    else:
        (writer,) = [i for i in of_type(plan, "aws:rds/instance:Instance", primary) if "replicateSourceDb" not in i["inputs"]]
        (replica,) = of_type(plan, "aws:rds/instance:Instance", dr)
        assert replica["inputs"]["replicateSourceDb"].startswith(f"arn:aws:rds:{primary}:"), (
            "cross-region replicas name their source by ARN"
        )
        assert writer["inputs"]["multiAz"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_every_primary_record_has_a_health_check_and_a_secondary(previews, stack):
    plan = previews[stack].plan
    cfg, primary, dr = pair(stack)
    checks = {r["urn"]: r for r in of_type(plan, "aws:route53/healthCheck:HealthCheck")}
    records = [r for r in of_type(plan, "aws:route53/record:Record") if r["inputs"].get("failoverRoutingPolicies")]
    by_role = {r["inputs"]["failoverRoutingPolicies"][0]["type"]: r for r in records}
    assert set(by_role) == {"PRIMARY", "SECONDARY"}
    assert by_role["PRIMARY"]["inputs"]["name"] == by_role["SECONDARY"]["inputs"]["name"] == f"api.{cfg.failover.api_zone}"
    for record in by_role.values():
        deps = record["dependencies"]
        (check_urn,) = [d for d in deps if d in checks]
        check = checks[check_urn]
        assert record["inputs"]["healthCheckId"] and record["inputs"]["ttl"] == cfg.failover.dns_ttl_s
        assert check["inputs"]["requestInterval"] == cfg.failover.health_check_interval_s
        assert check["inputs"]["failureThreshold"] == cfg.failover.failure_threshold
        assert check["inputs"]["type"] == "HTTPS" and check["inputs"]["resourcePath"] == "/healthz"
        assert check["inputs"]["fqdn"] == record["inputs"]["records"][0], "the check watches the endpoint the record serves"
    assert by_role["PRIMARY"]["inputs"]["records"][0].endswith(f".{primary}.elb.amazonaws.com")
    assert by_role["SECONDARY"]["inputs"]["records"][0].endswith(f".{dr}.elb.amazonaws.com")
    alarms = [a for a in of_type(plan, "aws:cloudwatch/metricAlarm:MetricAlarm") if a["inputs"]["namespace"] == "AWS/Route53"]
    assert sorted(a["inputs"]["dimensions"]["HealthCheckId"] for a in alarms) == sorted(
        r["inputs"]["healthCheckId"] for r in records
    )
    assert previews[stack].plan["outputs"]["failover_detection_bound_s"] == cfg.failover.detection_bound_s


@pytest.mark.parametrize("stack", STACKS)
def test_database_security_groups_admit_only_node_security_groups(previews, stack):
    plan = previews[stack].plan
    _, primary, dr = pair(stack)
    for region in (primary, dr):
        (eks,) = of_type(plan, "aws:eks/cluster:Cluster", region)
        (db_sg,) = [
            sg
            for sg in of_type(plan, "aws:ec2/securityGroup:SecurityGroup", region)
            if "meridian:database:" in sg["urn"] and not sg["name"].endswith("-rotation-sg")
        ]
        rotation = [
            sg["urn"]
            for sg in of_type(plan, "aws:ec2/securityGroup:SecurityGroup", region)
            if sg["name"].endswith("-rotation-sg")
        ]
        # the password rotation function's group, in the primary region only, is the one other source
        assert len(rotation) == (1 if region == primary else 0)
        assert set(db_sg["propertyDependencies"]["ingress"]) - {*rotation} <= set(db_sg["dependencies"])
        assert eks["urn"] in db_sg["dependencies"], "the database SG references the cluster's node SG"
        assert db_sg["inputs"]["ingress"], "no ingress at all would make the database unusable"
        for rule in db_sg["inputs"]["ingress"]:
            assert (rule["fromPort"], rule["toPort"], rule["protocol"]) == (5432, 5432, "tcp")
            assert rule.get("cidrBlocks") in (None, []) and rule.get("ipv6CidrBlocks") in (None, [])
            assert len(rule["securityGroups"]) == 1 and rule["securityGroups"][0].startswith("sg-")
        assert db_sg["inputs"].get("egress") == []


@pytest.mark.parametrize("stack", STACKS)
def test_encryption_is_on_everywhere_it_applies(previews, stack):
    plan = previews[stack].plan
    for r in plan["resources"]:
        i, t = r["inputs"], r["type"]
        if t in ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance"):
            assert i["storageEncrypted"] is True and i["kmsKeyId"].startswith("arn:aws:kms:" + r["region"]), r["urn"]
            assert i["deletionProtection"] is True, r["urn"]
        if t in ("aws:rds/clusterInstance:ClusterInstance", "aws:rds/instance:Instance"):
            assert i["performanceInsightsEnabled"] and i["performanceInsightsKmsKeyId"].startswith("arn:aws:kms:"), r["urn"]
            assert i["monitoringInterval"] > 0 and i["monitoringRoleArn"], r["urn"]
            assert i["publiclyAccessible"] is False, r["urn"]
        if t == "aws:rds/globalCluster:GlobalCluster":
            assert i["storageEncrypted"] is True and i["deletionProtection"] is True
        if t in ("aws:rds/clusterParameterGroup:ClusterParameterGroup", "aws:rds/parameterGroup:ParameterGroup"):
            assert {"name": "rds.force_ssl", "value": "1"} in i["parameters"], r["urn"]
        if t == "aws:eks/cluster:Cluster":
            assert i["encryptionConfig"]["resources"] == ["secrets"] and i["encryptionConfig"]["provider"]["keyArn"]
            assert i["vpcConfig"]["endpointPrivateAccess"] is True and "0.0.0.0/0" not in (
                i["vpcConfig"].get("publicAccessCidrs") or []
            )
            assert set(i["enabledClusterLogTypes"]) >= {"api", "audit", "authenticator"}
        if t == "aws:cloudwatch/logGroup:LogGroup":
            assert i["kmsKeyId"].startswith("arn:aws:kms:"), r["urn"]
        if t == "aws:sns/topic:Topic":
            assert i["kmsMasterKeyId"], r["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_master_password_stays_secret(previews, stack):
    preview = previews[stack]
    plan = preview.plan
    assert "db_master_password" not in plan["outputs"], (
        "the master password is no stack output (operators read it from state if ever)"
    )
    assert plan["outputs"]["tenant_api_keys"] == "[secret]"
    writers = [r for r in plan["resources"] if "masterPassword" in r["inputs"] or "password" in r["inputs"]]
    assert writers and all((r["inputs"].get("masterPassword") or r["inputs"].get("password")) == "[secret]" for r in writers)
    for secret in of_type(plan, "kubernetes:core/v1:Secret"):
        data = secret["inputs"]["stringData"]
        assert data == "[secret]" or data["password"] == "[secret]", secret["urn"]
    text = json.dumps(plan) + preview.cli.out + preview.cli.err
    assert "Mock-" not in text, "the mock's generated password leaked into the plan or the terminal"


def test_engine_switch_switches_topology(previews, project_copy):
    us = previews["us"].plan
    assert of_type(us, "aws:rds/globalCluster:GlobalCluster") and not of_type(us, "aws:rds/instance:Instance")
    path = project_copy / "Pulumi.us.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:database"] = {"engine": "postgres", "readers": 2}
    path.write_text(yaml.safe_dump(doc))
    out = project_copy / "plan.json"
    cli = run_meridian("preview", "--stack", "us", "--project-dir", str(project_copy), "--json", str(out), "--no-policy")
    assert cli.code == 0, cli.err
    plan = json.loads(out.read_text())
    assert not of_type(plan, "aws:rds/globalCluster:GlobalCluster") and not of_type(plan, "aws:rds/cluster:Cluster")
    assert len(of_type(plan, "aws:rds/instance:Instance", "us-east-1")) == 3
    assert len(of_type(plan, "aws:rds/instance:Instance", "us-west-2")) == 1


@pytest.mark.parametrize("stack", STACKS)
def test_tenants_never_wait_for_the_rollout_and_publish_no_quota_copy(previews, stack):
    """A Deployment that never becomes Ready must not block every tenant: tenants never depend on
    the Workload or its pods. Quotas have one source (the stack config, rendered into the service's
    settings): no tenant publishes a second copy the service would never read (the old rate-limit
    ConfigMaps)."""
    plan = previews[stack].plan
    rollout = {
        r["urn"]
        for r in plan["resources"]
        if r["type"]
        in (
            "meridian:workload:Workload",
            "kubernetes:apps/v1:Deployment",
            "kubernetes:batch/v1:Job",
            "kubernetes:core/v1:Service",
            "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",
        )
    }
    tenant_parts = [r for r in plan["resources"] if "meridian:tenant:Tenant" in r["urn"]]
    assert tenant_parts
    for r in tenant_parts:
        assert not rollout & set(r["dependencies"]), f"{r['urn']} waits for the workload's rollout"
    assert not [r["urn"] for r in plan["resources"] if r["type"] == "kubernetes:core/v1:ConfigMap"]


def _raw(stack: str, **changes):
    from stackconfig import read_stack_files

    raw, _ = read_stack_files(ROOT, stack)
    values = json.loads(json.dumps(raw.values))
    for path, value in changes.items():
        section, key = path.split("__")
        values.setdefault(section, {})
        if value is None:
            values[section].pop(key, None)
        else:
            values[section][key] = value
    return type(raw)(values, raw.sources, raw.default_source)


@pytest.mark.parametrize(
    "changes, key, words",
    [
        ({"failover__hosted_zone_id": None}, "meridian:failover.hosted_zone_id", "delegated"),
        ({"failover__create_zone": True}, "meridian:failover.hosted_zone_id", "not both"),
        ({"cluster__public_access_cidrs": []}, "meridian:cluster.public_access_cidrs", "runner"),
        ({"cluster__api_access": "private-runner"}, "meridian:cluster.runner_cidrs", "runner"),
        ({"cluster__deploy_role_arn": None}, "meridian:cluster.deploy_role_arn", "access entry"),
    ],
)
def test_deploy_blockers_are_config_errors_naming_the_key(changes, key, words):
    from stackconfig import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(_raw("us", **changes))
    assert any(p.key == key and words in p.message for p in err.value.problems), str(err.value)


@pytest.mark.parametrize("stack", STACKS)
def test_clusters_are_reachable_by_the_runner_and_administered_by_access_entries(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    by_urn = {r["urn"]: r for r in plan["resources"]}
    for eks in of_type(plan, "aws:eks/cluster:Cluster"):
        vpc = eks["inputs"]["vpcConfig"]
        assert eks["inputs"]["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
        assert vpc["endpointPublicAccess"] is True and vpc["publicAccessCidrs"] == [
            str(c) for c in cfg.cluster.public_access_cidrs
        ]
        grants = [a for a in of_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", eks["region"])]
        principals = {
            a["inputs"]["principalArn"] for a in grants if a["inputs"]["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        }
        assert principals == {cfg.cluster.deploy_role_arn, *cfg.cluster.operator_role_arns}
        provider = next(
            r for r in plan["resources"] if r["type"] == "pulumi:providers:kubernetes" and r["parent"] == eks["parent"]
        )
        deploy_grant = next(a for a in grants if a["inputs"]["principalArn"] == cfg.cluster.deploy_role_arn)
        assert deploy_grant["urn"] in provider["dependencies"], "the kubernetes provider must wait for the deploy role's access"
        assert by_urn[deploy_grant["parent"]]["type"] == "aws:eks/accessEntry:AccessEntry"


@pytest.mark.parametrize("stack", STACKS)
def test_one_validation_record_per_name_serves_both_regions_certificates(previews, stack):
    plan = previews[stack].plan
    # the API name and each region's own name: three records, each managed once for both regions
    records = [r for r in of_type(plan, "aws:route53/record:Record") if "-cert-validation" in r["name"]]
    assert len(records) == 3 and len({r["inputs"]["name"] for r in records}) == 3
    for record in records:
        assert "allowOverwrite" not in record["inputs"], "one owner: nothing else writes this record"
        assert record["inputs"]["zoneId"] == load_stack(ROOT, stack).failover.hosted_zone_id
    validations = of_type(plan, "aws:acm/certificateValidation:CertificateValidation")
    assert len(validations) == 2 and all(r["urn"] in v["dependencies"] for v in validations for r in records)
    assert not of_type(plan, "aws:route53/zone:Zone"), "deploys use the existing delegated zone"


@pytest.mark.slow
def test_project_dir_previews_that_projects_own_components(project_copy, tmp_path):
    """`--project-dir DIR` runs DIR's components, not this checkout's (an edited copy must show its edit)."""
    registry = project_copy / "components" / "registry.py"
    registry.write_text(registry.read_text().replace('image_tag_mutability="IMMUTABLE"', 'image_tag_mutability="MUTABLE"'))
    out = tmp_path / "plan.json"
    cli = run_meridian("preview", "--stack", "us", "--no-policy", "--project-dir", str(project_copy), "--json", str(out))
    assert cli.code == 0, cli.err
    repos = of_type(json.loads(out.read_text()), "aws:ecr/repository:Repository")
    assert repos and {r["inputs"]["imageTagMutability"] for r in repos} == {"MUTABLE"}


@pytest.mark.parametrize("stack", STACKS)
def test_dr_region_writes_through_its_own_region(previews, stack):
    """No pod reaches across regions (no peering): with Aurora the dr secondary forwards writes."""
    plan = previews[stack].plan
    cfg, primary, dr = pair(stack)
    if cfg.database.engine != "aurora-postgresql":
        pytest.skip("RDS replicas cannot forward writes: the dr region writes only after promotion (drill tooling)")
    (secondary,) = [c for c in of_type(plan, "aws:rds/cluster:Cluster", dr)]
    assert secondary["inputs"]["enableGlobalWriteForwarding"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_clusters_manage_the_add_ons_that_enforce_network_policy_and_hand_out_identity(previews, stack):
    plan = previews[stack].plan
    for eks in of_type(plan, "aws:eks/cluster:Cluster"):
        addons = {a["inputs"]["addonName"]: a for a in of_type(plan, "aws:eks/addon:Addon", eks["region"])}
        assert {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"} <= set(addons)
        assert json.loads(addons["vpc-cni"]["inputs"]["configurationValues"]) == {"enableNetworkPolicy": "true"}, (
            "without the network policy agent the tenants' NetworkPolicies are not enforced"
        )
        (ebs,) = addons["aws-ebs-csi-driver"]["inputs"]["podIdentityAssociations"]
        assert ebs["serviceAccount"] == "ebs-csi-controller-sa" and ebs["roleArn"].startswith("arn:aws:iam::")
