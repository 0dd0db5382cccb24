"""Offline CrossGuard: drive the project's policy pack through its own analyzer protocol.

The pack (`policies/`) runs in its own process exactly as the Pulumi CLI runs it
(`python -u -m pulumi.policy 127.0.0.1:0 policies`, which prints the port). This module:

1. reads the stack's policy config (`policies/config/<stack>.json`, the file
   `pulumi preview --policy-pack-config` takes), merges it over the pack's schema defaults and
   initial config, validates it against each policy's schema and sends it with `Configure`
   (every policy gets an explicit enforcement level: the proto default would be advisory);
2. streams one `Analyze` per registration while the program is still running (`PolicyStream`,
   fed by `RecordingMonitor.on_register` through a queue and a background thread, with a window
   of calls in flight), so the analyzer's work overlaps the SDK's;
3. sends `AnalyzeStack` once with every resource, its parent, dependencies, property dependencies
   and provider;
4. always stops the analyzer process (context manager), whatever happened.

Modules, imports pointing down: config (the stack's policy config, the pack's metadata), generated
(the settings generated from the stack config), wire (subjects and violations), analyzer (the
process and its calls), report (a run's result), stream (registrations streamed while the program runs).
"""

from meridian.engine.policy.analyzer import STARTUP_TIMEOUT_S, Analyzer, evaluate
from meridian.engine.policy.config import (
    CONFIG_DIR,
    LEVELS,
    PACK_DIR,
    PackInfo,
    PolicyInfo,
    PolicyPackError,
    config_path,
    effective_config,
    load_policy_config,
    pack_dir_of,
)
from meridian.engine.policy.report import PolicyReport, PolicyTimings
from meridian.engine.policy.stream import HELPER_THRESHOLD, PolicyStream, shard_config, stack_shards
from meridian.engine.policy.wire import Subject, Violation

__all__ = [
    "CONFIG_DIR",
    "HELPER_THRESHOLD",
    "LEVELS",
    "PACK_DIR",
    "STARTUP_TIMEOUT_S",
    "Analyzer",
    "PackInfo",
    "PolicyInfo",
    "PolicyPackError",
    "PolicyReport",
    "PolicyStream",
    "PolicyTimings",
    "Subject",
    "Violation",
    "config_path",
    "effective_config",
    "evaluate",
    "load_policy_config",
    "pack_dir_of",
    "shard_config",
    "stack_shards",
]
