"""RegionNetwork: one region's VPC over N AZs with public / private / data tiers.

Public subnets hold load balancers and NAT gateways; private subnets hold EKS nodes and pods and
reach the internet through NAT; data subnets hold databases and have no internet route at all.
S3 and DynamoDB gateway endpoints and STS / ECR / Secrets Manager interface endpoints keep that traffic off NAT
(and let the database password's rotation function, in the data subnets, reach Secrets Manager). VPC flow logs go to a KMS-encrypted
CloudWatch log group. The default security group is emptied so nothing lands in it by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.keys import customer_key
from components.policydocs import assume_role_policy
from stackconfig.planning import plan_subnets

GATEWAY_ENDPOINTS = ("s3", "dynamodb")
INTERFACE_ENDPOINTS = ("sts", "ecr.api", "ecr.dkr", "secretsmanager")


@dataclass(frozen=True, kw_only=True)
class RegionNetworkArgs:
    region: str
    """AWS region of the network; must match the provider passed in `opts.providers`."""
    cidr: str
    """VPC CIDR (/16 to /20)."""
    az_count: int = 3
    """Availability zones spanned; one subnet per tier per AZ."""
    nat_gateways: Literal["per-az", "single"] = "per-az"
    """`per-az` survives an AZ outage; `single` is cheaper for non-production stacks."""
    flow_log_retention_days: int = 365
    """CloudWatch retention of VPC flow logs."""

    def __post_init__(self) -> None:
        if self.nat_gateways not in ("per-az", "single"):
            raise ValueError(f"nat_gateways must be 'per-az' or 'single', got {self.nat_gateways!r}")


class RegionNetwork(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    data_subnet_ids: list[pulumi.Output[str]]
    data_subnet_cidrs: list[str]
    flow_log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: RegionNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:network:RegionNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = plan_subnets(args.cidr, args.az_count)
        azs = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(parent=self))
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        vpc_child = pulumi.ResourceOptions(parent=self.vpc)
        # Strip all rules from the default SG: resources that forget a security group get no access.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id, opts=vpc_child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, opts=vpc_child)

        subnets: dict[str, list[aws.ec2.Subnet]] = {tier: [] for tier in plan}
        elb_role = {"public": {"kubernetes.io/role/elb": "1"}, "private": {"kubernetes.io/role/internal-elb": "1"}}
        for tier, cidrs in plan.items():
            for i, cidr in enumerate(cidrs):
                subnets[tier].append(
                    aws.ec2.Subnet(
                        f"{name}-{tier}-{i}",
                        vpc_id=self.vpc.id,
                        cidr_block=cidr,
                        availability_zone=azs.names[i],
                        map_public_ip_on_launch=False,
                        tags={"Name": f"{name}-{tier}-{i}", "meridian:tier": tier, **elb_role.get(tier, {})},
                        opts=vpc_child,
                    )
                )

        public_rt = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=self.vpc.id, opts=vpc_child)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=pulumi.ResourceOptions(parent=public_rt),
        )
        for i, subnet in enumerate(subnets["public"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=public_rt.id,
                opts=pulumi.ResourceOptions(parent=public_rt),
            )

        nat_count = args.az_count if args.nat_gateways == "per-az" else 1
        nats = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"{name}-nat-{i}-eip", domain="vpc", opts=vpc_child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=subnets["public"][i].id,
                    opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=[igw]),
                )
            )

        private_rts = []
        for i, subnet in enumerate(subnets["private"]):
            rt = aws.ec2.RouteTable(f"{name}-private-{i}-rt", vpc_id=self.vpc.id, opts=vpc_child)
            aws.ec2.Route(
                f"{name}-private-{i}-default",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[i % nat_count].id,
                opts=pulumi.ResourceOptions(parent=rt),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}-rta", subnet_id=subnet.id, route_table_id=rt.id, opts=pulumi.ResourceOptions(parent=rt)
            )
            private_rts.append(rt)

        # Data tier: local routes only (plus the gateway endpoints below).
        data_rt = aws.ec2.RouteTable(f"{name}-data-rt", vpc_id=self.vpc.id, opts=vpc_child)
        for i, subnet in enumerate(subnets["data"]):
            aws.ec2.RouteTableAssociation(
                f"{name}-data-{i}-rta",
                subnet_id=subnet.id,
                route_table_id=data_rt.id,
                opts=pulumi.ResourceOptions(parent=data_rt),
            )

        endpoint_rts = [rt.id for rt in private_rts] + [data_rt.id]
        for service in GATEWAY_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=endpoint_rts,
                opts=vpc_child,
            )

        # Interface endpoints keep the nodes' calls that matter most off NAT and inside the region: STS
        # (IRSA / Pod Identity credentials), ECR (image pulls; the layers come through the S3 gateway) and
        # Secrets Manager (the database password, read by pods and rotated from the data subnets).
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            description=f"{name}: HTTPS to the interface VPC endpoints from inside the VPC",
            vpc_id=self.vpc.id,
            ingress=[
                {
                    "description": "HTTPS from the VPC",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [args.cidr],
                }
            ],
            egress=[],
            opts=vpc_child,
        )
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}-endpoint",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                subnet_ids=[s.id for s in subnets["private"]],
                security_group_ids=[endpoint_sg.id],
                private_dns_enabled=True,
                opts=vpc_child,
            )

        flow_key = customer_key(
            f"{name}-flowlogs-key", f"{name} VPC flow logs", parent=self, service_principals=[f"logs.{args.region}.amazonaws.com"]
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flowlogs",
            retention_in_days=args.flow_log_retention_days,
            kms_key_id=flow_key.arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flowlogs-role",
            assume_role_policy=account_id.apply(lambda acct: assume_role_policy("vpc-flow-logs.amazonaws.com", acct)),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flowlogs-write",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                                "Resource": [arn, f"{arn}:*"],
                            }
                        ],
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        aws.ec2.FlowLog(
            f"{name}-flowlog",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            opts=vpc_child,
        )

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in subnets["public"]]
        self.private_subnet_ids = [s.id for s in subnets["private"]]
        self.data_subnet_ids = [s.id for s in subnets["data"]]
        self.data_subnet_cidrs = list(plan["data"])
        self.flow_log_group_name = log_group.name
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "data_subnet_ids": self.data_subnet_ids,
                "flow_log_group_name": self.flow_log_group_name,
            }
        )
