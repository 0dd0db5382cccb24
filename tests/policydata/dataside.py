"""The data-side bypasses the last security review left open, each written as an attacker or a
careless teammate would, with the legitimate setup beside it that must still pass:
Services and Helm charts around the ALB, provider endpoints and roles, cross-region PrivateLink,
keys of another account, a disabled or quickly deletable key, the RDS Data API, backup schedules
that never run or run too rarely, and budget hard caps that attach nothing or allow.

`build` adds what the valid stack lacked for these rules to judge (a ClusterIP Service, the load
balancer controller's chart, an interface endpoint); `MUTATIONS` holds the failing cases of the
rules added here; `CAUGHT` and `ADMITTED` every case, replayed through the whole pack by
tests/test_policy_data_side.py."""

from __future__ import annotations

import copy
import json

from .base import ACCOUNT, DR, K8S, PRIMARY, UNKNOWN, Builder, Mutation, Mutations, Resources, add, find, set_input, together, urn

FOREIGN = "999988887777"
SERVICE = "kubernetes:core/v1:Service"
RELEASE = "kubernetes:helm.sh/v3:Release"
LBC = {
    "chart": "aws-load-balancer-controller",
    "repositoryOpts": {"repo": "https://aws.github.io/eks-charts"},
    "version": "3.5.0",
}
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def _k8s(type_: str, name: str, inputs: dict) -> dict:
    return {
        "urn": urn(type_, name),
        "type": type_,
        "name": name,
        "parent": None,
        "provider": K8S,
        "dependencies": [],
        "propertyDependencies": {},
        "inputs": inputs,
    }


def _service(name: str, namespace: str, spec: dict) -> dict:
    return _k8s(SERVICE, name, {"metadata": {"namespace": namespace, "name": name}, "spec": {"ports": [{"port": 80}], **spec}})


def build(b: Builder) -> None:
    b.resources.append(_service("api", "platform", {"type": "ClusterIP", "selector": {"app": "api"}}))
    b.resources.append(_k8s(RELEASE, "lb-controller-chart", {**copy.deepcopy(LBC), "namespace": "kube-system", "values": {}}))
    b.add(
        ENDPOINT,
        "ecr-api-endpoint",
        {"vpcId": "vpc-1", "serviceName": f"com.amazonaws.{PRIMARY}.ecr.api", "vpcEndpointType": "Interface"},
    )


def _provider(region: str, **inputs) -> Mutation:
    def mutate(resources: Resources) -> None:
        find(resources, region)["inputs"].update(inputs)

    return mutate


def _kubeconfig(server: str, *args: str) -> Mutation:
    config = {
        "clusters": [{"name": "eks", "cluster": {"server": server}}],
        "users": [{"name": "eks", "user": {"exec": {"command": "aws", "args": ["eks", "get-token", *args]}}}],
    }
    return set_input("eks-k8s", "kubeconfig", json.dumps(config))


def _aws_native(**inputs) -> Mutation:
    return add(
        {
            "urn": urn("pulumi:providers:aws-native", "native"),
            "type": "pulumi:providers:aws-native",
            "name": "native",
            "parent": None,
            "provider": "",
            "dependencies": [],
            "propertyDependencies": {},
            "inputs": {"region": PRIMARY, **inputs},
        }
    )


def _schedule(expression: str | None, continuous: bool = False) -> Mutation:
    return together(
        set_input("backups", "rules.0.schedule", expression) if expression else set_input("backups", "rules.0.schedule", None),
        set_input("backups", "rules.0.enableContinuousBackup", continuous),
    )


def _add_rule(rule: dict) -> Mutation:
    def mutate(resources: Resources) -> None:
        rules = find(resources, "backups")["inputs"]["rules"]
        rules.append({**copy.deepcopy(rules[0]), "enableContinuousBackup": False, **rule})

    return mutate


def _foreign_key(region: str = PRIMARY) -> str:
    return f"arn:aws:kms:{region}:{FOREIGN}:key/0000-theirs"


EKS_HOST = "https://ABC.gr7.{}.eks.amazonaws.com"

