"""SLO gate: objectives (stack config + loadtests/slo.yaml), raw-timing evaluation, Locust runs, reports."""
