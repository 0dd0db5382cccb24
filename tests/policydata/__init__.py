"""The policy pack's test data: per-area builders of a stack that passes every rule, and for each
rule the mutations that break it (each checked through the analyzer protocol in test_policy_pack).

`valid_stack()` composes the areas (keys, storage, database, cluster, network, operations, dr, iam,
tenancy, cost, failover); `MUTATIONS` maps each rule to its failing cases; `CONFIG` is the pack
config the tests run with. Plain data: imports nothing from the pack; its URN and tag shapes are the
catalog examples' (meridian.engine.policy.catalog_examples), one definition for both.
"""

from .base import CONFIG, STACK, UNKNOWN, find, urn
from .podidentity import ABAC_CONFIG, ABAC_MUTATIONS, BROKER_MUTATIONS, abac_stack, broker_stack
from .stack import MUTATIONS, mutated, valid_stack

__all__ = [
    "ABAC_CONFIG",
    "ABAC_MUTATIONS",
    "BROKER_MUTATIONS",
    "CONFIG",
    "MUTATIONS",
    "STACK",
    "UNKNOWN",
    "abac_stack",
    "broker_stack",
    "find",
    "mutated",
    "urn",
    "valid_stack",
]