# rule -> failing cases, for the rules this module adds (test_policy_pack runs each with its rule alone)
MUTATIONS: Mutations = {
    "k8s-service-internal-only": [
        ("a LoadBalancer Service in a tenant namespace", add(_service("open", "t-acme", {"type": "LoadBalancer"}))),
        ("a NodePort Service in the platform namespace", add(_service("nodes", "platform", {"type": "NodePort"}))),
        ("a ClusterIP Service with externalIPs", add(_service("ext", "platform", {"externalIPs": ["203.0.113.7"]}))),
        (
            "a ServicePatch turning the api Service into a LoadBalancer",
            add(
                _k8s(
                    "kubernetes:core/v1:ServicePatch",
                    "api-patch",
                    {"metadata": {"namespace": "platform", "name": "api"}, "spec": {"type": "LoadBalancer"}},
                )
            ),
        ),
    ],
    "helm-release-allowlisted": [
        (
            "a Helm release of a chart nobody reviewed (ingress-nginx)",
            add(
                _k8s(
                    RELEASE,
                    "ingress",
                    {"chart": "ingress-nginx", "repositoryOpts": {"repo": "https://kubernetes.github.io/ingress-nginx"}},
                )
            ),
        ),
        ("the controller's chart at another version", set_input("lb-controller-chart", "version", "1.4.0")),
        ("the controller's chart with no version (latest)", set_input("lb-controller-chart", "version", None)),
        (
            "the controller's chart from another repository",
            set_input("lb-controller-chart", "repositoryOpts.repo", "https://charts.example.net"),
        ),
        ("the controller's chart through a post-renderer", set_input("lb-controller-chart", "postrender", "./inject.sh")),
        (
            "a helm v4 Chart of the same name from a local path",
            add(_k8s("kubernetes:helm.sh/v4:Chart", "local", {"chart": "./charts/aws-load-balancer-controller"})),
        ),
    ],
    "provider-account-and-endpoints-in-zone": [
        ("an S3 endpoint override into eu-west-1", _provider(PRIMARY, endpoints=[{"s3": "https://s3.eu-west-1.amazonaws.com"}])),
        (
            "an endpoint override to a collector outside AWS",
            _provider(PRIMARY, endpoints=[{"kms": "https://collector.example.net"}]),
        ),
        (
            "an endpoint override to someone's API Gateway in the zone",
            _provider(PRIMARY, endpoints=[{"kms": f"https://a1b2c3.execute-api.{PRIMARY}.amazonaws.com/prod"}]),
        ),
        (
            "an endpoint override to an AWS-looking host of another domain",
            _provider(PRIMARY, endpoints=[{"s3": f"https://s3.{PRIMARY}.amazonaws.com.example.net"}]),
        ),
        (
            "assumeRoles into another account",
            _provider(DR, assumeRoles=[{"roleArn": f"arn:aws:iam::{FOREIGN}:role/deployer", "sessionName": "x"}]),
        ),
        ("a provider refusing no account (allowedAccountIds removed)", _provider(PRIMARY, allowedAccountIds=None)),
        ("a provider allowing another account too", _provider(PRIMARY, allowedAccountIds=[ACCOUNT, FOREIGN])),
        ("an aws-native provider assuming a foreign role", _aws_native(assumeRole={"roleArn": f"arn:aws:iam::{FOREIGN}:role/x"})),
        ("a kubeconfig for a cluster in eu-west-1", _kubeconfig(EKS_HOST.format("eu-west-1"))),
        (
            "a kubeconfig authenticating as another account's role",
            _kubeconfig(EKS_HOST.format(PRIMARY), "--role-arn", f"arn:aws:iam::{FOREIGN}:role/admin"),
        ),
        ("a kubeconfig for a cluster outside EKS", _kubeconfig("https://k8s.example.net:6443")),
    ],
    "rds-data-api-disabled": [
        ("the Data API on the writer cluster", set_input("db-primary-cluster", "enableHttpEndpoint", True)),
    ],
}

# (rule, what, mutation) for rules other modules own, replayed with the ones above
EXTRA: list[tuple[str, str, Mutation]] = [
    (
        "aws-data-path-destination-in-zone",
        "an interface endpoint to S3 in eu-west-1 (serviceRegion, cross-region PrivateLink)",
        together(
            set_input("ecr-api-endpoint", "serviceName", f"com.amazonaws.{PRIMARY}.s3"),
            set_input("ecr-api-endpoint", "serviceRegion", "eu-west-1"),
        ),
    ),
    (
        "aws-data-path-destination-in-zone",
        "an endpoint whose service name names eu-central-1",
        set_input("ecr-api-endpoint", "serviceName", "com.amazonaws.eu-central-1.s3"),
    ),
    (
        "aws-data-path-destination-in-zone",
        "an endpoint to another region's PrivateLink service",
        set_input("ecr-api-endpoint", "serviceName", "com.amazonaws.vpce.ap-southeast-2.vpce-svc-0123456789abcdef0"),
    ),
    (
        "s3-bucket-encrypted",
        "the pool's SSE key in a foreign account",
        set_input("pool-sse", "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", _foreign_key()),
    ),
    (
        "rds-storage-encrypted",
        "the writer cluster on a foreign account's key",
        set_input("db-primary-cluster", "kmsKeyId", _foreign_key()),
    ),
    ("cloudwatch-log-group-encrypted", "flow logs on a foreign account's key", set_input("flowlogs", "kmsKeyId", _foreign_key())),
    (
        "eks-cluster-secrets-encrypted",
        "EKS secrets on a foreign account's key",
        set_input("eks", "encryptionConfig.provider.keyArn", _foreign_key()),
    ),
    ("kms-key-rotation-and-policy", "a tenant key created disabled", set_input("acme-key", "isEnabled", False)),
    ("kms-key-rotation-and-policy", "a tenant key deletable after 7 days", set_input("acme-key", "deletionWindowInDays", 7)),
    ("backup-plan-coverage", "a backup rule scheduled on 31 February", _schedule("cron(0 0 31 2 ? *)", continuous=True)),
    ("backup-plan-coverage", "a backup rule bounded to 2020", _schedule("cron(0 5 * * ? 2020)", continuous=True)),
    ("backup-plan-coverage", "snapshots once a day without continuous backup (RPO 15 min)", _schedule("rate(1 day)")),
    ("backup-plan-coverage", "a continuous rule copying to dr once a week", _schedule("cron(0 5 ? * MON *)", continuous=True)),
    ("backup-plan-coverage", "a schedule AWS refuses (both day fields set)", _schedule("cron(0 5 1 * MON *)", continuous=True)),
]

