"""Benchmarks: per-stage and end-to-end throughput, memory, charts."""
