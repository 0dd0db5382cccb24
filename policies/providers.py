"""Provider configuration: where a provider sends its API calls and whose account it acts in.

A provider's settings apply to every resource under it, so the rules reading resources never see
them: an `endpoints` override sends every call of a service (with the data it carries) to another
host, an `assumeRoles` role of another account deploys there, and a kubeconfig names the cluster
every Kubernetes object goes to. Provider inputs arrive as JSON text for nested values.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import urlparse

from ruleutil import (
    AWS_PROVIDER,
    CRITICAL,
    UNKNOWN,
    as_list,
    dig,
    known,
    peek,
    provider_accounts,
    resource_policy,
    truthy,
    unknown,
)

AWS_NATIVE_PROVIDER = "pulumi:providers:aws-native"
K8S_PROVIDER = "pulumi:providers:kubernetes"


_EKS_HOST = re.compile(r"^[0-9a-z]+\.[a-z0-9]+\.(?P<region>[a-z0-9-]+)\.eks\.amazonaws\.com$")


def _decoded(value: Any) -> Any:
    """A provider input as plain data: JSON text decoded, unknown leaves kept as `UNKNOWN`."""
    value = known(value)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _arn_account(arn: Any) -> str | None:
    parts = str(arn).split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


_REGION_PART = r"(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d+)"
# the host forms AWS itself serves (no customer-chosen label: an API Gateway id or a bucket name is not one)
_AWS_HOSTS = (
    re.compile(rf"^[a-z0-9-]+(\.dualstack)?\.{_REGION_PART}\.amazonaws\.com$"),  # s3.us-east-1, s3-fips.dualstack.us-east-1
    re.compile(rf"^[a-z0-9-]+\.{_REGION_PART}\.api\.aws$"),  # dual-stack endpoints of newer services
    re.compile(
        rf"^(\*\.)?vpce-[0-9a-z-]+\.[a-z0-9-]+\.{_REGION_PART}\.vpce\.amazonaws\.com$"
    ),  # the stack's own interface endpoints
    re.compile(r"^[a-z0-9-]+\.amazonaws\.com$"),  # global endpoints: sts, iam, route53, ...
)


def endpoint_problem(url: Any, allowed: set[str]) -> str | None:
    """Why an endpoint override may leave the zone, or None: it must be a host AWS serves for a
    service (`<service>[.dualstack].<region>.amazonaws.com`, `<service>.<region>.api.aws`, an
    interface endpoint's `vpce-...` name, or a global `<service>.amazonaws.com`) in an allowed region."""
    host = urlparse(str(url) if "://" in str(url) else f"https://{url}").hostname or ""
    match = next((m for m in (p.match(host) for p in _AWS_HOSTS) if m), None)
    if match is None:
        return f"{url} is not a service endpoint AWS serves"
    region = match.groupdict().get("region")
    return f"{url} is in {region}, outside the zone" if region and region not in allowed else None


def _role_problems(what: str, roles: Any, accounts: set[str]) -> list[str]:
    out = []
    for i, role in enumerate(as_list(roles)):
        arn = role.get("roleArn") if isinstance(role, dict) else role
        if arn is UNKNOWN:
            raise unknown(f"{what}.{i}.roleArn")
        account = _arn_account(arn)
        if arn and account not in accounts:
            out.append(
                f"Provider must act in the stack's own account ({', '.join(sorted(accounts)) or 'none configured'}): "
                f"`{what}` assumes {arn}, in account {account or '?'}"
            )
    return out


def _aws_problems(type_: str, props: Any, allowed: set[str], accounts: set[str]) -> list[str]:
    out = []
    if type_ == AWS_PROVIDER:
        declared = provider_accounts(props)
        if not declared or not declared <= accounts:
            out.append(
                f"AWS provider must declare `allowedAccountIds` within the stack's account ({', '.join(sorted(accounts)) or 'none configured'}), "
                f"not {sorted(declared) or 'none'}: the provider then refuses credentials, and assumed roles, of any other account"
            )
    for field in ("assumeRoles", "assumeRole", "assumeRoleWithWebIdentity"):
        value = _decoded(peek(props, field))
        if value is UNKNOWN:
            raise unknown(field)
        if value:
            out += _role_problems(field, value, accounts)
    endpoints = _decoded(peek(props, "endpoints"))
    if endpoints is UNKNOWN:
        raise unknown("endpoints")
    for i, entry in enumerate(as_list(endpoints)):
        for service, url in entry.items() if isinstance(entry, dict) else ():
            if url is UNKNOWN:
                raise unknown(f"endpoints.{i}.{service}")
            problem = endpoint_problem(url, allowed) if url else None
            if problem:
                out.append(f"Provider endpoint override `endpoints.{service}` must stay on AWS in the zone: {problem}")
    return out


def _kubeconfig_problems(props: Any, allowed: set[str], accounts: set[str]) -> list[str]:
    config = _decoded(peek(props, "kubeconfig"))
    if config is UNKNOWN:
        raise unknown("kubeconfig")
    if config is None:
        return ["Kubernetes provider must name its cluster in `kubeconfig` (without one it deploys to the ambient context)"]
    if not isinstance(config, dict):
        return ["Kubernetes provider `kubeconfig` must be JSON (as the cluster component writes it) so its cluster can be placed"]
    out = []
    for cluster in as_list(config.get("clusters")):
        server = (cluster.get("cluster") or {}).get("server") if isinstance(cluster, dict) else None
        if server is UNKNOWN:
            raise unknown("kubeconfig.clusters.server")
        match = _EKS_HOST.match(urlparse(str(server)).hostname or "")
        if match is None:
            out.append(f"Kubernetes provider must deploy to an EKS cluster endpoint, not {server}")
        elif match.group("region") not in allowed:
            out.append(f"Kubernetes provider must deploy to a cluster in the zone: {server} is in {match.group('region')}")
    for user in as_list(config.get("users")):
        args = (
            [str(a) for a in as_list(((user.get("user") or {}).get("exec") or {}).get("args"))] if isinstance(user, dict) else []
        )
        for flag, value in itertools.pairwise(args):
            if flag == "--role-arn" and _arn_account(value) not in accounts:
                out.append(f"Kubernetes provider must authenticate in the stack's own account, not as {value}")
            if flag == "--region" and value not in allowed:
                out.append(f"Kubernetes provider must authenticate through an allowed region, not {value}")
    return out


def _applies_nothing(props: Any) -> list[str]:
    """A Kubernetes provider that renders manifests to files (`renderYamlToDirectory`) or skips updates when it
    cannot reach the cluster (`skipUpdateUnreachable`) leaves the cluster without what the plan shows through it:
    admission backstops, NetworkPolicies, quotas (pulumi-kubernetes provider configuration; security review 21, K01)."""
    out = []
    if dig(props, "renderYamlToDirectory") not in (None, ""):  # unknown at preview: an advisory
        out.append(
            "Kubernetes provider must apply what the plan deploys through it, not render it to files (`renderYamlToDirectory`): "
            "nothing reaches the cluster, the tenant namespaces' guards included"
        )
    if truthy(dig(props, "skipUpdateUnreachable", default=False)):
        out.append(
            "Kubernetes provider must not skip updates when the cluster is unreachable (`skipUpdateUnreachable`): the "
            "update reports success while the cluster keeps its old guards"
        )
    return out


def check_provider(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    allowed = set(config.get("allowedRegions") or [])
    accounts = {str(a) for a in config.get("accountIds") or []}
    if not allowed:
        return ["allowedRegions is not configured for this stack: run `meridian policy --write-config`"]
    if type_ == K8S_PROVIDER:
        return _kubeconfig_problems(props, allowed, accounts) + _applies_nothing(props)
    return _aws_problems(type_, props, allowed, accounts)


provider_in_zone = resource_policy(
    "provider-account-and-endpoints-in-zone",
    what="Checks that every AWS provider declares `allowedAccountIds` within the stack's account (`accountIds`); that AWS "
    "and AWS Cloud Control (`aws-native`) providers assume roles (`assumeRoles`, `assumeRole`, "
    "`assumeRoleWithWebIdentity`) only of that account and override `endpoints` only with AWS endpoints of an allowed "
    "region (or a global AWS endpoint); and that every Kubernetes provider's kubeconfig names an EKS endpoint in an "
    "allowed region, authenticating with a role of the stack's account through an allowed region, and that it applies what "
    "the plan deploys through it (no `renderYamlToDirectory`, no `skipUpdateUnreachable`)",
    why="A provider's settings apply to every resource under it and no resource rule reads them: an endpoint override "
    "sends a service's calls, and the data in them, to another host or region, and a role of another account deploys the "
    "stack's resources, and their data, into that account.",
    types=[AWS_PROVIDER, AWS_NATIVE_PROVIDER, K8S_PROVIDER],
    check=check_provider,
    severity=CRITICAL,
    config={
        "allowedRegions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "AWS regions inside the stack's residency zone (generated from the stack config)",
        },
        "accountIds": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the stack's AWS account (generated from the stack setting aws_account_id)",
        },
    },
    required=["allowedRegions"],
    remediation="Build providers as the program does (components: one per region, `allowed_account_ids=[<the stack setting aws_account_id>]`, "
    "no endpoint overrides); to deploy with a role, assume one of the stack's own account; the cluster component writes each "
    "kubeconfig for its own cluster.",
    limits="A role's account is read from its ARN; what the role may do is the IAM rules'. An interface endpoint's `vpce-` name is admitted by its region, its owner not compared. HTTP proxies (`httpProxy`, "
    "`httpsProxy`) and a custom CA bundle are not judged. A kubeconfig in YAML is refused, not parsed. The ambient "
    "credentials of a provider without `assumeRoles` are the caller's, held to the account only by `allowedAccountIds`.",
    tags=["residency", "iam"],
)

POLICIES = [provider_in_zone]
