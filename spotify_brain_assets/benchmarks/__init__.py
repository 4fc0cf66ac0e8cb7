"""Benchmarks: scripts that build synthetic data roots and time the jobs on them. Not tests: they
print figures (wall time, per-asset time, peak memory) and never pass or fail."""
