"""Benchmarks: measured, never asserted in tests (speed goals live here, not in timed tests)."""