CAUGHT: list[tuple[str, str, Mutation]] = [(rule, what, m) for rule, cases in MUTATIONS.items() for what, m in cases] + EXTRA

# (what, mutation): legitimate twins that must pass the whole pack
ADMITTED: list[tuple[str, Mutation]] = [
    ("a headless ClusterIP Service", add(_service("db-headless", "platform", {"clusterIP": "None"}))),
    (
        "an ExternalName Service (a DNS alias, no inbound path)",
        add(_service("alias", "platform", {"type": "ExternalName", "externalName": "db.internal"})),
    ),
    (
        "the controller's chart with a trailing slash on its repository",
        set_input("lb-controller-chart", "repositoryOpts.repo", "https://aws.github.io/eks-charts/"),
    ),
    (
        "a FIPS S3 endpoint in the stack's region",
        _provider(PRIMARY, endpoints=[{"s3": f"https://s3-fips.{PRIMARY}.amazonaws.com"}]),
    ),
    ("the global STS endpoint", _provider(PRIMARY, endpoints=[{"sts": "https://sts.amazonaws.com"}])),
    ("a dual-stack S3 endpoint", _provider(PRIMARY, endpoints=[{"s3": f"https://s3.dualstack.{PRIMARY}.amazonaws.com"}])),
    (
        "an interface endpoint's own DNS name for KMS",
        _provider(PRIMARY, endpoints=[{"kms": f"https://vpce-0a1b2c3d4e5f-abcdefgh.kms.{PRIMARY}.vpce.amazonaws.com"}]),
    ),
    (
        "assumeRoles into the stack's own account",
        _provider(DR, assumeRoles=[{"roleArn": f"arn:aws:iam::{ACCOUNT}:role/deployer"}]),
    ),
    (
        "an aws-native provider assuming the stack's own role",
        _aws_native(assumeRole={"roleArn": f"arn:aws:iam::{ACCOUNT}:role/deployer"}),
    ),
    (
        "a kubeconfig for the stack's cluster with its own role",
        _kubeconfig(EKS_HOST.format(PRIMARY), "--role-arn", f"arn:aws:iam::{ACCOUNT}:role/deployer", "--region", PRIMARY),
    ),
    ("a cross-region interface endpoint inside the zone", set_input("ecr-api-endpoint", "serviceRegion", DR)),
    ("a key window of 30 days written out", set_input("acme-key", "deletionWindowInDays", 30)),
    ("the Data API written out as off", set_input("db-primary-cluster", "enableHttpEndpoint", False)),
    ("hourly continuous backup (the program's)", _schedule("cron(0 * ? * * *)", continuous=True)),
    ("snapshots every 15 minutes without continuous backup", _schedule("rate(15 minutes)")),
    (
        "a monthly archive rule beside the daily continuous one",
        _add_rule({"ruleName": "monthly", "schedule": "cron(0 3 1 * ? *)"}),
    ),
    ("continuous backup on AWS's default schedule (daily 05:00 UTC)", _schedule(None, continuous=True)),
    ("snapshots every 6 hours with continuous backup", _schedule("cron(0 */6 ? * * *)", continuous=True)),
    (
        "a hard cap applying AWSDenyAll",
        set_input("budget-tenant-acme-cap", "definition.iamActionDefinition.policyArn", "arn:aws:iam::aws:policy/AWSDenyAll"),
    ),
    (
        "a hard cap naming its role by the role's given name",
        together(
            lambda rs: find(rs, "t-acme-role")["inputs"].update(name="t-acme-runtime"),
            # the service account's IRSA annotation follows the role's new name (else it names no role of the stack)
            set_input(
                "t-acme-sa",
                "metadata.annotations",
                {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/t-acme-runtime"},
            ),
            *(
                set_input(f"budget-tenant-{t}-cap", "definition.iamActionDefinition.roles", ["t-acme-runtime"])
                for t in ("acme", "globex")
            ),
        ),
    ),
]

# a hard cap whose principals are only known after apply: an advisory on the action, never a pass in silence
UNKNOWN_ROLES = set_input("budget-tenant-acme-cap", "definition.iamActionDefinition.roles", UNKNOWN)
