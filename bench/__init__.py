"""Benchmarks (not tests): `python -m bench` drives the real server with concurrent clients and
compares it, in one run, with the bare libraries called in-process and with peer servers on the
same models; `python -m bench.<name>` runs one focused benchmark (e.g. bench.streaming)."""
