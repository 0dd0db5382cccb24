"""`meridian preflight --online`: what only the account (and public DNS) can answer, asked with the
runner's credentials. Every call is a read: nothing is created, changed or deleted.

A check that cannot get its answer (no credentials, access denied, a timeout) fails and says what it
could not read: an unanswered question is not a pass.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meridian.preflight.analyzers import online_access_analyzers
from meridian.preflight.context import CheckResult, Context, Finding

Resolver = Callable[[str], set[str]]  # a zone name -> the name servers public DNS returns for it


def public_name_servers(zone: str) -> set[str]:
    """The NS records public resolvers return for `zone` (dnspython, the system's resolvers)."""
    import dns.resolver

    answer = dns.resolver.resolve(zone, "NS", lifetime=10)
    return {str(r.target).rstrip(".").lower() for r in answer}


@dataclass
class Aws:
    """boto3 clients of one session, by service and region."""

    session: Any
    resolve: Resolver = public_name_servers
    fetch: Callable[[str], bytes] = field(default=lambda url: urllib.request.urlopen(url, timeout=15).read())

    def client(self, service: str, region: str):
        return self.session.client(service, region_name=region)


def _unanswered(result: CheckResult, what: str, error: Exception) -> None:
    result.findings.append(
        Finding(
            "",
            f"could not read {what}: {type(error).__name__}: {error}",
            "run with credentials of the stack's account that may read it (the plan role of docs/ci.md)",
        )
    )


def online_account(ctx: Context, aws: Aws) -> CheckResult:
    result = CheckResult(
        "online-account", "the caller's credentials belong to the stack's meridian:aws_account_id (sts:GetCallerIdentity)"
    )
    expected = ctx.cfg.aws_account_id
    try:
        identity = aws.client("sts", ctx.cfg.regions.primary.region).get_caller_identity()
    except Exception as e:  # noqa: BLE001 - any failure to answer is reported, never a pass
        _unanswered(result, "the caller's identity", e)
        return result
    result.checked = 1
    if expected is None:
        result.findings.append(
            Finding("", f"meridian:aws_account_id is not set; these credentials are of account {identity['Account']}", "set it")
        )
    elif identity["Account"] != expected:
        result.findings.append(
            Finding(
                "",
                f"the credentials ({identity['Arn']}) are of account {identity['Account']}, not the stack's {expected}",
                "use the stack's account's role, or fix meridian:aws_account_id",
            )
        )
    return result


def online_delegation(ctx: Context, aws: Aws) -> CheckResult:
    fo = ctx.cfg.failover
    result = CheckResult(
        "online-delegation",
        "public DNS delegates the API zone to the Route 53 zone the stack writes to: the NS records resolvers "
        "return for api_zone are that zone's delegation set (route53:GetHostedZone, a public NS query)",
    )
    if not fo.hosted_zone_id:
        result.findings.append(
            Finding(
                "",
                "no meridian:failover.hosted_zone_id: the stack creates its zone, which nothing delegates to yet",
                "see zone-delegation",
            )
        )
        return result
    try:
        zone = aws.client("route53", "us-east-1").get_hosted_zone(Id=fo.hosted_zone_id)
    except Exception as e:  # noqa: BLE001
        _unanswered(result, f"hosted zone {fo.hosted_zone_id}", e)
        return result
    result.checked = 1
    name = zone["HostedZone"]["Name"].rstrip(".").lower()
    if name != fo.api_zone.lower():
        result.findings.append(
            Finding("", f"zone {fo.hosted_zone_id} is {name}, not meridian:failover.api_zone {fo.api_zone}", "fix one of the two")
        )
        return result
    if zone["HostedZone"].get("Config", {}).get("PrivateZone"):
        result.findings.append(
            Finding("", f"zone {fo.hosted_zone_id} is private: resolvers outside its VPCs never see it", "use a public zone")
        )
        return result
    ours = {ns.rstrip(".").lower() for ns in zone.get("DelegationSet", {}).get("NameServers", [])}
    try:
        public = aws.resolve(fo.api_zone)
    except Exception as e:  # noqa: BLE001 - NXDOMAIN, no answer, timeout: not delegated as far as we can tell
        result.findings.append(
            Finding(
                "",
                f"public DNS returns no NS records for {fo.api_zone} ({type(e).__name__}): it is not delegated",
                f"add NS records for {fo.api_zone} in its parent zone: {', '.join(sorted(ours))}",
            )
        )
        return result
    if public != ours:
        result.findings.append(
            Finding(
                "",
                f"public DNS delegates {fo.api_zone} to {', '.join(sorted(public))}, not to zone {fo.hosted_zone_id} "
                f"({', '.join(sorted(ours))}): records and certificate validation would land where nobody looks",
                "point the parent's NS records at the zone's delegation set",
            )
        )
    return result


def online_image(ctx: Context, aws: Aws) -> CheckResult:
    """The offline `image` check again, with the image's platforms read from each region's ECR
    (ecr:BatchGetImage, and the config blob of a one-platform image) instead of the build manifest."""
    from meridian.preflight.image import EcrPlatforms, check_image

    return check_image(ctx, EcrPlatforms(aws.session, fetch=aws.fetch))


def online_cost_tags(ctx: Context, aws: Aws) -> CheckResult:
    from components.cost import COST_ALLOCATION_TAGS

    result = CheckResult(
        "online-cost-tags",
        "each cost-allocation tag the stack activates is already known to AWS billing (ce:ListCostAllocationTags): "
        "activating one billing has not seen fails the `up`; while the stack does not activate them, says when it can",
    )
    activated = sorted(
        {str(ctx.inputs[r.urn].get("tagKey")) for r in ctx.of_type("aws:costexplorer/costAllocationTag:CostAllocationTag")}
    )
    wanted = activated or sorted(COST_ALLOCATION_TAGS)
    try:
        ce = aws.client("ce", "us-east-1")
        known: set[str] = set()
        for start in range(0, len(wanted), 100):  # the API takes at most 100 keys a call
            kwargs: dict[str, Any] = {"TagKeys": wanted[start : start + 100], "Type": "UserDefined"}
            while True:
                page = ce.list_cost_allocation_tags(**kwargs)
                known |= {t["TagKey"] for t in page.get("CostAllocationTags", [])}
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
    except Exception as e:  # noqa: BLE001
        _unanswered(result, "the account's cost-allocation tags", e)
        return result
    result.checked = len(wanted)
    missing = [key for key in wanted if key not in known]
    if activated:
        for key in missing:
            result.findings.append(
                Finding(
                    "",
                    f"billing has not seen tag {key} yet: activating it fails (it appears up to 24 h after a tagged resource runs)",
                    f"set {ctx.cfg.where('cost.cost_allocation_tags_in_billing')} to false until "
                    "`aws ce list-cost-allocation-tags` lists it",
                )
            )
    elif missing:
        result.notes.append(f"billing has not seen {', '.join(missing)} yet: keep cost.cost_allocation_tags_in_billing false")
    else:
        result.notes.append(
            f"billing knows {', '.join(wanted)}: set {ctx.cfg.where('cost.cost_allocation_tags_in_billing')} to true to activate them"
        )
    return result


ONLINE_CHECKS: dict[str, Callable[[Context, Aws], CheckResult]] = {
    "online-account": online_account,
    "online-delegation": online_delegation,
    "image": online_image,  # replaces the offline result of the same name
    "online-cost-tags": online_cost_tags,
    "online-access-analyzers": online_access_analyzers,
}


def run_online_checks(ctx: Context, aws: Aws) -> list[CheckResult]:
    return [check(ctx, aws) for check in ONLINE_CHECKS.values()]
