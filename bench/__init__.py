"""Benchmark harness for drizzle_gateway (``python -m bench``); not part of the installed package."""
