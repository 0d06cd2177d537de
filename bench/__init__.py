"""killswitch benchmarks; run from the project root: python -m bench.run."""
