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

``num_candidates`` = M sets the budget in calls: each tree may ask for M x T denoiser calls (T steps), what SVDD-PM
asks for its candidates' posterior means at the same M, and runs iterations until the next one would not fit. An
iteration expanding a node at level i costs T - i denoiser calls (the expansion, then the rollout's remaining steps)
and one reward call, so a tree makes about M full rollouts' worth of calls: deep expansions are cheap, which is how
the tree's reuse of prefixes pays. (The budget was M x T *iterations* before: each with a rollout, about M T^2 / 2
calls, 17 minutes for 16 DNA samples at M = 2.) An iteration whose descent ends on a clean node expands nothing and
costs nothing; iterations are capped at M x T too, so such descents cannot loop.
Later iterations reuse what earlier ones learned: the tree is anytime, and more iterations keep improving it.

What it returns. ``mode=sample``: a Boltzmann descent of the finished tree, softmax(v / alpha) at each node down to
a node without children, whose rollout is the sample. With soft-Bellman values this picks a leaf with probability
(prod 1 / children) x exp(r / alpha) / exp(v_root / alpha): the tree's own leaves, which are pre-trained draws
weighted by the tree's shape, reweighted by exp(r / alpha), so the samples tend to p_pre exp(r / alpha) as the tree
grows (tests/test_target_distribution.py measures it). ``mode=search``: the best rollout the tree found.

