"""Stack-wide tags and the per-region AWS providers that apply them.

Every AWS resource is created through the one explicit provider of its region, and that provider
carries the stack's tags as `default_tags`: `meridian:stack`, `meridian:zone`, `meridian:region`
(the provider's own) and `meridian:cost-center`. The AWS provider merges them into each taggable
resource's `tags_all` (resource tags win), so a component sets only what is its own (e.g.
`meridian:tenant`). This replaces the stack transformation (deprecated in the SDK, and invisible to
`pulumi import` and to resources created by other programs with the same provider settings).

`allowed_account_ids` pins every provider to the stack's account (`meridian:aws_account_id`):
credentials for another account make `pulumi up` stop before it creates anything.

`ignore_tags` hides the tags set at run time (`RUNTIME_TAGS`: the cap enforcer's over-budget tag on
tenant keys) from every resource's state, so `pulumi refresh` / `up --refresh` keep them.

Default tags are not in a resource's inputs (a real preview shows them only in `tags_all`, after
the provider's Check): the policy pack's tag rule reads them from the resource's provider
(policies/tags.py), and so does every offline check that needs a resource's effective tags.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_aws as aws

from components.functions.cap_enforcer import OVER_BUDGET_TAG

TAG_STACK = "meridian:stack"
TAG_ZONE = "meridian:zone"
TAG_REGION = "meridian:region"
TAG_COST_CENTER = "meridian:cost-center"
TAG_TENANT = "meridian:tenant"
TAG_CELL = "meridian:cell"
# Tags something other than Pulumi owns at run time: every provider ignores them (`ignore_tags`), so
# neither a refresh nor an `up` sees or removes them.
RUNTIME_TAGS = (OVER_BUDGET_TAG,)


@dataclass(frozen=True, kw_only=True)
class ProviderSettings:
    stack: str
    zone: str
    cost_center: str
    account_id: str | None = None
    """The only account the providers may act in; None leaves them unpinned (preflight warns)."""
    cell: str | None = None
    """A cell stack's name: its resources carry `meridian:cell` and, as `meridian:stack`, their
    platform's name (`stack`), so what the platform finds by that tag (the cap enforcer's tenant
    keys, the replication roles' tenant keys, the backup selection, the zone's budget) covers them."""

    def tags(self, region: str) -> dict[str, str]:
        tags = {TAG_STACK: self.stack, TAG_ZONE: self.zone, TAG_REGION: region, TAG_COST_CENTER: self.cost_center}
        return tags if self.cell is None else {**tags, TAG_CELL: self.cell}


_SETTINGS: list[ProviderSettings] = []
_PROVIDERS: dict[str, aws.Provider] = {}


def configure_providers(settings: ProviderSettings) -> None:
    """Set what every regional provider carries; once per program run, before the first `regional_provider`
    (a new run in the same process starts with new providers)."""
    _SETTINGS[:] = [settings]
    _PROVIDERS.clear()


def regional_provider(region: str) -> aws.Provider:
    """The one explicit AWS provider of a region, named after it; every regional resource uses one."""
    if not _SETTINGS:
        raise RuntimeError("configure_providers(...) first: a provider without the stack's default tags and account")
    if region not in _PROVIDERS:
        settings = _SETTINGS[0]
        _PROVIDERS[region] = aws.Provider(
            # A cell's are its own: `pulumi state move` copies a moved resource's provider into the
            # destination and refuses one whose URN is there with other inputs (a cell's tag differs).
            region if settings.cell is None else f"{settings.cell}-{region}",
            region=region,
            default_tags={"tags": settings.tags(region)},
            allowed_account_ids=[settings.account_id] if settings.account_id else None,
            # The cap enforcer sets and removes this tag on tenant keys at run time (components.cost):
            # seen as drift, `pulumi up --refresh` would remove it and un-cap the tenant.
            ignore_tags={"keys": list(RUNTIME_TAGS)},
        )
    return _PROVIDERS[region]
