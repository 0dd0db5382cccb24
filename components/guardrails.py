"""AccountGuardrails: the runtime backstops of one region of the account, which hold whatever the
policy pack cannot see (a bucket made by hand, a console change, a policy edited at runtime).

- IAM Access Analyzer, two per region: external access (`ACCOUNT`: any resource policy that lets
  a principal outside the account in) and unused access (`ACCOUNT_UNUSED_ACCESS`: roles, keys and
  permissions unused for `unused_access_age_days`), both findings in Security Hub / EventBridge.
- The account-level S3 public access block (all four settings): no bucket of the account can be
  made public, whoever creates it. An account-wide setting: created once, in the primary region.

AWS allows one account-level analyzer of each type per account and region, not adjustable
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-quotas.html), and one public
access block per account: only the stack that owns the account's guardrails
(`owns_account_guardrails`) composes this component (components.oversight.compose_guardrails), and
in an account that already runs its analyzers (`guardrails.access_analyzer: existing`) it creates
none, where a second would fail the `up` (meridian.preflight.analyzers checks them online).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Access Analyzer names are unique per account and region: the stack is in the name
ANALYZER_TYPES = {"external": "ACCOUNT", "unused": "ACCOUNT_UNUSED_ACCESS"}


@dataclass(frozen=True, kw_only=True)
class AccountGuardrailsArgs:
    stack: str
    region: str
    account_public_access_block: bool
    """True in exactly one region of one stack per account (the block is account-wide)."""
    create_access_analyzers: bool = True
    """False: the account already runs its account-level analyzers in this region (AWS allows one per type)."""
    unused_access_age_days: int = 90
    """Access unused this long becomes a finding (Access Analyzer accepts 1-365)."""

    def __post_init__(self) -> None:
        if not 1 <= self.unused_access_age_days <= 365:
            raise ValueError(f"unused_access_age_days must be 1..365, got {self.unused_access_age_days}")


class AccountGuardrails(pulumi.ComponentResource):
    analyzer_arns: dict[str, pulumi.Output[str]]  # "external" / "unused"

    def __init__(self, name: str, args: AccountGuardrailsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:guardrails:AccountGuardrails", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.analyzer_arns = {}
        for kind, analyzer_type in ANALYZER_TYPES.items() if args.create_access_analyzers else ():
            analyzer = aws.accessanalyzer.Analyzer(
                f"{name}-{kind}-access",
                analyzer_name=f"meridian-{args.stack}-{args.region}-{kind}-access",
                type=analyzer_type,
                configuration=(
                    {"unused_access": {"unused_access_age": args.unused_access_age_days}} if kind == "unused" else None
                ),
                opts=child,
            )
            self.analyzer_arns[kind] = analyzer.arn
        if args.account_public_access_block:
            aws.s3.AccountPublicAccessBlock(
                f"{name}-s3-public-access-block",
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                # an account-wide setting: a destroy of this stack must not open every bucket of the account
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
        self.register_outputs({"analyzer_arns": self.analyzer_arns})
