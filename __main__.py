"""meridian: one residency zone's region pair. Composition only: config -> components -> exports."""

import pulumi

from components.config import ConfigError, from_engine
from components.network import RegionNetwork, RegionNetworkArgs
from components.tagging import register_stack_tags, regional_provider

stack = pulumi.get_stack()
try:
    cfg = from_engine(stack)
except ConfigError as exc:
    raise pulumi.RunError(f"invalid stack config:\n{exc}") from None

register_stack_tags(stack=stack, zone=cfg.zone, cost_center=cfg.cost.cost_center)

regions: dict[str, dict[str, pulumi.Output]] = {}
for role, spec in cfg.regions.both:
    provider = regional_provider(spec.region)
    network = RegionNetwork(
        f"{stack}-{spec.region}-net",
        RegionNetworkArgs(
            region=spec.region,
            cidr=str(spec.cidr),
            az_count=cfg.network.az_count,
            nat_gateways=cfg.network.nat_gateways,
            flow_log_retention_days=cfg.network.flow_log_retention_days,
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    regions[role] = {"region": spec.region, "vpc_id": network.vpc_id}

pulumi.export("zone", cfg.zone)
pulumi.export("regions", regions)
pulumi.export("failover_detection_bound_s", cfg.failover.detection_bound_s)
