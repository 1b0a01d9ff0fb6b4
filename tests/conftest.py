"""Tiny models in tests gain nothing from intra-op threads; one thread keeps them fast on a
busy 2-core machine (OpenMP barriers make two threads far slower than one there)."""

import torch

torch.set_num_threads(1)
