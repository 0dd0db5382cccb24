"""DR drills, written once against `meridian.targets.Target`: step machines (preflight, fault,
fence, promote, flip traffic, verify, fail back) with dry runs, timeouts, rollback and resume,
and the measurement of RTO and RPO through the front door."""
