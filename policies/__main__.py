"""The meridian CrossGuard pack: `pulumi preview --policy-pack policies --policy-pack-config policies/config/<stack>.json`.

Only builds the PolicyPack (constructing it starts the analyzer server and blocks); the rules live
in one importable module per area. Offline, `meridian preview` runs this same file through
`python -m pulumi.policy 127.0.0.1:0 policies`.
"""

import cost
import encryption
import exposure
import iam
import operations
import residency
import resilience
import tags
import tenancy
import workloads
from pulumi_policy import EnforcementLevel, PolicyPack

POLICIES = [
    *residency.POLICIES,
    *encryption.POLICIES,
    *exposure.POLICIES,
    *iam.POLICIES,
    *tags.POLICIES,
    *resilience.POLICIES,
    *tenancy.POLICIES,
    *cost.POLICIES,
    *operations.POLICIES,
    *workloads.POLICIES,
]

PolicyPack(
    name="meridian",
    description="meridian platform guardrails: residency, encryption, exposure, IAM, tags, data protection, tenancy, cost caps, logging and operations, Kubernetes workloads",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
