"""Shared pieces of the speed benchmarks: the shipped models of a task, timers around network and reward calls,
and a timed decode. Decoders are called directly (not through trainer.predict), so times hold no Lightning
start-up."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from svdd_lightning.tasks.benchmark_plan import compose_decode  # noqa: E402
from svdd_lightning import ops  # noqa: E402
from svdd_lightning.build import build_domain, build_with_checkpoint  # noqa: E402
from svdd_lightning.calls import measured  # noqa: E402
from svdd_lightning.cli import accepts  # noqa: E402
from svdd_lightning.reward_choice import own_reward_node  # noqa: E402
from svdd_lightning.rewards.build import as_reward  # noqa: E402

# The four default tasks (each domain's default reward).
DEFAULT_TASKS = (("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("image", "compressibility"))


class Timers:
    """Wall time spent inside chosen modules' forward calls (wrapped instance attributes), and the rows (first
    argument's length) each was called on."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def wrap(self, name: str, module: torch.nn.Module) -> None:
        inner = module.forward

        def timed(*args, **kwargs):
            self.sync()
            tic = time.perf_counter()
            out = inner(*args, **kwargs)
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - tic
            self.rows[name] = self.rows.get(name, 0) + (len(args[0]) if args else 0)
            return out

        module.forward = timed

    def wrap_function(self, name: str, owner, attribute: str):
        """Time calls of a module-level function (``owner.attribute``, looked up at call time by its callers);
        returns a function that puts the original back."""
        inner = getattr(owner, attribute)

        def timed(*args, **kwargs):
            self.sync()
            tic = time.perf_counter()
            out = inner(*args, **kwargs)
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - tic
            return out

        setattr(owner, attribute, timed)
        return lambda: setattr(owner, attribute, inner)

    def reset(self) -> None:
        self.seconds, self.rows = {}, {}


def task_config(domain: str, reward_name: str):
    return compose_decode([f"domain={domain}", f"reward={reward_name}", "decoder=svdd_mc", "logger=none"])


def load_reward(domain: str, reward_name: str, device: torch.device, **reward_kwargs):
    """A fresh reward of a task, as decode.py builds it (cold cache; ``reward_kwargs`` such as workers or cache
    go to rewards that take them)."""
    from hydra.utils import instantiate

    cfg = task_config(domain, reward_name)
    node = own_reward_node(cfg)  # the reward's own keys (not its name mapping or the combination options)
    reward = instantiate(node, **{k: v for k, v in reward_kwargs.items() if accepts(node._target_, k)})
    return as_reward(reward, domain=build_domain(cfg)).to(device)  # rewards over objects run on the domain's objects


def load(domain: str, reward_name: str, device: torch.device, **reward_kwargs):
    """The shipped pre-trained model, SVDD-MC value and reward of a task."""
    cfg = task_config(domain, reward_name)
    diffusion = build_with_checkpoint(cfg.diffusion, kind="diffusion", domain=domain, prefix="diffusion.")
    value = build_with_checkpoint(cfg.value, kind="value", domain=domain, prefix="value.")
    reward = load_reward(domain, reward_name, device, **reward_kwargs)
    return diffusion.eval().to(device), value.eval().to(device), reward


@contextmanager
def clock(device: torch.device):
    box = {}
    if device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    yield box
    if device.type == "cuda":
        torch.cuda.synchronize()
    box["seconds"] = time.perf_counter() - tic


REPEATS = 2  # best of: the first large run in a process is slower here (page faults while memory grows)


def timed_decode(decoder, diffusion, n: int, seed: int, device: torch.device, repeats: int = REPEATS,
                 timers: Timers | None = None) -> tuple[float, np.ndarray, dict]:
    """Best wall time of ``repeats`` runs; ``timers`` is left holding the best run's split."""
    best, best_split = float("inf"), {}
    for _ in range(repeats):
        if timers is not None:
            timers.reset()
        with clock(device) as c:
            out, made = measured(decoder, diffusion, n, ops.make_generators(seed, range(n)))
        if c["seconds"] < best:
            best, best_split = c["seconds"], (dict(timers.seconds), dict(timers.rows)) if timers is not None else {}
    if timers is not None:
        timers.seconds, timers.rows = best_split
    return best, out.rewards.float().cpu().numpy(), made
