"""Benchmarks comparing datatwin with peer libraries (not part of the package)."""
