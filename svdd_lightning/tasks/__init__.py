"""What the entry points run, as library code. So far: the pieces of the benchmark's plan that benchmark.py and
its companion scripts share (``benchmark_plan``), so that benchmarks/ imports no script."""
