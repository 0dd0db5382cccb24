"""Evidence bundles (plan, policy, cost, SLO report, drill timeline, residency attestation) and their sha256 manifest."""
