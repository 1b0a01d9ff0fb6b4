"""Tiny models in tests gain nothing from intra-op threads; one thread keeps them fast on a
busy 2-core machine (OpenMP barriers make two threads far slower than one there)."""

import torch

from svdd_lightning.allocator import keep_freed_memory
from tests.helpers import TEST_THREADS

torch.set_num_threads(TEST_THREADS)
keep_freed_memory()  # as the entry points do (svdd_lightning/allocator.py)
