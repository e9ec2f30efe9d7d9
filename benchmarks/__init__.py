"""Performance figures of cloudai_nb: ``python -m benchmarks [--quick]`` prints them as a table."""
