"""Diffusion tree search: DTS (sampling) and DTS* (search), after Jain et al. 2025 (arXiv 2506.20701).

One tree per returned sample over the denoising chain: the root is the sample's start x_T, a node at depth i holds
x_{t_i}, and its children are draws of the pre-trained model from it. Each iteration, for every tree at once:

1. **selection**: from the root, a node that may take another child (progressive widening: fewer than
   ceil(widening x visits^widening_exponent) children; a draw-free step, such as masked diffusion's final argmax,
   takes one) stops the descent; otherwise a child is picked by softmax(v / alpha) (DTS, ``mode=sample``) or by
   an upper-confidence rule v + exploration x sqrt(log N / n) (DTS*, ``mode=search``);
2. **expansion**: the pre-trained model draws one new child there (one denoiser call);
3. **rollout**: the pre-trained model runs the child to a clean sample, which the reward scores (its value);
4. **backup**: every node on the path takes the soft-Bellman value of its children,
   v = alpha log mean_children exp(v_child / alpha) (the children's mean at alpha = 0).

``num_candidates`` = M sets the budget: M x T iterations per tree (T steps), so at most M x T reward calls per sample
(about SVDD-PM's (T - 1) M + 1), while each rollout also runs the denoiser to the end. At most: an iteration whose
descent ends on a clean node expands nothing, and below a draw-free last step (masked diffusion's argmax) the one
child repeats its parent's rollout, which the reward scores again (deduplication works within a call, not across
iterations): on the enumeration model (T = 3, M = 16, 8 trees) 240 of 384 iterations asked for a reward call.
Later iterations reuse what earlier ones learned: the tree is anytime, and more iterations keep improving it.

What it returns. ``mode=sample``: a Boltzmann descent of the finished tree, softmax(v / alpha) at each node down to
a node without children, whose rollout is the sample. With soft-Bellman values this picks a leaf with probability
(prod 1 / children) x exp(r / alpha) / exp(v_root / alpha): the tree's own leaves, which are pre-trained draws
weighted by the tree's shape, reweighted by exp(r / alpha), so the samples tend to p_pre exp(r / alpha) as the tree
grows (tests/test_target_distribution.py measures it). ``mode=search``: the best rollout the tree found.

Memory is bounded by the budget: at most M x T + 1 nodes per tree, each with its state and its rollout.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from svdd_lightning import ops
from svdd_lightning.calls import CallLedger
from svdd_lightning.decoders.base import Decoder, DecodeOutput, stoppable
from svdd_lightning.diffusion.base import Diffusion
from svdd_lightning.ops import Generators
from svdd_lightning.ranges import AtLeastOne, NonNegative, Positive, Probability
from svdd_lightning.rewards.base import Reward
from svdd_lightning.starts import Start
from svdd_lightning.values.base import score_states


class TreeSearch(Decoder):
    name = "tree"

    def __init__(self, *, reward: Reward, num_candidates: AtLeastOne = 10, alpha: NonNegative = 1.0,
                 mode: Literal["sample", "search"] = "sample", widening: Positive = 1.0,
                 widening_exponent: Probability = 0.5, exploration: NonNegative = 1.0, dedup: bool = True) -> None:
        """``num_candidates``: M, iterations per denoising step (M x T per tree). ``alpha``: the temperature of
        the selection, the backups and the final descent, in reward units (0: greedy selection, mean backups).
        ``mode``: ``sample`` (DTS) or ``search`` (DTS*: upper-confidence selection, the best rollout returned).
        ``widening``, ``widening_exponent``: a node visited n times may hold ceil(widening x n^exponent)
        children. ``exploration``: DTS*'s confidence bonus, in reward units. ``dedup``: run the denoiser and the
        reward once per distinct state of a call (token models; the same samples)."""
        self.keep_options(locals())
        self.reward = reward

    # -- the tree's arithmetic ------------------------------------------------------------------------------------ #

    def backup(self, child_values: Tensor, present: Tensor) -> Tensor:
        """Soft-Bellman value (rows,) from the children's values (rows, C), ``present`` marking real children:
        alpha log mean exp(v / alpha), or the mean at alpha = 0."""
        count = present.sum(1).clamp(min=1).double()
        if self.alpha == 0:
            return torch.where(present, child_values, 0.0).sum(1) / count
        scaled = torch.where(present, child_values / self.alpha, -math.inf)
        return self.alpha * (torch.logsumexp(scaled, dim=1) - count.log())

    def allowed_children(self, visits: Tensor, deterministic: Tensor, cap: int) -> Tensor:
        """How many children a node visited ``visits`` times may hold (progressive widening)."""
        widened = torch.ceil(self.widening * visits.clamp(min=1).double() ** self.widening_exponent).long()
        return torch.where(deterministic, torch.ones_like(widened), widened.clamp(max=cap))

    def pick(self, child_values: Tensor, present: Tensor, child_visits: Tensor, visits: Tensor,
             generators: list[torch.Generator]) -> Tensor:
        """Which child to descend to, per row: softmax(v / alpha) (sampling) or the upper-confidence rule (search)."""
        if self.mode == "search":
            bonus = self.exploration * torch.sqrt(visits.clamp(min=1).double().log()[:, None] /
                                                  child_visits.clamp(min=1).double())
            return torch.where(present, child_values + bonus, -math.inf).argmax(1)
        return ops.select_candidates(torch.where(present, child_values, -math.inf), self.alpha, generators)

    # -- the decode ------------------------------------------------------------------------------------------------ #

    @torch.no_grad()
    def __call__(self, diffusion: Diffusion, batch_size: int, generators: Generators,
                 start: Start | None = None) -> DecodeOutput:
        self.check_generators(batch_size, generators)
        calls = CallLedger()
        steps = list(diffusion.timesteps() if start is None else start.timesteps())
        depth = len(steps)  # a node at level i holds x_{steps[i]}; level `depth` is clean
        iterations = self.num_candidates * depth
        cap = int(math.ceil(self.widening * iterations ** self.widening_exponent)) + 1  # children per node, at most
        x, _ = self.begin(diffusion, generators, start)
        B, N, dev = batch_size, iterations + 1, x.device
        rows = torch.arange(B, device=dev)
        deterministic_level = torch.tensor([diffusion.is_deterministic_step(t) for t in steps] + [False], device=dev)
        states = x.new_zeros((B, N, *x.shape[1:]))
        states[:, 0] = x
        rollouts = torch.zeros_like(states)  # each node's rollout to a clean sample (a clean node: itself)
        level = torch.zeros(B, N, dtype=torch.long, device=dev)
        children = torch.full((B, N, cap), -1, dtype=torch.long, device=dev)
        num_children = torch.zeros(B, N, dtype=torch.long, device=dev)
        visits = torch.zeros(B, N, dtype=torch.long, device=dev)
        value = torch.zeros(B, N, dtype=torch.float64, device=dev)
        size = torch.ones(B, dtype=torch.long, device=dev)  # nodes used per tree
        best_reward = torch.full((B,), -math.inf, dtype=torch.float64, device=dev)
        best_sample = x.clone()
        gens = list(generators)

        def child_table(node: Tensor, which: Tensor):
            kids = children[which, node]  # (rows, cap)
            present = kids >= 0
            safe = kids.clamp(min=0)
            return kids, present, value[which[:, None], safe], visits[which[:, None], safe]

        for _ in stoppable(self.iteration_bar(iterations)):
            # 1. selection: every tree walks down until a node may widen (or a clean leaf)
            node = torch.zeros(B, dtype=torch.long, device=dev)
            path = [(node.clone(), torch.ones(B, dtype=torch.bool, device=dev))]  # (nodes, which trees moved there)
            descending = torch.ones(B, dtype=torch.bool, device=dev)
            expand = torch.zeros(B, dtype=torch.bool, device=dev)
            for _level in range(depth + 1):
                lvl = level[rows, node]
                clean = lvl == depth
                allowed = self.allowed_children(visits[rows, node], deterministic_level[lvl], cap)
                widen = descending & ~clean & (num_children[rows, node] < allowed)
                expand |= widen
                descending &= ~widen & ~clean
                if not descending.any():
                    break
                which = descending.nonzero()[:, 0]
                kids, present, kid_values, kid_visits = child_table(node[which], which)
                chosen = self.pick(kid_values, present, kid_visits, visits[which, node[which]],
                                   [gens[i] for i in which.tolist()])
                node = node.clone()
                node[which] = kids.gather(1, chosen[:, None]).squeeze(1)
                path.append((node.clone(), descending.clone()))
            # 2-3. expansion and rollout where a tree stopped to widen
            grew = expand.nonzero()[:, 0]
            if grew.numel():
                parent = node[grew]
                new = size[grew]
                size[grew] += 1
                child_level = level[grew, parent] + 1
                child = self.advance(diffusion, states[grew, parent], level[grew, parent], steps, grew, gens, calls)
                states[grew, new] = child
                level[grew, new] = child_level
                children[grew, parent, num_children[grew, parent]] = new
                num_children[grew, parent] += 1
                clean = self.rollout(diffusion, child, child_level, steps, grew, gens, calls)
                rewards = score_states(None, self.reward, diffusion, clean, 0,
                                       distinct=self.deduplicates(diffusion)).values.double()
                calls.ask("reward", grew.numel())
                rollouts[grew, new] = clean
                value[grew, new] = rewards
                visits[grew, new] = 1
                better = rewards > best_reward[grew]
                best_reward[grew[better]] = rewards[better]
                best_sample[grew[better]] = clean[better]
            # 4. backup: the nodes of each tree's path, deepest first
            for level_nodes, moved in reversed(path):
                on = rows[moved]
                at = level_nodes[moved]
                visits[on, at] += 1
                kids, present, kid_values, _ = child_table(at, on)
                has = present.any(1)
                value[on[has], at[has]] = self.backup(kid_values[has], present[has])
        if self.mode == "search":
            return self.finish(best_sample, best_reward.float(), calls, nodes=size.tolist())
        samples, rewards = self.descend(states, rollouts, value, children, level, depth, gens)
        return self.finish(samples, rewards.float(), calls, nodes=size.tolist())

    def iteration_bar(self, iterations: int):
        if not self.show_progress:
            return range(iterations)
        from tqdm.auto import tqdm

        return tqdm(range(iterations), desc=f"{self.name}: tree iterations", leave=False, dynamic_ncols=True)

    def advance(self, diffusion: Diffusion, x: Tensor, lvl: Tensor, steps: list[int], trees: Tensor,
                gens: list[torch.Generator], calls: CallLedger) -> Tensor:
        """One pre-trained step of each row from its own level (rows of one level share a network call)."""
        out = x.clone()
        for i in lvl.unique().tolist():
            at = (lvl == i).nonzero()[:, 0]
            t = steps[i]
            denoised = self.denoise(diffusion, x[at], t, calls)
            out[at] = diffusion.propose(x[at], t, 1, [gens[j] for j in trees[at].tolist()], denoised=denoised)[:, 0]
        return out

    def rollout(self, diffusion: Diffusion, x: Tensor, lvl: Tensor, steps: list[int], trees: Tensor,
                gens: list[torch.Generator], calls: CallLedger) -> Tensor:
        """Run each row with the pre-trained model from its level to a clean sample."""
        x, lvl = x.clone(), lvl.clone()
        for i in range(int(lvl.min()) if lvl.numel() else len(steps), len(steps)):
            at = (lvl == i).nonzero()[:, 0]
            if at.numel():
                x[at] = self.advance(diffusion, x[at], lvl[at], steps, trees[at], gens, calls)
                lvl[at] += 1
        return x

    def descend(self, states: Tensor, rollouts: Tensor, value: Tensor, children: Tensor, level: Tensor, depth: int,
                gens: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        """Boltzmann descent of each finished tree: softmax(v / alpha) among children down to a node without any;
        its rollout is the sample, its value (the rollout's reward) the reward."""
        B = states.shape[0]
        rows = torch.arange(B, device=states.device)
        node = torch.zeros(B, dtype=torch.long, device=states.device)
        for _ in range(depth + 1):
            kids = children[rows, node]
            present = kids >= 0
            going = present.any(1)
            if not going.any():
                break
            which = going.nonzero()[:, 0]
            kid_values = value[which[:, None], kids[which].clamp(min=0)]
            chosen = ops.select_candidates(torch.where(present[which], kid_values, -math.inf), self.alpha,
                                           [gens[i] for i in which.tolist()])
            node = node.clone()
            node[which] = kids[which].gather(1, chosen[:, None]).squeeze(1)
        return rollouts[rows, node], value[rows, node]
