"""`meridian preflight --online`: what only the account (and public DNS) can answer, asked with the
runner's credentials. Every call is a read: nothing is created, changed or deleted.

A check that cannot get its answer (no credentials, access denied, a timeout) fails and says what it
could not read: an unanswered question is not a pass.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meridian.preflight.checks import ECR_IMAGE
from meridian.preflight.context import CheckResult, Context, Finding

# Docker and OCI media types of a multi-platform index, and of a single image's manifest.
INDEX_TYPES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")

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


def node_architecture(ami_type: str) -> str:
    """The CPU architecture of an EKS AMI type (AL2023_ARM_64_STANDARD -> arm64)."""
    return "arm64" if "ARM" in ami_type.upper() else "amd64"


def _platforms(ecr, aws: Aws, repo: str, tag: str) -> set[str]:
    """The architectures the image `repo:tag` runs on, from its manifest (or its config blob)."""
    got = ecr.batch_get_image(
        repositoryName=repo, imageIds=[{"imageTag": tag}], acceptedMediaTypes=[*INDEX_TYPES, *MANIFEST_TYPES]
    )
    if not got["images"]:
        reasons = "; ".join(f"{f.get('failureCode')}: {f.get('failureReason')}" for f in got.get("failures", []))
        raise LookupError(reasons or "no such image")
    manifest = json.loads(got["images"][0]["imageManifest"])
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        return {m["platform"]["architecture"] for m in manifest["manifests"] if m.get("platform", {}).get("os") != "unknown"}
    # one platform: its architecture is in the config blob
    url = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=manifest["config"]["digest"])["downloadUrl"]
    return {json.loads(aws.fetch(url))["architecture"]}


def online_images(ctx: Context, aws: Aws) -> CheckResult:
    arch = node_architecture(ctx.cfg.cluster.node_ami_type)
    result = CheckResult(
        "online-images",
        f"each region's ECR repository holds the image its containers run, built for the nodes' CPU ({arch}, from "
        "cluster.node_ami_type) (ecr:DescribeImages, ecr:BatchGetImage)",
    )
    images = sorted({(c.region, str(c.spec.get("image", ""))) for c in ctx.containers()})
    for region, image in images:
        m = ECR_IMAGE.match(image)
        if not m or not m["tag"]:
            continue  # the offline `images` check reports it
        result.checked += 1
        try:
            platforms = _platforms(aws.client("ecr", region), aws, m["repo"], m["tag"])
        except LookupError as e:
            result.findings.append(
                Finding(
                    "",
                    f"{image} is not in {region}'s repository ({e})",
                    "push it to the primary's repository (make image-push); replication copies it",
                )
            )
            continue
        except Exception as e:  # noqa: BLE001
            _unanswered(result, f"{image} in {region}", e)
            continue
        if arch not in platforms:
            result.findings.append(
                Finding(
                    "",
                    f"{image} is built for {', '.join(sorted(platforms))}; the nodes are {arch}: pods fail with 'exec format error'",
                    "build for the nodes' platform (make image: docker buildx --platform linux/arm64,linux/amd64)",
                )
            )
    return result


def online_cost_tags(ctx: Context, aws: Aws) -> CheckResult:
    result = CheckResult(
        "online-cost-tags",
        "each cost-allocation tag the stack activates is already known to AWS billing (ce:ListCostAllocationTags): "
        "activating one billing has not seen fails the `up`",
    )
    wanted = sorted(
        {str(ctx.inputs[r.urn].get("tagKey")) for r in ctx.of_type("aws:costexplorer/costAllocationTag:CostAllocationTag")}
    )
    if not wanted:
        return result
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
    for key in wanted:
        if key not in known:
            result.findings.append(
                Finding(
                    "",
                    f"billing has not seen tag {key} yet: activating it fails (it appears up to 24 h after a tagged resource runs)",
                    "first `up` without activation (meridian:cost.activate_cost_allocation_tags: false), then turn it on",
                )
            )
    return result


ONLINE_CHECKS: dict[str, Callable[[Context, Aws], CheckResult]] = {
    "online-account": online_account,
    "online-delegation": online_delegation,
    "online-images": online_images,
    "online-cost-tags": online_cost_tags,
}


def run_online_checks(ctx: Context, aws: Aws) -> list[CheckResult]:
    return [check(ctx, aws) for check in ONLINE_CHECKS.values()]
