"""The meridian CrossGuard pack: `pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json`.

Only builds the PolicyPack (constructing it starts the analyzer server and blocks); the rules live
in one importable module per area. Offline, `meridian preview` runs this same file through
`python -m pulumi.policy 127.0.0.1:0 policies`.
"""

import sdkhooks

sdkhooks.install()  # before the pack's server starts: refuses an unexpected pulumi-policy, then decodes each resource once per request

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

import backstops  # noqa: E402
import clusteraccess  # noqa: E402
import cost  # noqa: E402
import destinations  # noqa: E402
import encryption  # noqa: E402
import exposure  # noqa: E402
import iam  # noqa: E402
import inventory  # noqa: E402
import k8sexposure  # noqa: E402
import k8splatform  # noqa: E402
import operations  # noqa: E402
import providers  # noqa: E402
import residency  # noqa: E402
import resilience  # noqa: E402
import tags  # noqa: E402
import tenancy  # noqa: E402
import workloads  # noqa: E402
from access import rule as access_rule  # noqa: E402

POLICIES = [
    *residency.POLICIES,
    *destinations.POLICIES,
    *providers.POLICIES,
    *encryption.POLICIES,
    *exposure.POLICIES,
    *iam.POLICIES,
    *tags.POLICIES,
    *resilience.POLICIES,
    *tenancy.POLICIES,
    *access_rule.POLICIES,
    *cost.POLICIES,
    *operations.POLICIES,
    *workloads.POLICIES,
    *k8sexposure.POLICIES,
    *k8splatform.POLICIES,
    *backstops.POLICIES,
    *clusteraccess.POLICIES,
]
POLICIES.append(inventory.inventory_policy(POLICIES))  # derives what is judged from the rules above

PolicyPack(
    name="meridian",
    description="meridian platform guardrails: residency, encryption, exposure, IAM, tags, data protection, tenancy, cost caps, logging and operations, Kubernetes workloads",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
