"""Misses of security review 15 (/work/wt/review-security-15.md) in the cluster half of the pack,
replayed on the us stack's real plan through the analyzer: admission backstops present but scoped to
nothing (E22/E23), a tenant namespace without its label (E29), EKS access outside the entries
(E09/E10), roles held through add-ons (O01/O11), exempt-namespace workloads (T15), Pod Security
"restricted" fields (E16-E19, E21), a tenant role able to grant its key (T14), and references the
pack cannot resolve (E12, L04). Each attack must draw the named rule's mandatory violation; each
legitimate twin draws nothing."""

from __future__ import annotations

import copy
import json

import pytest

from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

PRIMARY = "us-us-east-1"
VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
PSS = "k8s-workload-pod-security-restricted"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def _vap_spec(resources, policy: str) -> dict:
    return one(resources, f"{PRIMARY}-admission-{policy}", VAP)["inputs"]["spec"]


def match_condition(expression: str):
    def mutate(resources):
        _vap_spec(resources, "meridian-tenant-workloads")["matchConditions"] = [{"name": "c", "expression": expression}]

    return mutate


def workload_operations(*operations: str):
    def mutate(resources):
        for rule in _vap_spec(resources, "meridian-tenant-workloads")["matchConstraints"]["resourceRules"]:
            rule["operations"] = list(operations)

    return mutate


def workload_resources_narrowed(resources):
    rules = _vap_spec(resources, "meridian-tenant-workloads")["matchConstraints"]["resourceRules"]
    next(r for r in rules if r["apiGroups"] == ["apps"])["resources"] = ["deployments"]


def daemonsets_excluded(resources):
    _vap_spec(resources, "meridian-tenant-workloads")["matchConstraints"]["excludeResourceRules"] = [
        {"apiGroups": ["apps"], "apiVersions": ["*"], "resources": ["daemonsets"], "operations": ["*"]}
    ]


def role_bindings_create_only(resources):
    _vap_spec(resources, "meridian-tenant-role-bindings")["matchConstraints"]["resourceRules"][0]["operations"] = ["CREATE"]


def binding_actions(*actions: str):
    def mutate(resources):
        binding = one(resources, f"{PRIMARY}-admission-meridian-tenant-cluster-bindings-binding")
        binding["inputs"]["spec"]["validationActions"] = list(actions)

    return mutate


