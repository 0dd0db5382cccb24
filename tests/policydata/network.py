"""The network: a VPC with its flow log, the load balancer's edge (its security group, an ALB, two
target groups behind one TLS listener) and the database's security group; the mutations of the
network and exposure rules."""

from __future__ import annotations

from components.logbucket import access_log_policy

from .base import ACCOUNT, DELETE, PRIMARY, Builder, Mutations, add, arn, find, resource, set_input, stack_tags, together, urn

ALB_LOGS = "api-lb-logs-bucket-1234567"
ELB_ACCOUNT_US_EAST_1 = "arn:aws:iam::127311923021:root"  # ELB log delivery in us-east-1 (aws.elb.get_service_account)


def alb_log_bucket(b: Builder) -> str:
    """The load balancer's own access-log bucket and its guards, as components.logbucket builds them (SSE-S3)."""
    bucket = b.add("aws:s3/bucket:Bucket", "api-lb-logs-bucket", {})
    guards = {
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
            "api-lb-logs-no-public",
            {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True},
        ),
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
            "api-lb-logs-owner",
            {"rule": {"objectOwnership": "BucketOwnerEnforced"}},
        ),
        "aws:s3/bucketVersioning:BucketVersioning": (
            "api-lb-logs-versioning",
            {"versioningConfiguration": {"status": "Enabled"}},
        ),
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
            "api-lb-logs-sse",
            {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        ),
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
            "api-lb-logs-expiry",
            {
                "rules": [
                    {
                        "id": "expire-logs",
                        "status": "Enabled",
                        "filter": {"prefix": "alb/"},
                        "expiration": {"days": 90},
                        "noncurrentVersionExpiration": {"noncurrentDays": 90},
                    }
                ]
            },
        ),
        "aws:s3/bucketPolicy:BucketPolicy": (
            "api-lb-logs-policy",
            {"policy": access_log_policy(f"arn:aws:s3:::{ALB_LOGS}", "alb", ACCOUNT, ELB_ACCOUNT_US_EAST_1)},
        ),
    }
    for type_, (name, inputs) in guards.items():
        b.add(type_, name, {"bucket": ALB_LOGS, **inputs}, parent=bucket, deps={"bucket": [bucket]}, tags=False)
    return bucket


