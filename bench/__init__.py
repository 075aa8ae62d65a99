"""Benchmarks (not tests): run with ``python -m bench.<name>``; results go to docs/benchmarks-*.md."""
