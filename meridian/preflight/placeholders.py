"""Values of the example stacks that only stand in for yours: an account, zone, addresses and
endpoints reserved for documentation. They pass every check (they are well-formed) and deploy
nothing real, so preflight names each one with its key: a warning, not a failure, since the
example stacks exist to be previewed."""

from __future__ import annotations

import ipaddress

from meridian.preflight.context import CheckResult, Context

EXAMPLE_ACCOUNT = "123456789012"  # the account id AWS documentation uses in its examples
# RFC 5737: documentation ranges, never routed on the internet
DOCUMENTATION_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")  # RFC 2606


def _example_domain(name: str) -> bool:
    name = name.lower().rstrip(".")
    return any(name == d or name.endswith("." + d) for d in EXAMPLE_DOMAINS)


def check_placeholders(ctx: Context) -> CheckResult:
    cfg = ctx.cfg
    result = CheckResult(
        "placeholders",
        "no value is a documentation placeholder: the example account 123456789012, RFC 5737 address ranges, "
        "RFC 2606 example domains, example zone ids (warnings: the example stacks are meant to be previewed)",
    )

    def placeholder(key: str, value: object, why: str) -> None:
        result.warnings.append(f"{cfg.where(key)} = {value}: {why}; replace it with yours before `pulumi up`")

    result.checked += 1
    if cfg.aws_account_id == EXAMPLE_ACCOUNT:
        placeholder("aws_account_id", cfg.aws_account_id, "the account AWS documentation uses in examples")
    cluster = cfg.cluster
    roles = [("cluster.deploy_role_arn", cluster.deploy_role_arn)]
    roles += [(f"cluster.operator_role_arns[{i}]", a) for i, a in enumerate(cluster.operator_role_arns)]
    roles += [(f"cluster.viewer_role_arns[{i}]", a) for i, a in enumerate(cluster.viewer_role_arns)]
    roles += [(f"cluster.pr_viewer_role_arns[{i}]", a) for i, a in enumerate(cluster.pr_viewer_role_arns)]
    for key, arn in roles:
        result.checked += 1
        if arn and arn.split(":")[4] == EXAMPLE_ACCOUNT:
            placeholder(key, arn, "a role in the documentation example account")
    for i, cidr in enumerate(cluster.public_access_cidrs):
        result.checked += 1
        if any(cidr.subnet_of(net) for net in DOCUMENTATION_NETS):
            placeholder(f"cluster.public_access_cidrs[{i}]", cidr, "an RFC 5737 documentation range: no runner has it")
    fo = cfg.failover
    result.checked += 2
    if _example_domain(fo.api_zone):
        placeholder("failover.api_zone", fo.api_zone, "an RFC 2606 example domain nobody can delegate")
    if fo.hosted_zone_id and "EXAMPLE" in fo.hosted_zone_id.upper():
        placeholder("failover.hosted_zone_id", fo.hosted_zone_id, "an example zone id")
    for i, sub in enumerate(cfg.alerts.subscriptions):
        result.checked += 1
        domain = sub.endpoint.rsplit("@", 1)[-1] if sub.protocol == "email" else ""
        if (domain and _example_domain(domain)) or f":{EXAMPLE_ACCOUNT}:" in sub.endpoint:
            placeholder(f"alerts.subscriptions[{i}].endpoint", sub.endpoint, "an example address: alerts would reach nobody")
    if cfg.aws_account_id == EXAMPLE_ACCOUNT:  # the example stacks' quotas are declared for an account that is nobody's
        for code, value in sorted(cfg.quotas.raised.items()):
            result.checked += 1
            placeholder(
                f"quotas.raised.{code}",
                value,
                "a quota declared for the example account, which preflight plans against but cannot read offline (a new "
                f"account's L-1216C47A is 5 vCPUs); put your account's applied value (`aws service-quotas "
                f"get-service-quota --quota-code {code} --service-code <service>`, per region)",
            )
    return result
