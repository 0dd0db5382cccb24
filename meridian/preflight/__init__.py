"""Deploy preflight: judge the plan against what only `pulumi up` (or the first request) would reveal."""
