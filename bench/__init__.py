"""Benchmarks: the serverless path against the paper's Keras path (`make bench`, see docs/benchmarks.md)."""
