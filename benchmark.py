"""Regenerate the paper's comparison (Table 1) on every domain with one command, with error bars and an
inference-time scaling comparison.

    python benchmark.py --quick --output_dir DIR        # the four default tasks, small runs (minutes on a laptop)
    python benchmark.py --output_dir DIR                # every task, the acceptance-size runs
    python benchmark.py --report_only --output_dir DIR  # redraw the report and plots of a finished run

What it runs and writes is in svdd_lightning/tasks/benchmark.py (and README.md); this file is the command line.
"""

from svdd_lightning.tasks.benchmark import cli, main  # noqa: F401  (main: what tests call with an argv)

if __name__ == "__main__":
    cli()
