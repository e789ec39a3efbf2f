"""Benchmarks of composer against its peers, with their own runner: `python -m bench`.

Never part of the test suite (no `test_*.py` here). See docs/benchmarks.md.
"""
