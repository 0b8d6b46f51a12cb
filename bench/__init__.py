"""Benchmarks: a fast fake upstream, wrk scripts, the runner and the ledger-scale check."""
