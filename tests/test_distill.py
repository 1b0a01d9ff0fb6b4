"""train.py stage=distill (svdd_lightning/modules/distill.py): an update moves the model's transition toward the
teacher's, kl_weight holds it near the pre-trained model, and the stage's checkpoint decodes."""

from __future__ import annotations

import torch

from svdd_lightning.modules.distill import DistillModule
from tests.helpers import gc_reward, tiny_masked


def module(kl_weight: float) -> DistillModule:
    return DistillModule(diffusion=tiny_masked(seq_len=12, num_steps=6), reward=gc_reward(), domain="dna", seed=0,
                         rounds=1, steps_per_round=1, samples_per_round=32, states_per_trajectory=5, num_candidates=8,
                         alpha=0.0, batch_size=64, replay_size=1000, kl_weight=kl_weight, lr=3e-3)


def replay_losses(m: DistillModule) -> tuple[float, float]:
    r = m.replay
    with torch.no_grad():
        ce, kl = m.losses(r["x_t"].long(), r["t"], r["targets"], r["weights"])
    return float(ce.mean()), float(kl.mean())


def updated(kl_weight: float, steps: int = 30) -> tuple[tuple[float, float], tuple[float, float]]:
    """The teacher's cross-entropy and the KL to the pre-trained model on the replay buffer, before and after
    ``steps`` updates on it."""
    m = module(kl_weight)
    m.run_round(0)
    before = replay_losses(m)
    optimiser = torch.optim.AdamW(m.diffusion.parameters(), lr=m.lr)
    m.diffusion.train()
    r = m.replay
    for _ in range(steps):
        ce, kl = m.losses(r["x_t"].long(), r["t"], r["targets"], r["weights"])
        loss = ce.mean() + kl_weight * kl.mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return before, replay_losses(m)


def test_updates_move_the_transition_toward_the_teachers():
    """The forward KL from the teacher's transition is its cross-entropy less the teacher's entropy (fixed): the
    cross-entropy falls. Before any update the model is the pre-trained one: KL 0."""
    (ce_before, kl_before), (ce_after, kl_after) = updated(kl_weight=0.0)
    assert kl_before < 1e-6
    assert ce_after < 0.9 * ce_before, (ce_before, ce_after)
    assert kl_after > 1e-4  # it moved away from the pre-trained model


def test_kl_weight_holds_the_model_near_the_pretrained_one():
    (_, _), (ce_free, kl_free) = updated(kl_weight=0.0)
    (_, _), (ce_held, kl_held) = updated(kl_weight=30.0)
    assert kl_held < 0.5 * kl_free, (kl_held, kl_free)
    assert ce_held > ce_free  # held back from the teacher


def test_the_teacher_picks_the_highest_valued_draw_at_alpha_zero():
    m = module(0.0)
    m.run_round(0)
    w = m.replay["weights"]
    assert torch.allclose(w.sum(1), torch.ones(len(w))) and ((w == 0) | (w == 1)).all()
    assert m.calls["denoiser_current"] == 32 * 6 and m.calls["reward"] == 32 + 32 * 5 * 8

