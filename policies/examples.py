"""A small stack that passes every rule, and mutations that each break one rule.

Shaped like the plan JSON's `resources` (plus `propertyDependencies`), with the camelCase inputs
of pulumi-aws 7 / pulumi-kubernetes 4 that the program really sends. Used by the tests (through
the analyzer protocol) and by the catalog (docs/policies.md shows each rule's first mutation's
real message). Plain data: imports nothing from the pack or the project.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

STACK = "test"
ACCOUNT = "123456789012"
PRIMARY, DR = "us-east-1", "us-west-2"

# Per-stack settings the rules need, as policies/config/<stack>.json would carry them.
CONFIG = {
    "aws-resource-region-allowed": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "aws-replication-destination-allowed": {"allowedRegions": [PRIMARY, DR, "us-east-2"]},
    "rds-database-dr-member": {"drRegion": DR},
}
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the wire format's "known after apply"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::meridian::{type_}::{name}"


def _tags(region: str, **extra: str) -> dict[str, str]:
    return {"meridian:stack": STACK, "meridian:zone": "us", "meridian:region": region, "meridian:cost-center": "platform-test", **extra}


class _Builder:
    def __init__(self) -> None:
        self.resources: list[dict] = []
        self.providers: dict[str, str] = {}

    def add(self, type_: str, name: str, inputs: dict, *, region: str | None = PRIMARY, provider: str | None = None,
            parent: str | None = None, deps: dict[str, list[str]] | None = None, tags: dict | None = None) -> str:
        u = urn(type_, name)
        if type_.startswith("aws:") and tags is not False:
            inputs = {**inputs, "tags": tags if tags is not None else _tags(region or PRIMARY)}
        deps = deps or {}
        self.resources.append({
            "urn": u, "type": type_, "name": name, "custom": True,
            "parent": parent or urn("pulumi:pulumi:Stack", f"meridian-{STACK}"),
            "provider": provider if provider is not None else (self.providers.get(region) if region else None),
            "inputs": inputs,
            "dependencies": sorted({d for ds in deps.values() for d in ds}),
            "propertyDependencies": deps,
        })
        return u

    def arn(self, service: str, region: str, rest: str) -> str:
        return f"arn:aws:{service}:{region}:{ACCOUNT}:{rest}"


def valid_stack() -> list[dict]:
    """Every area of the pack, configured the way the rules want it."""
    b = _Builder()
    b.resources.append({"urn": urn("pulumi:pulumi:Stack", f"meridian-{STACK}"), "type": "pulumi:pulumi:Stack", "name": f"meridian-{STACK}",
                        "custom": False, "parent": None, "provider": None, "inputs": {}, "dependencies": [], "propertyDependencies": {}})
    for region in (PRIMARY, DR):
        b.providers[region] = b.add("pulumi:providers:aws", region, {"region": region, "skipCredentialsValidation": "false"}, region=None, provider="")
    k8s = b.add("pulumi:providers:kubernetes", "eks-k8s", {"kubeconfig": "{}", "enableServerSideApply": "true"}, region=None, provider="")

    # keys
    platform_key = b.add("aws:kms/key:Key", "platform-key", {"enableKeyRotation": True, "deletionWindowInDays": 30})
    dr_key = b.add("aws:kms/key:Key", "dr-key", {"enableKeyRotation": True}, region=DR, provider=b.providers[DR])
    acme_key = b.add("aws:kms/key:Key", "acme-key", {"enableKeyRotation": True}, tags=_tags(PRIMARY, **{"meridian:tenant": "acme"}))
    b.add("aws:kms/key:Key", "globex-key", {"enableKeyRotation": True}, tags=_tags(PRIMARY, **{"meridian:tenant": "globex"}))
    key_arn = b.arn("kms", PRIMARY, "key/1111-platform")
    dr_key_arn = b.arn("kms", DR, "key/2222-dr")
    acme_key_arn = b.arn("kms", PRIMARY, "key/3333-acme")

    # S3: a pool bucket with every guard, and its replica in the dr region
    for name, region, key in (("pool", PRIMARY, platform_key), ("pool-replica", DR, dr_key)):
        prov = b.providers[region]
        bucket = b.add("aws:s3/bucket:Bucket", f"{name}-bucket", {}, region=region, provider=prov)
        on = {"bucket": [bucket]}
        b.add("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{name}-no-public", {
            "bucket": f"{name}-bucket-1234567", "blockPublicAcls": True, "blockPublicPolicy": True,
            "ignorePublicAcls": True, "restrictPublicBuckets": True}, region=region, provider=prov, parent=bucket, deps=on, tags=False)
        b.add("aws:s3/bucketVersioning:BucketVersioning", f"{name}-versioning", {
            "bucket": f"{name}-bucket-1234567", "versioningConfiguration": {"status": "Enabled"}}, region=region, provider=prov, parent=bucket, deps=on, tags=False)
        b.add("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", f"{name}-sse", {
            "bucket": f"{name}-bucket-1234567", "rules": [{"applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn if region == PRIMARY else dr_key_arn}, "bucketKeyEnabled": True}]},
            region=region, provider=prov, parent=bucket, deps={"bucket": [bucket], "rules": [key]}, tags=False)
        arn = f"arn:aws:s3:::{name}-bucket-1234567"
        b.add("aws:s3/bucketPolicy:BucketPolicy", f"{name}-tls-only", {
            "bucket": f"{name}-bucket-1234567", "policy": json.dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})},
            region=region, provider=prov, parent=bucket, deps={"bucket": [bucket], "policy": [bucket]}, tags=False)
    pool = urn("aws:s3/bucket:Bucket", "pool-bucket")
    replica = urn("aws:s3/bucket:Bucket", "pool-replica-bucket")
    b.add("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "pool-replication", {
        "bucket": "pool-bucket-1234567", "role": f"arn:aws:iam::{ACCOUNT}:role/replication",
        "rules": [{"id": "all", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::pool-replica-bucket-1234567", "storageClass": "STANDARD"}}]},
        deps={"bucket": [pool], "rules": [replica]}, tags=False)

    # RDS: an Aurora global database with a secondary (and an instance) in the dr region
    b.add("aws:rds/clusterParameterGroup:ClusterParameterGroup", "db-params", {
        "family": "aurora-postgresql16", "parameters": [{"name": "rds.force_ssl", "value": "1"}]})
    glob = b.add("aws:rds/globalCluster:GlobalCluster", "db-global", {
        "globalClusterIdentifier": "test-db", "engine": "aurora-postgresql", "engineVersion": "16.4",
        "storageEncrypted": True, "deletionProtection": True})
    common = {"engine": "aurora-postgresql", "engineVersion": "16.4", "storageEncrypted": True, "deletionProtection": True,
              "backupRetentionPeriod": 14, "globalClusterIdentifier": "test-db", "skipFinalSnapshot": False}
    writer = b.add("aws:rds/cluster:Cluster", "db-primary-cluster", {**common, "kmsKeyId": key_arn, "masterUsername": "admin",
                   "masterPassword": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "s3cret"}},
                   deps={"globalClusterIdentifier": [glob], "kmsKeyId": [platform_key]})
    b.add("aws:rds/clusterInstance:ClusterInstance", "db-primary-0", {"clusterIdentifier": "db-primary-cluster-1234567", "instanceClass": "db.r6g.large",
          "engine": "aurora-postgresql", "publiclyAccessible": False}, parent=writer, deps={"clusterIdentifier": [writer]}, tags=_tags(PRIMARY))
    secondary = b.add("aws:rds/cluster:Cluster", "db-dr-cluster", {**common, "kmsKeyId": dr_key_arn}, region=DR,
                      provider=b.providers[DR], deps={"globalClusterIdentifier": [glob], "kmsKeyId": [dr_key]})
    b.add("aws:rds/clusterInstance:ClusterInstance", "db-dr-0", {"clusterIdentifier": "db-dr-cluster-1234567", "instanceClass": "db.r6g.large",
          "engine": "aurora-postgresql"}, region=DR, provider=b.providers[DR], parent=secondary, deps={"clusterIdentifier": [secondary]})

    # EKS, logs, topics, disks, backups
    b.add("aws:eks/cluster:Cluster", "eks", {"name": "eks", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks", "vpcConfig": {
        "subnetIds": ["subnet-1", "subnet-2"], "endpointPrivateAccess": True, "endpointPublicAccess": False},
        "encryptionConfig": {"provider": {"keyArn": key_arn}, "resources": ["secrets"]}}, deps={"encryptionConfig": [platform_key]})
    b.add("aws:cloudwatch/logGroup:LogGroup", "flowlogs", {"retentionInDays": 365, "kmsKeyId": key_arn})
    b.add("aws:sns/topic:Topic", "alerts", {"kmsMasterKeyId": UNKNOWN}, deps={"kmsMasterKeyId": [platform_key]})
    b.add("aws:ebs/volume:Volume", "scratch", {"availabilityZone": f"{PRIMARY}a", "size": 100, "encrypted": True, "kmsKeyId": key_arn})
    vault = b.add("aws:backup/vault:Vault", "vault", {"name": "test-vault", "kmsKeyArn": key_arn})
    dr_vault = b.add("aws:backup/vault:Vault", "dr-vault", {"name": "test-dr-vault", "kmsKeyArn": dr_key_arn}, region=DR, provider=b.providers[DR])
    for v, name, region in ((vault, "test-vault", PRIMARY), (dr_vault, "test-dr-vault", DR)):
        b.add("aws:backup/vaultLockConfiguration:VaultLockConfiguration", f"{name}-lock", {"backupVaultName": name, "minRetentionDays": 14},
              region=region, provider=b.providers[region], deps={"backupVaultName": [v]}, tags=False)
    b.add("aws:backup/plan:Plan", "backups", {"name": "daily", "rules": [{"ruleName": "daily", "targetVaultName": "test-vault",
          "schedule": "cron(0 5 * * ? *)", "copyActions": [{"destinationVaultArn": b.arn("backup", DR, "backup-vault:test-dr-vault")}]}]},
          deps={"rules": [vault, dr_vault]})

    # network: a load balancer's security group may face the internet on 443
    lb_sg = b.add("aws:ec2/securityGroup:SecurityGroup", "lb-sg", {"vpcId": "vpc-1", "description": "public https", "ingress": [
        {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]})
    b.add("aws:lb/loadBalancer:LoadBalancer", "api-lb", {"loadBalancerType": "application", "internal": False,
          "securityGroups": ["sg-lb"], "subnets": ["subnet-a", "subnet-b"]}, deps={"securityGroups": [lb_sg]})
    b.add("aws:ec2/securityGroup:SecurityGroup", "db-sg", {"vpcId": "vpc-1", "description": "postgres from nodes", "ingress": [
        {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-nodes"]}]})

    # IAM: service roles, scoped
    eks_role = b.add("aws:iam/role:Role", "eks-role", {"assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})})
    b.add("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks-role-cluster", {"role": "eks-role-1234567",
          "policyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"}, parent=eks_role, deps={"role": [eks_role]}, tags=False)
    b.add("aws:iam/policy:Policy", "deploy", {"policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/eks-role-1234567"},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]})})

    # a tenant: namespace fenced and bounded, IRSA role reaching its prefix and key only, a budget
    ns = b.add("kubernetes:core/v1:Namespace", "t-acme-ns", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "t-acme", "labels": {"meridian.io/tenant": "acme", "meridian.io/plan": "pro"}}}, region=None, provider=k8s)
    meta = {"namespace": "t-acme", "labels": {"meridian.io/tenant": "acme"}}
    b.add("kubernetes:networking.k8s.io/v1:NetworkPolicy", "t-acme-default-deny", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {**meta, "name": "default-deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
          region=None, provider=k8s, parent=ns)
    b.add("kubernetes:core/v1:ResourceQuota", "t-acme-quota", {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {**meta, "name": "plan-quota"},
          "spec": {"hard": {"requests.cpu": "4", "requests.memory": "8Gi", "pods": "40"}}}, region=None, provider=k8s, parent=ns)
    oidc = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
    role = b.add("aws:iam/role:Role", "t-acme-role", {"path": "/meridian/tenants/", "assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc}"}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{oidc}:sub": "system:serviceaccount:t-acme:acme-app", f"{oidc}:aud": "sts.amazonaws.com"}}}]})},
        tags=_tags(PRIMARY, **{"meridian:tenant": "acme"}))
    b.add("aws:iam/rolePolicy:RolePolicy", "t-acme-data-access", {"role": "t-acme-role-1234567", "policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "TenantObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::pool-bucket-1234567/tenants/acme/*"},
        {"Sid": "TenantListing", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::pool-bucket-1234567",
         "Condition": {"StringLike": {"s3:prefix": ["tenants/acme/*"]}}},
        {"Sid": "TenantKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": acme_key_arn}]})},
        parent=role, deps={"role": [role], "policy": [pool, acme_key]}, tags=False)
    b.add("kubernetes:core/v1:ServiceAccount", "t-acme-sa", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        **meta, "name": "acme-app", "annotations": {"eks.amazonaws.com/role-arn": f"arn:aws:iam::{ACCOUNT}:role/t-acme-role-1234567"}}},
        region=None, provider=k8s, parent=ns, deps={"metadata": [role]})
    # a second tenant's key, so isolation has something to get wrong
    b.add("kubernetes:core/v1:Namespace", "t-globex-ns", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "t-globex", "labels": {"meridian.io/tenant": "globex"}}}, region=None, provider=k8s)
    gmeta = {"namespace": "t-globex", "labels": {"meridian.io/tenant": "globex"}}
    b.add("kubernetes:networking.k8s.io/v1:NetworkPolicy", "t-globex-default-deny", {"metadata": {**gmeta, "name": "default-deny"},
          "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}, region=None, provider=k8s)
    b.add("kubernetes:core/v1:ResourceQuota", "t-globex-quota", {"metadata": {**gmeta, "name": "plan-quota"}, "spec": {"hard": {"pods": "20"}}},
          region=None, provider=k8s)

    # budgets: the stack's and each tenant's
    for name, tag in (("stack", f"user:meridian:stack${STACK}"), ("tenant-acme", "user:meridian:tenant$acme"), ("tenant-globex", "user:meridian:tenant$globex")):
        b.add("aws:budgets/budget:Budget", f"budget-{name}", {"budgetType": "COST", "timeUnit": "MONTHLY", "limitAmount": "1000.00", "limitUnit": "USD",
              "costFilters": [{"name": "TagKeyValue", "values": [tag]}]})

    # Route 53 failover: PRIMARY with a health check, SECONDARY for the same name
    zone = b.add("aws:route53/zone:Zone", "zone", {"name": "test.meridian.example.com"})
    for role_, region in (("primary", PRIMARY), ("secondary", DR)):
        check = b.add("aws:route53/healthCheck:HealthCheck", f"{role_}-check", {"type": "HTTPS", "fqdn": f"lb.{region}.example.com",
                      "port": 443, "resourcePath": "/healthz", "requestInterval": 10, "failureThreshold": 3})
        b.add("aws:route53/record:Record", f"{role_}-record", {"zoneId": "ZTEST", "name": "api.test.meridian.example.com", "type": "CNAME",
              "ttl": 30, "records": [f"lb.{region}.example.com"], "setIdentifier": f"{role_}-{region}",
              "failoverRoutingPolicies": [{"type": role_.upper()}], "healthCheckId": f"hc-{role_}"},
              deps={"zoneId": [zone], "healthCheckId": [check]}, tags=False)
    return b.resources


# --- mutations: each breaks one rule --------------------------------------------------------------

Resources = list[dict]


def find(resources: Resources, name: str) -> dict:
    return next(r for r in resources if r["name"] == name)


def _set(name: str, path: str, value) -> Callable[[Resources], None]:
    """Set (or with value=DELETE, remove) inputs.<path> of the resource named `name`."""

    def mutate(resources: Resources) -> None:
        node = find(resources, name)["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        if value is DELETE:
            if isinstance(node, list):
                node.pop(int(last))
            else:
                node.pop(last, None)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


DELETE = object()


def _drop(*names: str) -> Callable[[Resources], None]:
    def mutate(resources: Resources) -> None:
        resources[:] = [r for r in resources if r["name"] not in names]

    return mutate


def _doc(name: str, statement: dict, field: str = "policy") -> Callable[[Resources], None]:
    """Add a statement to the policy document of resource `name`."""

    def mutate(resources: Resources) -> None:
        inputs = find(resources, name)["inputs"]
        doc = json.loads(inputs[field]) if field in inputs else {"Version": "2012-10-17", "Statement": []}
        doc["Statement"].append(statement)
        inputs[field] = json.dumps(doc)

    return mutate


def _all(*steps: Callable[[Resources], None]) -> Callable[[Resources], None]:
    def mutate(resources: Resources) -> None:
        for step in steps:
            step(resources)

    return mutate


def _move_region(name: str, region: str) -> Callable[[Resources], None]:
    return _set(name, "region", region)


def _add_resource(resource: dict) -> Callable[[Resources], None]:
    def mutate(resources: Resources) -> None:
        resources.append(copy.deepcopy(resource))

    return mutate


# rule -> [(what the mutation does, mutation)]; the first one is the catalog's example.
MUTATIONS: dict[str, list[tuple[str, Callable[[Resources], None]]]] = {
    "aws-resource-region-allowed": [
        ("a database cluster moved to eu-west-1 with a per-resource region", _move_region("db-primary-cluster", "eu-west-1")),
        ("the dr provider moved to ap-south-1", _set("us-west-2", "region", "ap-south-1")),
        ("a bucket whose region is computed (unknown at preview)", _set("pool-bucket", "region", UNKNOWN)),
    ],
    "aws-replication-destination-allowed": [
        ("replication to a bucket outside the stack (literal ARN, region unknowable)", _all(
            _set("pool-replication", "rules.0.destination.bucket", "arn:aws:s3:::somewhere-else"),
            lambda rs: find(rs, "pool-replication")["propertyDependencies"].update(rules=[]))),
        ("the replica bucket moved to eu-central-1", _move_region("pool-replica-bucket", "eu-central-1")),
        ("a backup copy to a vault ARN in eu-west-1", _all(
            _set("backups", "rules.0.copyActions.0.destinationVaultArn", f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:x"),
            lambda rs: find(rs, "backups")["propertyDependencies"].update(rules=[]))),
    ],
    "rds-storage-encrypted": [
        ("the primary cluster with storage encryption off", _set("db-primary-cluster", "storageEncrypted", False)),
        ("the dr cluster without a KMS key", _set("db-dr-cluster", "kmsKeyId", DELETE)),
        ("the global cluster relying on the (unencrypted) default", _set("db-global", "storageEncrypted", DELETE)),
        ("the primary cluster on the AWS-managed key", _set("db-primary-cluster", "kmsKeyId", "alias/aws/rds")),
    ],
    "rds-parameter-group-tls-required": [
        ("rds.force_ssl set to 0", _set("db-params", "parameters.0.value", "0")),
        ("rds.force_ssl not set (default off)", _set("db-params", "parameters", [])),
    ],
    "ebs-volume-encrypted": [
        ("a volume with encryption off", _set("scratch", "encrypted", False)),
    ],
    "eks-cluster-secrets-encrypted": [
        ("a cluster without secrets encryption", _set("eks", "encryptionConfig", DELETE)),
    ],
    "sns-topic-encrypted": [
        ("a topic without a KMS key", _set("alerts", "kmsMasterKeyId", DELETE)),
        ("a topic on the AWS-managed key", _set("alerts", "kmsMasterKeyId", "alias/aws/sns")),
    ],
    "backup-vault-encrypted": [
        ("a vault on the default key", _set("vault", "kmsKeyArn", DELETE)),
    ],
    "cloudwatch-log-group-encrypted": [
        ("a log group without a KMS key", _set("flowlogs", "kmsKeyId", DELETE)),
    ],
    "s3-bucket-encrypted": [
        ("default encryption switched to SSE-S3", _set("pool-sse", "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256")),
        ("a bucket without default-encryption config", _drop("pool-sse")),
    ],
    "s3-bucket-tls-only": [
        ("the TLS-only bucket policy removed", _drop("pool-tls-only")),
        ("a bucket policy that allows instead of denying plain HTTP",
         _set("pool-tls-only", "policy", json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "s3:GetObject", "Resource": "*"}]}))),
    ],
    "s3-bucket-public-access-blocked": [
        ("the bucket made public: public access block off", _set("pool-no-public", "blockPublicPolicy", False)),
        ("a bucket without a public access block", _drop("pool-replica-no-public")),
        ("a public-read canned ACL", _set("pool-bucket", "acl", "public-read")),
        ("a bucket policy open to everyone", _doc("pool-tls-only", {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                                   "Resource": "arn:aws:s3:::pool-bucket-1234567/*"})),
    ],
    "ec2-security-group-ingress-restricted": [
        ("the database security group open to 0.0.0.0/0 on 5432", _set("db-sg", "ingress.0.cidrBlocks", ["0.0.0.0/0"])),
        ("443 open to the world on a security group no load balancer uses", _set("db-sg", "ingress.0", {"protocol": "tcp", "fromPort": 443, "toPort": 443, "ipv6CidrBlocks": ["::/0"]})),
        ("the load balancer's group opening all ports", _set("lb-sg", "ingress.0.protocol", "-1")),
    ],
    "rds-instance-not-public": [
        ("the writer instance made publicly accessible", _set("db-primary-0", "publiclyAccessible", True)),
    ],
    "eks-cluster-endpoint-restricted": [
        ("the public endpoint left at the provider default (on, 0.0.0.0/0)", _set("eks", "vpcConfig.endpointPublicAccess", DELETE)),
        ("the public endpoint open to 0.0.0.0/0", _all(_set("eks", "vpcConfig.endpointPublicAccess", True), _set("eks", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"]))),
    ],
    "iam-policy-no-full-admin": [
        ("a policy allowing * on *", _doc("deploy", {"Effect": "Allow", "Action": "*", "Resource": "*"})),
        ("an inline role policy with NotAction on *", _set("eks-role", "inlinePolicies", [{"name": "wide", "policy": json.dumps(
            {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]})}])),
    ],
    "iam-policy-no-passrole-wildcard": [
        ("iam:PassRole on every role", _doc("deploy", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"})),
        ("iam:* on every resource", _doc("deploy", {"Effect": "Allow", "Action": ["iam:*"], "Resource": ["*"]})),
    ],
    "iam-role-no-admin-policy": [
        ("AdministratorAccess attached to a workload role", _set("eks-role-cluster", "policyArn", "arn:aws:iam::aws:policy/AdministratorAccess")),
        ("PowerUserAccess in a role's managed policy list", _set("t-acme-role", "managedPolicyArns", ["arn:aws:iam::aws:policy/PowerUserAccess"])),
    ],
    "aws-resource-required-tags": [
        ("a log group without its cost-center tag", _set("flowlogs", "tags.meridian:cost-center", DELETE)),
        ("a key with an empty stack tag", _set("platform-key", "tags.meridian:stack", "")),
    ],
    "rds-deletion-protection-enabled": [
        ("the primary cluster without deletion protection", _set("db-primary-cluster", "deletionProtection", DELETE)),
    ],
    "rds-backup-retention-sufficient": [
        ("backups kept 3 days", _set("db-primary-cluster", "backupRetentionPeriod", 3)),
        ("backup retention left at the default (1 day)", _set("db-dr-cluster", "backupRetentionPeriod", DELETE)),
    ],
    "backup-vault-lock-enabled": [
        ("a vault without a lock", _drop("test-vault-lock")),
        ("a lock of 1 day", _set("test-dr-vault-lock", "minRetentionDays", 1)),
    ],
    "s3-bucket-versioning-enabled": [
        ("versioning suspended", _set("pool-versioning", "versioningConfiguration.status", "Suspended")),
        ("a bucket without versioning", _drop("pool-replica-versioning")),
    ],
    "route53-failover-record-ready": [
        ("the PRIMARY record's health check removed", _all(_set("primary-record", "healthCheckId", DELETE),
                                                         lambda rs: find(rs, "primary-record")["propertyDependencies"].pop("healthCheckId"))),
        ("the SECONDARY record removed", _drop("secondary-record")),
    ],
    "rds-database-dr-member": [
        ("the dr cluster removed from the global database", _drop("db-dr-cluster", "db-dr-0")),
        ("a dr cluster with no instance", _drop("db-dr-0")),
        ("a standalone RDS instance with no cross-region replica", _add_resource({
            "urn": urn("aws:rds/instance:Instance", "reports-db"), "type": "aws:rds/instance:Instance", "name": "reports-db",
            "parent": None, "provider": urn("pulumi:providers:aws", PRIMARY), "dependencies": [], "propertyDependencies": {},
            "inputs": {"engine": "postgres", "instanceClass": "db.t4g.medium", "allocatedStorage": 50, "storageEncrypted": True,
                       "kmsKeyId": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/1111-platform", "deletionProtection": True,
                       "backupRetentionPeriod": 14, "tags": _tags(PRIMARY)}})),
    ],
    "tenant-role-isolated": [
        ("the tenant role widened to every object in the bucket", _set("t-acme-data-access", "policy", json.dumps({"Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pool-bucket-1234567/*"}]}))),
        ("the tenant role widened to Resource *", _doc("t-acme-data-access", {"Effect": "Allow", "Action": ["s3:*", "kms:Decrypt"], "Resource": "*"})),
        ("the tenant role reaching another tenant's key", lambda rs: find(rs, "t-acme-data-access")["propertyDependencies"]["policy"].append(urn("aws:kms/key:Key", "globex-key"))),
        ("listing the whole shared bucket", _doc("t-acme-data-access", {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::pool-bucket-1234567"})),
        ("the role assumable from another tenant's namespace", _set("t-acme-role", "assumeRolePolicy", json.dumps({"Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": "x"},
            "Condition": {"StringLike": {"oidc:sub": "system:serviceaccount:t-*:*"}}}]}))),
        ("another tenant's service account using the role", _set("t-acme-sa", "metadata.namespace", "t-globex")),
    ],
    "tenant-namespace-guarded": [
        ("a tenant namespace without its default-deny NetworkPolicy", _drop("t-acme-default-deny")),
        ("a default deny that only covers ingress", _set("t-globex-default-deny", "spec.policyTypes", ["Ingress"])),
        ("a tenant namespace without a ResourceQuota", _drop("t-globex-quota")),
    ],
    "budgets-tenant-budget-exists": [
        ("a tenant without a budget", _drop("budget-tenant-globex")),
    ],
    "budgets-stack-budget-exists": [
        ("the stack budget removed", _drop("budget-stack")),
    ],
}


def mutated(rule: str, index: int = 0) -> Resources:
    resources = valid_stack()
    MUTATIONS[rule][index][1](resources)
    return resources