def binding_rules_narrowed(resources):
    spec = one(resources, f"{PRIMARY}-admission-meridian-tenant-workloads-binding")["inputs"]["spec"]
    spec["matchResources"]["resourceRules"] = [
        {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE", "UPDATE"]}
    ]


def copied(resources, name: str, new_name: str, **inputs) -> dict:
    """A copy of resource `name` under `new_name`, its inputs updated (appended to the plan)."""
    r = copy.deepcopy(one(resources, name))
    r["name"], r["urn"] = new_name, r["urn"].rsplit("::", 1)[0] + "::" + new_name
    r["inputs"].update(inputs)
    resources.append(r)
    return r


def acme_unlabelled(resources):
    one(resources, f"{PRIMARY}-t-acme-ns")["inputs"]["metadata"]["labels"].pop("meridian.io/tenant")


def acme_renamed_unlabelled(resources):
    metadata = one(resources, f"{PRIMARY}-t-acme-ns")["inputs"]["metadata"]
    metadata["labels"].pop("meridian.io/tenant")
    metadata["name"] = "acme"
    one(resources, f"{PRIMARY}-t-acme-identity")["inputs"]["namespace"] = "acme"


def namespace(name: str):
    def mutate(resources):
        copied(resources, f"{PRIMARY}-t-acme-ns", f"{name}-ns", metadata={"name": name, "labels": {}})

    return mutate


def tenant_role_into_scratch(resources):
    namespace("scratch")(resources)
    association = copied(resources, f"{PRIMARY}-t-acme-identity", "scratch-identity", namespace="scratch")
    association["inputs"].pop("tags")


def access_config(**settings):
    def mutate(resources):
        one(resources, f"{PRIMARY}-eks-eks", "aws:eks/cluster:Cluster")["inputs"]["accessConfig"].update(settings)

    return mutate


def _role(resources, name: str) -> dict:
    return one(resources, f"{PRIMARY}-{name}", "aws:iam/role:Role")


def _role_arn(resources, name: str) -> str:
    """The ARN the plan passes for role `name` (where a resource is built from it)."""
    urn = _role(resources, name)["urn"]
    return next(r["inputs"]["roleArn"] for r in resources if urn in r.get("propertyDependencies", {}).get("roleArn", []))


def _addon_role_arn(resources, name: str) -> str:
    addon = one(resources, f"{PRIMARY}-eks-{name}", "aws:eks/addon:Addon")
    return addon["inputs"]["podIdentityAssociations"][0]["roleArn"]


def acme_key_grants(arn_of):
    def mutate(resources):
        key = one(resources, f"{PRIMARY}-t-acme-key", "aws:kms/key:Key")
        policy = json.loads(key["inputs"]["policy"])
        policy["Statement"].append(
            {
                "Sid": "AddOn",
                "Effect": "Allow",
                "Principal": {"AWS": arn_of(resources)},
                "Action": ["kms:CreateGrant", "kms:Decrypt"],
                "Resource": "*",
            }
        )
        key["inputs"]["policy"] = json.dumps(policy)

    return mutate


def addon_holding(arn_of, linked: str | None = None):
    """A new add-on whose pod identity association gives a role to its kube-system service account."""

    def mutate(resources):
        addon = copied(
            resources,
            f"{PRIMARY}-eks-vpc-cni",
            "cloudwatch",
            addonName="amazon-cloudwatch-observability",
            podIdentityAssociations=[{"roleArn": arn_of(resources), "serviceAccount": "cloudwatch-agent"}],
        )
        addon["inputs"].pop("configurationValues", None)
        if linked:
            addon["propertyDependencies"]["podIdentityAssociations"] = [_role(resources, linked)["urn"]]

    return mutate


def ebs_csi_node_holds_its_role(resources):
    """The EBS CSI add-on's role given to its node service account too (a second entry of the add-on)."""
    addon = one(resources, f"{PRIMARY}-eks-aws-ebs-csi-driver", "aws:eks/addon:Addon")["inputs"]
    entries = addon["podIdentityAssociations"]
    entries.append({**entries[0], "serviceAccount": "ebs-csi-node-sa"})


def broker_held_by(namespace: str, service_account: str):
    def mutate(resources):
        association = one(resources, f"{PRIMARY}-tenant-identity-broker-identity")["inputs"]
        association.update(namespace=namespace, serviceAccount=service_account)

    return mutate


def workload(name: str, namespace: str, change):
    """A copy of the platform API's Deployment (restricted as rendered) into `namespace`, its pod spec
    changed: a workload of its own, so not built from the platform's settings Secret (its links and
    that volume dropped; a tenant workload holding platform data is k8s-tenant-secret-own-data-only's)."""

    def mutate(resources):
        api = next(r for r in resources if r["type"] == "kubernetes:apps/v1:Deployment")
        deployment = copied(resources, api["name"], name)
        deployment["inputs"]["metadata"].update(namespace=namespace, name=name)
        deployment["propertyDependencies"], deployment["dependencies"] = {}, []
        pod = deployment["inputs"]["spec"]["template"]["spec"]
        pod["volumes"] = [v for v in pod.get("volumes", []) if "secret" not in v]
        for c in pod["containers"]:
            mounted = {v["name"] for v in pod["volumes"]}
            c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if m["name"] in mounted]
        change(deployment["inputs"]["spec"]["template"]["spec"])

    return mutate


def container_context(**fields):
    return lambda pod: pod["containers"][0].setdefault("securityContext", {}).update(fields)


def pod_context(**fields):
    return lambda pod: pod.setdefault("securityContext", {}).update(fields)


def volume(**source):
    return lambda pod: pod.setdefault("volumes", []).append({"name": f"v-{next(iter(source)).lower()}", **source})


def privileged_host_root(pod):
    container_context(privileged=True)(pod)
    volume(hostPath={"path": "/"})(pod)


def own_keys_with(actions: list[str], condition: dict | None = None):
    """The shared tenant role's OwnKeys statement (its namespace's keys) given more actions."""

    def mutate(resources):
        holder = one(resources, f"{PRIMARY}-tenant-identity-data-access", "aws:iam/rolePolicy:RolePolicy")
        policy = json.loads(holder["inputs"]["policy"])
        statement = next(s for s in policy["Statement"] if s.get("Sid") == "OwnKeys")
        statement["Action"] = [*statement["Action"], *actions]
        for operator, values in (condition or {}).items():
            statement["Condition"].setdefault(operator, {}).update(values)
        holder["inputs"]["policy"] = json.dumps(policy)

    return mutate


INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def ingress_rule(name: str, inputs: dict, group: str | None = None):
    """A VPC ingress rule on the security group whose id is `inputs['securityGroupId']`, linked to
    the stack's group `group` when given (as `security_group_id=sg.id` would)."""

    def mutate(resources):
        base = one(resources, f"{PRIMARY}-net-endpoints-sg")
        rule = copy.deepcopy(base)
        rule.update(
            type=INGRESS,
            name=name,
            urn=base["urn"].rsplit("::", 2)[0] + f"::{INGRESS}::{name}",
            inputs=inputs,
            dependencies=[],
            propertyDependencies={},
        )
        if group:
            rule["propertyDependencies"]["securityGroupId"] = [one(resources, group, "securityGroup:SecurityGroup")["urn"]]
        resources.append(rule)

    return mutate


DB_PORT_FROM_LIST = {
    "securityGroupId": "sg-75801cc7c6d048975",
    "ipProtocol": "tcp",
    "fromPort": 5432,
    "toPort": 5432,
    "prefixListId": "pl-3b927c52",
}
ALB_V6 = {"securityGroupId": "sg-f013d6d901b69493b", "ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv6": "::/0"}


ATTACKS = [
    ("E22 the workloads VAP skipped by `matchConditions: false`", match_condition("false"), "runtime-backstops-enforced"),
    (
        "E22 the workloads VAP skipped for system users",
        match_condition("!request.userInfo.username.startsWith('system:')"),
        "runtime-backstops-enforced",
    ),
    ("E23 the workloads VAP matching DELETE only", workload_operations("DELETE"), "runtime-backstops-enforced"),
    ("E23 the workloads VAP on CREATE only", workload_operations("CREATE"), "runtime-backstops-enforced"),
    ("E23 the workloads VAP on Deployments only of apps", workload_resources_narrowed, "runtime-backstops-enforced"),
    ("E23 DaemonSets excluded from the workloads VAP", daemonsets_excluded, "runtime-backstops-enforced"),
    ("E23 the role-bindings VAP on CREATE only", role_bindings_create_only, "runtime-backstops-enforced"),
    ("the cluster-bindings binding on Warn", binding_actions("Warn"), "runtime-backstops-enforced"),
    ("the workloads binding narrowed to Pods", binding_rules_narrowed, "runtime-backstops-enforced"),
    ("E29 t-acme without the tenant label", acme_unlabelled, "tenant-namespace-guarded"),
    ("E29 acme's namespace renamed off the prefix, unlabelled", acme_renamed_unlabelled, "tenant-namespace-guarded"),
    ("E29 the tenants' role associated into an unlabelled namespace", tenant_role_into_scratch, "tenant-namespace-guarded"),
    (
        "E09 the cluster making its creator admin",
        access_config(bootstrapClusterCreatorAdminPermissions=True),
        "eks-access-platform-roles-only",
    ),
    (
        "E10 the cluster reading aws-auth too",
        access_config(authenticationMode="API_AND_CONFIG_MAP"),
        "eks-access-platform-roles-only",
    ),
    (
        "O01 acme's key granted to the EBS CSI add-on's role",
        acme_key_grants(lambda rs: _addon_role_arn(rs, "aws-ebs-csi-driver")),
        "tenant-data-access",
    ),
    (
        "O11 the broker given to an add-on's kube-system service account",
        addon_holding(lambda rs: _role_arn(rs, "tenant-identity-broker"), linked="tenant-identity-broker"),
        "tenant-role-isolated",
    ),
    (
        "O11 the broker given to an add-on by its literal ARN",
        addon_holding(lambda rs: _role_arn(rs, "tenant-identity-broker")),
        "tenant-role-isolated",
    ),
    (
        "O11 the broker associated to a kube-system service account",
        broker_held_by("kube-system", "aws-node"),
        "tenant-role-isolated",
    ),
    (
        "O11 the broker held by another service account of the platform",
        broker_held_by("platform", "default"),
        "tenant-role-isolated",
    ),
    (
        "T15 a privileged DaemonSet-like workload with hostPath / in kube-system",
        workload("node-agent", "kube-system", privileged_host_root),
        PSS,
    ),
    ("E16 an nfs volume", workload("e16", "t-acme", volume(nfs={"server": "10.0.0.5", "path": "/"})), PSS),
    ("E16 a gitRepo volume", workload("e16b", "t-acme", volume(gitRepo={"repository": "https://x.example/r"})), PSS),
    ("E17 SELinux type spc_t", workload("e17", "t-acme", container_context(seLinuxOptions={"type": "spc_t"})), PSS),
    ("E17 a pod SELinux user", workload("e17b", "t-acme", pod_context(seLinuxOptions={"user": "system_u"})), PSS),
    ("E18 a Windows HostProcess pod", workload("e18", "t-acme", pod_context(windowsOptions={"hostProcess": True})), PSS),
    ("E19 an Unmasked /proc", workload("e19", "t-acme", container_context(procMount="Unmasked")), PSS),
    (
        "E21 the unsafe sysctl kernel.core_pattern",
        workload("e21", "t-acme", pod_context(sysctls=[{"name": "kernel.core_pattern", "value": "|/tmp/x"}])),
        PSS,
    ),
    ("an AppArmor profile Unconfined", workload("aa", "t-acme", container_context(appArmorProfile={"type": "Unconfined"})), PSS),
    ("T14 the tenant role may create grants on its own keys", own_keys_with(["kms:CreateGrant"]), "tenant-role-isolated"),
    ("T14 the same through kms:Create*", own_keys_with(["kms:Create*"]), "tenant-role-isolated"),
    (
        "T14 CreateGrant pinned only if the key exists (BoolIfExists)",
        own_keys_with(["kms:CreateGrant"], {"BoolIfExists": {"kms:GrantIsForAWSResource": "true"}}),
        "tenant-role-isolated",
    ),
]

