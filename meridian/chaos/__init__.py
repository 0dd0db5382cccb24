"""Chaos scenarios (Chaos Toolkit experiments in loadtests/chaos/) run under load and judged against the SLOs."""