Memory is bounded by the budget: at most M x T + 1 nodes per tree, each with its state and its rollout; the
storage grows by doubling as the trees do, so a tree of a few rollouts holds a few nodes' worth.
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
    branches = True  # M next states of each state per step

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
        budget = self.num_candidates * depth  # denoiser calls per tree
        cap = int(math.ceil(self.widening * budget ** self.widening_exponent)) + 1  # children per node, at most
        x, _ = self.begin(diffusion, generators, start)
        B, dev = batch_size, x.device
        rows = torch.arange(B, device=dev)
        deterministic_level = torch.tensor([diffusion.is_deterministic_step(t) for t in steps] + [False], device=dev)
        tree = TreeStorage(x, capacity=min(budget + 1, 16), cap=cap)
        spent = torch.zeros(B, dtype=torch.long, device=dev)  # denoiser calls asked per tree
        active = torch.ones(B, dtype=torch.bool, device=dev)  # trees whose next expansion still fits
        best_reward = torch.full((B,), -math.inf, dtype=torch.float64, device=dev)
        best_sample = x.clone()
        gens = list(generators)

        def child_table(node: Tensor, which: Tensor):
            kids = tree.children[which, node]  # (rows, cap)
            present = kids >= 0
            safe = kids.clamp(min=0)
            return kids, present, tree.value[which[:, None], safe], tree.visits[which[:, None], safe]

        progress = self.budget_bar(budget)
        for _ in stoppable(range(budget)):
            if not active.any():
                break
            # 1. selection: every active tree walks down until a node may widen (or a clean leaf)
            node = torch.zeros(B, dtype=torch.long, device=dev)
            path = [(node.clone(), active.clone())]  # (nodes, which trees moved there)
            descending = active.clone()
            expand = torch.zeros(B, dtype=torch.bool, device=dev)
            for _level in range(depth + 1):
                lvl = tree.level[rows, node]
                clean = lvl == depth
                allowed = self.allowed_children(tree.visits[rows, node], deterministic_level[lvl], cap)
                widen = descending & ~clean & (tree.num_children[rows, node] < allowed)
                expand |= widen
                descending &= ~widen & ~clean
                if not descending.any():
                    break
                which = descending.nonzero()[:, 0]
                kids, present, kid_values, kid_visits = child_table(node[which], which)
                chosen = self.pick(kid_values, present, kid_visits, tree.visits[which, node[which]],
                                   [gens[i] for i in which.tolist()])
                node = node.clone()
                node[which] = kids.gather(1, chosen[:, None]).squeeze(1)
                path.append((node.clone(), descending.clone()))
            # A tree whose expansion would overrun its budget stops here, its tree as it was: the expansion
            # and the rollout cost depth - level denoiser calls.
            cost = depth - tree.level[rows, node]
            overrun = expand & (spent + cost > budget)
            active &= ~overrun
            expand &= ~overrun
            path = [(nodes, moved & active) for nodes, moved in path]
            # 2-3. expansion and rollout where a tree stopped to widen
            grew = expand.nonzero()[:, 0]
            if grew.numel():
                spent[grew] += cost[grew]
                tree.make_room(int(tree.size[grew].max()) + 1)
                parent = node[grew]
                new = tree.size[grew]
                tree.size[grew] += 1
                child_level = tree.level[grew, parent] + 1
                child = self.advance(diffusion, tree.states[grew, parent], tree.level[grew, parent], steps, grew, gens,
                                     calls)
                tree.states[grew, new] = child
                tree.level[grew, new] = child_level
                tree.children[grew, parent, tree.num_children[grew, parent]] = new
                tree.num_children[grew, parent] += 1
                clean = self.rollout(diffusion, child, child_level, steps, grew, gens, calls)
                rewards = score_states(None, self.reward, diffusion, clean, 0,
                                       distinct=self.deduplicates(diffusion)).values.double()
                calls.ask("reward", grew.numel())
                tree.rollouts[grew, new] = clean
                tree.value[grew, new] = rewards
                tree.visits[grew, new] = 1
                better = rewards > best_reward[grew]
                best_reward[grew[better]] = rewards[better]
                best_sample[grew[better]] = clean[better]
            # 4. backup: the nodes of each tree's path, deepest first
            for level_nodes, moved in reversed(path):
                on = rows[moved]
                at = level_nodes[moved]
                tree.visits[on, at] += 1
                kids, present, kid_values, _ = child_table(at, on)
                has = present.any(1)
                tree.value[on[has], at[has]] = self.backup(kid_values[has], present[has])
            progress(spent)
        progress(None)
        if self.mode == "search":
            return self.finish(best_sample, best_reward.float(), calls, nodes=tree.size.tolist())
        samples, rewards = self.descend(tree, depth, gens)
        return self.finish(samples, rewards.float(), calls, nodes=tree.size.tolist())

    def budget_bar(self, budget: int):
        """A callable taking the calls spent per tree (None: close): a bar of the mean calls spent, out of the
        budget, when progress is shown."""
        if not self.show_progress:
            return lambda spent: None
        from tqdm.auto import tqdm

        bar = tqdm(total=budget, desc=f"{self.name}: denoiser calls per tree", leave=False, dynamic_ncols=True)

        def update(spent: Tensor | None) -> None:
            if spent is None:
                bar.close()
                return
            bar.update(int(spent.double().mean()) - bar.n)

        return update

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

    def descend(self, tree: TreeStorage, depth: int, gens: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        """Boltzmann descent of each finished tree: softmax(v / alpha) among children down to a node without any;
        its rollout is the sample, its value (the rollout's reward) the reward."""
        B = tree.states.shape[0]
        rows = torch.arange(B, device=tree.states.device)
        node = torch.zeros(B, dtype=torch.long, device=tree.states.device)
        for _ in range(depth + 1):
            kids = tree.children[rows, node]
            present = kids >= 0
            going = present.any(1)
            if not going.any():
                break
            which = going.nonzero()[:, 0]
            kid_values = tree.value[which[:, None], kids[which].clamp(min=0)]
            chosen = ops.select_candidates(torch.where(present[which], kid_values, -math.inf), self.alpha,
                                           [gens[i] for i in which.tolist()])
            node = node.clone()
            node[which] = kids[which].gather(1, chosen[:, None]).squeeze(1)
        return tree.rollouts[rows, node], tree.value[rows, node]


class TreeStorage:
    """The trees of a batch, one row each, node-indexed: each node's state, its rollout to a clean sample (a clean
    node: itself), level, children (-1: none), visits and value. Node 0 is the root (the start x). The node axis
    grows by doubling (``make_room``), so memory follows the nodes made, not the budget."""

    def __init__(self, x: Tensor, *, capacity: int, cap: int) -> None:
        B, dev = x.shape[0], x.device
        self.states = x.new_zeros((B, capacity, *x.shape[1:]))
        self.states[:, 0] = x
        self.rollouts = torch.zeros_like(self.states)
        self.level = torch.zeros(B, capacity, dtype=torch.long, device=dev)
        self.children = torch.full((B, capacity, cap), -1, dtype=torch.long, device=dev)
        self.num_children = torch.zeros(B, capacity, dtype=torch.long, device=dev)
        self.visits = torch.zeros(B, capacity, dtype=torch.long, device=dev)
        self.value = torch.zeros(B, capacity, dtype=torch.float64, device=dev)
        self.size = torch.ones(B, dtype=torch.long, device=dev)  # nodes used per tree

    def make_room(self, nodes: int) -> None:
        """Grow the node axis (doubling) until it holds ``nodes`` nodes; new slots are empty."""
        capacity = self.level.shape[1]
        if nodes <= capacity:
            return
        grown = max(nodes, 2 * capacity)
        for name, fill in (("states", 0), ("rollouts", 0), ("level", 0), ("children", -1), ("num_children", 0),
                           ("visits", 0), ("value", 0)):
            old = getattr(self, name)
            new = old.new_full((old.shape[0], grown, *old.shape[2:]), fill)
            new[:, :capacity] = old
            setattr(self, name, new)
