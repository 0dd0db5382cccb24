"""Route 53 failover: PRIMARY with a health check, SECONDARY for the same name."""

from __future__ import annotations

from .base import DELETE, DR, PRIMARY, Builder, Mutations, drop, find, set_input, together


def elb(region: str) -> str:
    """A region's load balancer DNS name, as the ALB reports it."""
    return f"test-api-1234567890.{region}.elb.amazonaws.com"


def build(b: Builder) -> None:
    zone = b.add("aws:route53/zone:Zone", "zone", {"name": "test.meridian.example.com"})
    for role_, region in (("primary", PRIMARY), ("secondary", DR)):
        check = b.add(
            "aws:route53/healthCheck:HealthCheck",
            f"{role_}-check",
            {
                "type": "HTTPS",
                "fqdn": elb(region),
                "port": 443,
                "resourcePath": "/healthz",
                "requestInterval": 10,
                "failureThreshold": 3,
            },
        )
        b.add(
            "aws:route53/record:Record",
            f"{role_}-record",
            {
                "zoneId": "ZTEST",
                "name": "api.test.meridian.example.com",
                "type": "CNAME",
                "ttl": 10,
                "records": [elb(region)],
                "setIdentifier": f"{role_}-{region}",
                "failoverRoutingPolicies": [{"type": role_.upper()}],
                "healthCheckId": f"hc-{role_}",
            },
            deps={"zoneId": [zone], "healthCheckId": [check]},
            tags=False,
        )


MUTATIONS: Mutations = {
    "route53-failover-record-ready": [
        (
            "the PRIMARY record's health check removed",
            together(
                set_input("primary-record", "healthCheckId", DELETE),
                lambda rs: find(rs, "primary-record")["propertyDependencies"].pop("healthCheckId"),
            ),
        ),
        ("the SECONDARY record removed", drop("secondary-record")),
    ],
}
