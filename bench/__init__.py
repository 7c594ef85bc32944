"""`make bench`: image-cdn measured side by side with its peers (sharp, pyvips), in one run.

Not tests: numbers, written to bench/results.json and BENCHMARKS.md.
"""