def build(b: Builder) -> None:
    vpc = b.add("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16", "enableDnsHostnames": True})
    b.add(
        "aws:ec2/flowLog:FlowLog",
        "vpc-flow-log",
        {"vpcId": "vpc-1", "trafficType": "ALL", "logDestination": arn("logs", PRIMARY, "log-group:flowlogs")},
        deps={"vpcId": [vpc]},
    )
    lb_sg = b.add(
        "aws:ec2/securityGroup:SecurityGroup",
        "lb-sg",
        {
            "vpcId": "vpc-1",
            "description": "public https",
            "ingress": [{"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}],
        },
    )
    logs = alb_log_bucket(b)
    lb = b.add(
        "aws:lb/loadBalancer:LoadBalancer",
        "api-lb",
        {
            "loadBalancerType": "application",
            "internal": False,
            "securityGroups": ["sg-lb"],
            "subnets": ["subnet-a", "subnet-b"],
            "dropInvalidHeaderFields": True,
            "desyncMitigationMode": "defensive",
            # its own log bucket, as components.ingress keeps it (a bucket the stack does not own is refused)
            "accessLogs": {"bucket": ALB_LOGS, "enabled": True, "prefix": "alb"},
        },
        deps={"securityGroups": [lb_sg], "accessLogs": [logs]},
    )
    # two tracks behind one listener, split by weight (components.ingress)
    tracks = {
        track: b.add(
            "aws:lb/targetGroup:TargetGroup",
            f"api-{track}",
            {
                "targetType": "ip",
                "port": 8080,
                "protocol": "HTTP",
                "vpcId": "vpc-1",
                "healthCheck": {"enabled": True, "protocol": "HTTP", "path": "/healthz", "matcher": "200", "interval": 10},
            },
        )
        for track in ("stable", "canary")
    }
    b.add(
        "aws:lb/listener:Listener",
        "api-https",
        {
            "loadBalancerArn": arn("elasticloadbalancing", PRIMARY, "loadbalancer/app/api/1"),
            "port": 443,
            "protocol": "HTTPS",
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "certificateArn": arn("acm", PRIMARY, "certificate/1"),
            "defaultActions": [
                {
                    "type": "forward",
                    "forward": {
                        "targetGroups": [
                            {"arn": arn("elasticloadbalancing", PRIMARY, f"targetgroup/api-{t}/1"), "weight": w}
                            for t, w in (("stable", 95), ("canary", 5))
                        ]
                    },
                }
            ],
        },
        deps={"loadBalancerArn": [lb], "defaultActions": list(tracks.values())},
    )
    b.add(
        "aws:ec2/securityGroup:SecurityGroup",
        "db-sg",
        {
            "vpcId": "vpc-1",
            "description": "postgres from nodes",
            "ingress": [{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-nodes"]}],
        },
    )


# the database's group as the program builds it: the writer cluster's group, in the VPC's id
DB_TIER = together(
    set_input("db-primary-cluster", "vpcSecurityGroupIds", ["sg-db"]),
    lambda rs: find(rs, "db-primary-cluster")["propertyDependencies"].update(
        vpcSecurityGroupIds=[urn("aws:ec2/securityGroup:SecurityGroup", "db-sg")]
    ),
    lambda rs: find(rs, "db-sg")["propertyDependencies"].update(vpcId=[urn("aws:ec2/vpc:Vpc", "vpc")]),
)

MUTATIONS: Mutations = {
    "ec2-subnet-public-ip-unused": [
        (
            "an instance in a subnet that maps public IPs on launch",
            together(
                add(
                    resource(
                        "aws:ec2/subnet:Subnet",
                        "public-a",
                        {"vpcId": "vpc-1", "cidrBlock": "10.0.0.0/24", "mapPublicIpOnLaunch": True},
                    )
                ),
                add(
                    resource(
                        "aws:ec2/instance:Instance",
                        "bastion",
                        {"ami": "ami-1", "instanceType": "t3.micro", "subnetId": "subnet-1"},
                        deps={"subnetId": [urn("aws:ec2/subnet:Subnet", "public-a")]},
                    )
                ),
            ),
        ),
    ],
    "vpc-flow-logs-enabled": [
        (
            "a VPC without a flow log",
            add(resource("aws:ec2/vpc:Vpc", "vpc-2", {"cidrBlock": "10.1.0.0/16", "tags": stack_tags(PRIMARY)})),
        ),
        ("the VPC's flow log recording rejected traffic only", set_input("vpc-flow-log", "trafficType", "REJECT")),
        ("the VPC's flow log in a format without the addresses", set_input("vpc-flow-log", "logFormat", "${version} ${action}")),
    ],
    "ec2-security-group-ingress-restricted": [
        ("the database security group open to 0.0.0.0/0 on 5432", set_input("db-sg", "ingress.0.cidrBlocks", ["0.0.0.0/0"])),
        (
            "443 open to the world on a security group no load balancer uses",
            set_input("db-sg", "ingress.0", {"protocol": "tcp", "fromPort": 443, "toPort": 443, "ipv6CidrBlocks": ["::/0"]}),
        ),
        ("the load balancer's group opening all ports", set_input("lb-sg", "ingress.0.protocol", "-1")),
        (
            "two halves that add up to the internet on 22",
            set_input(
                "db-sg",
                "ingress.0",
                {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/1", "128.0.0.0/1"]},
            ),
        ),
        (
            "the default security group with an ingress rule",
            add(
                resource(
                    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                    "default-sg",
                    {
                        "vpcId": "vpc-1",
                        "ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}],
                        "tags": stack_tags(PRIMARY),
                    },
                )
            ),
        ),
        (
            "the database's security group with egress to the internet",
            together(
                set_input("db-sg", "egress", [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]),
                set_input("db-primary-cluster", "vpcSecurityGroupIds", ["sg-db"]),
                lambda rs: find(rs, "db-primary-cluster")["propertyDependencies"].update(
                    vpcSecurityGroupIds=[urn("aws:ec2/securityGroup:SecurityGroup", "db-sg")]
                ),
            ),
        ),
        (
            "the database's group admitting 10.0.0.0/8, beyond its /16 VPC",
            together(
                DB_TIER,
                set_input(
                    "db-sg", "ingress.0", {"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.0.0.0/8"]}
                ),
            ),
        ),
        (
            "the database's group admitting the internet-facing load balancer's group by its id",
            together(DB_TIER, set_input("db-sg", "ingress.0.securityGroups", ["sg-lb"])),
        ),
    ],
    "ec2-network-acl-admin-ports-closed": [
        (
            "a NACL rule opening SSH to the internet",
            add(
                resource(
                    "aws:ec2/networkAclRule:NetworkAclRule",
                    "ssh-in",
                    {
                        "networkAclId": "acl-1",
                        "ruleNumber": 100,
                        "egress": False,
                        "protocol": "tcp",
                        "ruleAction": "allow",
                        "cidrBlock": "0.0.0.0/0",
                        "fromPort": 22,
                        "toPort": 22,
                    },
                )
            ),
        ),
    ],
    "compute-and-data-not-public": [
        ("the writer instance made publicly accessible", set_input("db-primary-0", "publiclyAccessible", True)),
        ("an Aurora cluster-level publiclyAccessible", set_input("db-primary-cluster", "publiclyAccessible", True)),
        (
            "a Redshift cluster left public",
            add(
                resource(
                    "aws:redshift/cluster:Cluster",
                    "warehouse",
                    {"clusterIdentifier": "wh", "nodeType": "ra3.large", "publiclyAccessible": True, "tags": stack_tags(PRIMARY)},
                )
            ),
        ),
        (
            "an EC2 instance with a public IP",
            add(
                resource(
                    "aws:ec2/instance:Instance",
                    "bastion",
                    {
                        "ami": "ami-1",
                        "instanceType": "t3.micro",
                        "associatePublicIpAddress": True,
                        "tags": stack_tags(PRIMARY),
                        "rootBlockDevice": {"encrypted": True, "kmsKeyId": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/1111-platform"},
                    },
                )
            ),
        ),
        (
            "an EKS node group with SSH remote access",
            add(
                resource(
                    "aws:eks/nodeGroup:NodeGroup",
                    "nodes",
                    {
                        "clusterName": "eks",
                        "nodeRoleArn": "arn:aws:iam::123456789012:role/n",
                        "subnetIds": ["s"],
                        "tags": stack_tags(PRIMARY),
                        "scalingConfig": {"desiredSize": 1, "maxSize": 1, "minSize": 1},
                        "remoteAccess": {"ec2SshKey": "ops"},
                    },
                )
            ),
        ),
    ],
    "lb-listener-tls": [
        ("an HTTPS listener on the 2016 TLS policy", set_input("api-https", "sslPolicy", "ELBSecurityPolicy-2016-08")),
        (
            "an HTTPS listener on the 2017 TLS 1.2 policy (no TLS 1.3)",
            set_input("api-https", "sslPolicy", "ELBSecurityPolicy-TLS-1-2-2017-01"),
        ),
        ("an HTTPS listener with no TLS policy (the provider default is 2016-08)", set_input("api-https", "sslPolicy", DELETE)),
        ("a plain HTTP listener forwarding traffic by weight", set_input("api-https", "protocol", "HTTP")),
    ],
    "lb-alb-hardened": [
        ("an ALB passing invalid header fields on", set_input("api-lb", "dropInvalidHeaderFields", False)),
        (
            "an ALB leaving dropInvalidHeaderFields at the provider default (off)",
            set_input("api-lb", "dropInvalidHeaderFields", DELETE),
        ),
        ("an ALB only monitoring HTTP desync", set_input("api-lb", "desyncMitigationMode", "monitor")),
        ("an internet-facing ALB without its own security group", set_input("api-lb", "securityGroups", DELETE)),
    ],
    "lb-target-group-health-checked": [
        ("the canary target group with its health check off", set_input("api-canary", "healthCheck.enabled", False)),
        ("the stable target group checking the default path `/`", set_input("api-stable", "healthCheck.path", DELETE)),
        (
            "the stable target group with no health check block (default path and matcher)",
            set_input("api-stable", "healthCheck", DELETE),
        ),
        ("the canary target group accepting any 2xx-3xx", set_input("api-canary", "healthCheck.matcher", DELETE)),
    ],
}
