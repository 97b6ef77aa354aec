"""Benchmarks for rtmpgop (see bench/RESULTS.md). Not part of the installed package."""
