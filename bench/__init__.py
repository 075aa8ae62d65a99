"""Benchmarks: measured on the real server, not timed tests."""
