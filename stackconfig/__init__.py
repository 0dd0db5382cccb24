"""Typed stack configuration: the one parser for the Pulumi program and for the tooling.

Every key of a stack lives under the `meridian:` namespace: project defaults in `Pulumi.yaml`,
per-stack values in `Pulumi.<stack>.yaml`. The program reaches the merged values through the
engine (`from_engine`); the tooling reads the two YAML files itself (`load_stack`). Both hand the
same mapping to `validate`, so both see the same truth and the same errors.

A bad config raises `ConfigError` listing every problem at once: the file, the key path, what is
wrong and what is allowed.

This package sits below both `components/` and `meridian/` and imports neither:
  models     the pydantic models, one per section, and the residency zones
  checks/    the rules that span keys, one module per section
  parsing    values -> StackConfig or ConfigError (pydantic's errors plus the checks')
  providers  keys of other namespaces, checked against the installed provider SDKs
  loading    the sources: the YAML files, overrides, the engine; a cell stack as its platform's keys with its tenants
  zone       the stack files of a zone read together: a tenant in two stacks, the zone's budgets over its cap
  planning   the pure arithmetic the config and the components share (failover budget, subnets, sizing)
"""

from stackconfig.checks import cross_field_problems
from stackconfig.errors import ConfigError, Problem, StackFileError, did_you_mean
from stackconfig.loading import Overrides, as_written, engine_config, from_engine, load_stack, read_stack_files
from stackconfig.models import (
    NAMESPACE,
    S3_RTC_MINUTES,
    ZONE_REGIONS,
    AlertSettings,
    AlertSubscription,
    CellSettings,
    ClusterSettings,
    CostSettings,
    DatabaseSettings,
    DrSettings,
    FailoverSettings,
    GuardrailSettings,
    NetworkSettings,
    PlanSpec,
    Quota,
    QuotaSettings,
    RegionPair,
    RegionSpec,
    RolloutSettings,
    SloSettings,
    StackConfig,
    TeardownSettings,
    TenantId,
    TenantNodeSettings,
    TenantSpec,
    WorkloadSettings,
)
from stackconfig.parsing import RawConfig, parse_config, validate
from stackconfig.providers import READ_NAMESPACES, foreign_key_problems, provider_config_keys

__all__ = [
    "NAMESPACE",
    "READ_NAMESPACES",
    "S3_RTC_MINUTES",
    "ZONE_REGIONS",
    "AlertSettings",
    "AlertSubscription",
    "CellSettings",
    "ClusterSettings",
    "ConfigError",
    "CostSettings",
    "DatabaseSettings",
    "DrSettings",
    "FailoverSettings",
    "NetworkSettings",
    "Overrides",
    "PlanSpec",
    "Problem",
    "Quota",
    "QuotaSettings",
    "RawConfig",
    "RegionPair",
    "RegionSpec",
    "RolloutSettings",
    "GuardrailSettings",
    "TeardownSettings",
    "SloSettings",
    "StackConfig",
    "StackFileError",
    "TenantId",
    "TenantNodeSettings",
    "TenantSpec",
    "WorkloadSettings",
    "as_written",
    "cross_field_problems",
    "did_you_mean",
    "engine_config",
    "foreign_key_problems",
    "from_engine",
    "load_stack",
    "parse_config",
    "provider_config_keys",
    "read_stack_files",
    "validate",
]
