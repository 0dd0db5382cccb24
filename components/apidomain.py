"""ApiDomain: the API's Route 53 hosted zone and, per region, a DNS-validated TLS certificate.

The zone is an existing one, already delegated from its parent (`failover.hosted_zone_id`):
DNS validation can only succeed in a zone resolvers reach. Creating the zone here
(`failover.create_zone`) is the first phase of a two-phase bring-up: the stack exports the name
servers, the parent delegates to them, then the certificates validate (docs/operations.md).
Each certificate covers the API name and every region's own name (`api-<region>.<zone>`, what a
rollout or a probe uses to reach one region directly, with valid TLS), the same names in every
region. ACM gives the same validation record for a name in every region of an account, so each
name's record is managed once and both regions' validations wait on all of them. Route 53 is a
global service; its zone is managed through the primary region's provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True, kw_only=True)
class ApiDomainArgs:
    zone_name: str
    """Hosted zone, e.g. `us.meridian.example.com`."""
    record: str
    """Label of the API name inside the zone, e.g. `api`."""
    providers: Mapping[str, aws.Provider]
    """region -> provider; one certificate per region (ACM certificates are regional)."""
    zone_provider: aws.Provider
    existing_zone_id: str | None = None

    @property
    def fqdn(self) -> str:
        return f"{self.record}.{self.zone_name}"

    def regional_fqdn(self, region: str) -> str:
        """One region's own name: `api-us-east-1.<zone>` (a single label: inside the zone, no wildcard)."""
        return f"{self.record}-{region}.{self.zone_name}"


class ApiDomain(pulumi.ComponentResource):
    zone_id: pulumi.Output[str]
    name_servers: pulumi.Output[list[str]] | None  # set when the stack creates the zone: delegate to these
    fqdn: str
    regional_fqdns: dict[str, str]  # region -> its own name, on its certificate too
    certificate_arns: dict[str, pulumi.Output[str]]  # region -> validated certificate ARN

    def __init__(self, name: str, args: ApiDomainArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:dns:ApiDomain", name, None, opts)
        zone_opts = pulumi.ResourceOptions(parent=self, provider=args.zone_provider)
        self.name_servers = None
        if args.existing_zone_id:
            self.zone_id = pulumi.Output.from_input(args.existing_zone_id)
        else:
            zone = aws.route53.Zone(
                f"{name}-zone",
                name=args.zone_name,
                comment=f"meridian API {args.fqdn}",
                opts=pulumi.ResourceOptions(parent=self, provider=args.zone_provider, protect=True),
            )  # delegation points here
            self.zone_id = zone.zone_id
            self.name_servers = zone.name_servers
        self.fqdn = args.fqdn
        self.regional_fqdns = {region: args.regional_fqdn(region) for region in args.providers}
        alternatives = sorted(self.regional_fqdns.values())

        certs = {
            region: aws.acm.Certificate(
                f"{name}-{region}-cert",
                domain_name=args.fqdn,
                subject_alternative_names=alternatives,
                validation_method="DNS",
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            for region, provider in args.providers.items()
        }
        first = next(iter(certs.values()))
        records = []
        for i, domain in enumerate([args.fqdn, *alternatives]):
            # ACM lists the options in no fixed order: pick each name's own
            option = first.domain_validation_options.apply(lambda opts, d=domain: next(o for o in opts if o.domain_name == d))
            records.append(
                aws.route53.Record(
                    f"{name}-cert-validation" if i == 0 else f"{name}-cert-validation-{domain.split('.')[0]}",
                    zone_id=self.zone_id,
                    name=option.resource_record_name,
                    type=option.resource_record_type,
                    records=[option.resource_record_value],
                    ttl=300,
                    opts=zone_opts,
                )
            )
        self.certificate_arns = {}
        for region, cert in certs.items():
            validation = aws.acm.CertificateValidation(
                f"{name}-{region}-cert-ready",
                certificate_arn=cert.arn,
                validation_record_fqdns=[r.fqdn for r in records],
                opts=pulumi.ResourceOptions(parent=cert, provider=args.providers[region]),
            )
            self.certificate_arns[region] = validation.certificate_arn
        self.register_outputs(
            {
                "zone_id": self.zone_id,
                "fqdn": self.fqdn,
                "regional_fqdns": self.regional_fqdns,
                "certificate_arns": self.certificate_arns,
                "name_servers": self.name_servers,
            }
        )
