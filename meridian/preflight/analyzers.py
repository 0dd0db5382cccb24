"""`online-access-analyzers`: the account-level IAM Access Analyzers the stack creates do not exist
yet under another name, and those it relies on (`guardrails.access_analyzer: existing`) do.

AWS allows one account-level analyzer of each type per account and region, a quota that cannot be
raised (https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-quotas.html): a second
`ACCOUNT` or `ACCOUNT_UNUSED_ACCESS` analyzer fails the `up` with ServiceQuotaExceededException.
An organization-level analyzer (`ORGANIZATION*`, from the organization's management or delegated
administrator account) counts against another quota and covers the account too.
"""

from __future__ import annotations

from typing import Any, Protocol

from meridian.preflight.context import CheckResult, Context, Finding


class Clients(Protocol):
    """What the check needs of `meridian.preflight.online.Aws`: a boto3 client by service and region."""

    def client(self, service: str, region: str) -> Any: ...


ANALYZER = "aws:accessanalyzer/analyzer:Analyzer"
# account-level type -> the types that watch the account for the same thing
COVERED_BY = {
    "ACCOUNT": ("ACCOUNT", "ORGANIZATION"),
    "ACCOUNT_UNUSED_ACCESS": ("ACCOUNT_UNUSED_ACCESS", "ORGANIZATION_UNUSED_ACCESS"),
}
WHAT = {"ACCOUNT": "external access", "ACCOUNT_UNUSED_ACCESS": "unused access"}


def _active(aws: Clients, region: str) -> dict[str, list[str]]:
    """Analyzer type -> names of the region's analyzers that are not being deleted (accessanalyzer:ListAnalyzers)."""
    client = aws.client("accessanalyzer", region)
    out: dict[str, list[str]] = {}
    kwargs: dict = {}
    while True:
        page = client.list_analyzers(**kwargs)
        for analyzer in page.get("analyzers", []):
            if analyzer.get("status") != "FAILED":
                out.setdefault(analyzer["type"], []).append(analyzer["name"])
        if not page.get("nextToken"):
            return out
        kwargs["nextToken"] = page["nextToken"]


def online_access_analyzers(ctx: Context, aws: Clients) -> CheckResult:
    result = CheckResult(
        "online-access-analyzers",
        "one account-level IAM Access Analyzer of each type per account and region, not adjustable "
        "(https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-quotas.html): the stack creates one only "
        "where the account has none of that type under another name, and relies on the account's "
        "(guardrails.access_analyzer: existing) only where it exists (accessanalyzer:ListAnalyzers)",
    )
    cfg = ctx.cfg
    if not cfg.owns_account_guardrails:
        result.notes.append("another stack of the account owns its guardrails (owns_account_guardrails: false): nothing to check")
        return result
    planned: dict[tuple[str, str], tuple[str, str]] = {}  # (region, type) -> (urn, name)
    for reg in ctx.of_type(ANALYZER):
        inputs = ctx.inputs[reg.urn]
        planned[(ctx.plan.region_of(reg), str(inputs.get("type")))] = (reg.urn, str(inputs.get("analyzerName")))
    key = cfg.where("guardrails.access_analyzer")
    for region in (cfg.regions.primary.region, cfg.regions.dr.region):
        try:
            active = _active(aws, region)
        except Exception as e:  # noqa: BLE001 - an unanswered question is not a pass
            result.findings.append(
                Finding(
                    "",
                    f"could not read the Access Analyzers of {region}: {type(e).__name__}: {e}",
                    "run with credentials of the stack's account that may call access-analyzer:ListAnalyzers",
                )
            )
            continue
        for analyzer_type, covering in COVERED_BY.items():
            result.checked += 1
            mine = planned.get((region, analyzer_type))
            if mine is not None:
                urn, name = mine
                others = [n for n in active.get(analyzer_type, []) if n != name]
                if others:
                    result.findings.append(
                        Finding(
                            urn,
                            f"{region} already has the account-level {analyzer_type} analyzer {others[0]}: AWS allows one "
                            "per account and region, so creating this one fails the `up`",
                            f"set {key} to existing (the account's analyzer watches for {WHAT[analyzer_type]}), or delete "
                            f"{others[0]} if nothing else relies on it",
                        )
                    )
            elif cfg.guardrails.access_analyzer == "existing":
                if not any(active.get(t) for t in covering):
                    result.findings.append(
                        Finding(
                            "",
                            f"{key} is existing, but {region} has no {' or '.join(covering)} analyzer: nothing watches "
                            f"the account for {WHAT[analyzer_type]} there",
                            f"set {key} to create, or create the account's analyzer first",
                        )
                    )
            else:
                result.findings.append(
                    Finding(
                        "",
                        f"the plan creates no {analyzer_type} analyzer in {region} although {key} is create",
                        "keep components.guardrails.AccountGuardrails in the stack (compose_guardrails)",
                    )
                )
    return result