TWINS = [
    ("the workloads VAP with `matchConditions: true`", match_condition(" true ")),
    ("the workloads VAP on every operation", workload_operations("*")),
    ("the cluster-bindings binding denying and auditing", binding_actions("Deny", "Audit")),
    ("an unlabelled namespace nothing ties to a tenant", namespace("tools")),
    ("the EBS CSI add-on giving its role to its node service account too", ebs_csi_node_holds_its_role),
    ("a restricted workload in kube-system", workload("agent", "kube-system", lambda pod: None)),
    ("L04 dual-stack 443 on the load balancer's group, linked", ingress_rule("alb-v6", ALB_V6, group="us-use1-lb-alb-sg")),
    (
        "443 on the load balancer's group from a prefix list by id (the internet would be allowed there)",
        ingress_rule(
            "alb-pl",
            {**DB_PORT_FROM_LIST, "fromPort": 443, "toPort": 443, "securityGroupId": "sg-f013d6d901b69493b"},
            group="us-use1-lb-alb-sg",
        ),
    ),
    (
        "the tenant role creating grants only for AWS services acting on its resources",
        own_keys_with(["kms:CreateGrant"], {"Bool": {"kms:GrantIsForAWSResource": "true"}}),
    ),
    (
        "a tenant workload with restricted's volumes, an allowed SELinux type, a safe sysctl, the Default /proc",
        workload(
            "fine",
            "t-acme",
            lambda pod: (
                volume(csi={"driver": "ebs.csi.aws.com"})(pod),
                volume(ephemeral={"volumeClaimTemplate": {}})(pod),
                container_context(seLinuxOptions={"type": "container_t"}, procMount="Default")(pod),
                pod_context(
                    sysctls=[{"name": "net.ipv4.tcp_syncookies", "value": "1"}], appArmorProfile={"type": "RuntimeDefault"}
                )(pod),
            ),
        ),
    ),
]


def test_the_rendered_plan_draws_no_violation(judge):
    assert [(v.policy, v.message) for v in judge()] == []


@pytest.mark.parametrize("what,mutation,rule", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_attack_on_the_real_plan_is_a_mandatory_violation(judge, what, mutation, rule):
    violations = judge(mutation)
    found = [v for v in violations if v.policy == rule]
    assert found and all(v.level == "mandatory" and " must " in v.message for v in found), (
        what,
        [(v.policy, v.level, v.message) for v in violations],
    )


@pytest.mark.parametrize(
    "what,mutation,says",
    [
        ("E12 the DB port from a prefix list by id", ingress_rule("db-pl", DB_PORT_FROM_LIST), "pl-3b927c52"),
        (
            "E12 the same, linked to the database's group",
            ingress_rule("db-pl", DB_PORT_FROM_LIST, group="us-db-us-east-1-sg"),
            "pl-3b927c52",
        ),
        ("L04 dual-stack 443 on a group named by id only", ingress_rule("alb-v6", ALB_V6), "securityGroupId"),
    ],
    ids=["E12", "E12-linked", "L04"],
)
def test_a_reference_the_plan_cannot_resolve_is_an_advisory_never_silence_nor_a_violation(judge, what, mutation, says):
    violations = judge(mutation)
    assert [(v.policy, v.level) for v in violations] == [("ec2-security-group-ingress-restricted", "advisory")], what
    assert "cannot resolve" in violations[0].message and says in violations[0].message


def test_a_cluster_access_mode_unknown_at_preview_is_an_advisory_naming_it(judge):
    violations = judge(access_config(authenticationMode=UNKNOWN))
    assert [(v.policy, v.level) for v in violations] == [("eks-access-platform-roles-only", "advisory")]
    assert "accessConfig.authenticationMode" in violations[0].message


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_twin_on_the_real_plan_passes(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what
