import numpy as np
import pytest
import torch
from Bio.Seq import Seq

from svdd_lightning.domains.sequences import decode
from svdd_lightning.rewards.dna import HEPG2_MOTIFS, GCReward, HepG2MotifReward, load_pssms
from tests.contracts import RewardContract


@pytest.fixture(scope="module")
def motif_reward():
    return HepG2MotifReward()


class TestHepG2MotifContract(RewardContract):
    @pytest.fixture
    def reward(self, motif_reward):
        return motif_reward

    @pytest.fixture
    def reward_inputs(self):
        return torch.randint(0, 4, (6, 200), generator=torch.Generator().manual_seed(0))


class TestGCContract(RewardContract):
    @pytest.fixture
    def reward(self):
        return GCReward()

    @pytest.fixture
    def reward_inputs(self):
        return torch.randint(0, 4, (6, 50), generator=torch.Generator().manual_seed(0))


def test_motif_scan_matches_biopython_pssm_on_both_strands(motif_reward):
    x = torch.randint(0, 4, (8, 200), generator=torch.Generator().manual_seed(1))
    pssms = load_pssms(HEPG2_MOTIFS)
    ours = motif_reward.per_motif(x).numpy()
    for row, seq in zip(ours, decode(x, "ACGT")):
        expected = [max(np.max(p.calculate(Seq(seq))), np.max(p.reverse_complement().calculate(Seq(seq))))
                    for _, p in pssms]
        np.testing.assert_allclose(row, expected, atol=1e-4)
    np.testing.assert_allclose(motif_reward(x).numpy(), ours.mean(-1), rtol=1e-6)


def test_motif_reward_uses_the_liver_factors(motif_reward):
    assert motif_reward.motif_names == ["HNF4A", "HNF1A", "FOXA2", "CEBPA"]


def test_planted_consensus_scores_the_pssm_maximum(motif_reward):
    pssms = load_pssms(HEPG2_MOTIFS)
    name, pssm = pssms[2]
    consensus = str(pssm.consensus)
    seq = "A" * 50 + consensus + "A" * (150 - len(consensus))
    x = torch.tensor([["ACGT".index(c) for c in seq]])
    assert motif_reward.per_motif(x)[0, 2].item() == pytest.approx(pssm.max, abs=1e-4)


def test_motif_reward_is_differentiable_in_one_hot_input(motif_reward):
    probs = torch.full((2, 200, 4), 0.25, requires_grad=True)
    motif_reward(probs).sum().backward()
    assert probs.grad is not None and probs.grad.abs().sum() > 0


def test_gc_content():
    x = torch.tensor([[1, 2, 1, 2], [0, 3, 0, 3], [0, 1, 2, 3]])
    torch.testing.assert_close(GCReward()(x), torch.tensor([1.0, 0.0, 0.5]))
