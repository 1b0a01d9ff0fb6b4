"""Batched candidates under a memory cap, and memoised/pooled CPU oracles."""


import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.decoders.best_of_n import BestOfN
from svdd_lightning.decoders.svdd import SVDD
from svdd_lightning.rewards.molecule import QEDReward
from svdd_lightning.rewards.pool import PooledScorer
from svdd_lightning.rewards.rna import MFEReward
from svdd_lightning.values.posterior_mean import PosteriorMeanValue
from tests.helpers import image_domain, molecule_domain, on_domain, rna_domain  # noqa: F401
from tests.helpers import counted, gc_reward, tiny_masked, tiny_value

B = 6


@pytest.mark.parametrize("kind", ["pm", "mc", "bon"])
def test_a_batch_cap_leaves_samples_and_counts_unchanged(kind):
    d = tiny_masked()
    reward = gc_reward()

    def make(cap):
        if kind == "bon":
            return BestOfN(reward=reward, num_candidates=4, max_batch=cap)
        value = PosteriorMeanValue(reward=reward, diffusion=d) if kind == "pm" else tiny_value(d.num_steps)
        return SVDD(reward=reward, value=value, num_candidates=4, max_batch=cap)

    free = counted(make(None), d, B, ops.make_generators(2, range(B)))
    capped = counted(make(5), d, B, ops.make_generators(2, range(B)))
    assert torch.equal(free.samples, capped.samples)
    assert free.info["made"] == capped.info["made"] and free.info["asked"] == capped.info["asked"]


def test_a_batch_cap_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        SVDD(reward=gc_reward(), value=tiny_value(), max_batch=0)


def _squares(xs):
    return [float(x * x) for x in xs]


def test_pooled_scorer_memoises_by_key_and_counts_hits():
    scorer = PooledScorer(_squares, workers=0)
    assert scorer([1, 2, 1, 2], [1, 2, 1, 2]) == [1.0, 4.0, 1.0, 4.0]
    assert scorer([2, 3], [2, 3]) == [4.0, 9.0]
    assert (scorer.stats.lookups, scorer.stats.hits) == (6, 3)  # 1, 2, 3 scored once each


def test_pooled_scorer_gives_the_same_scores_in_a_pool():
    objects = list(range(100))
    pooled = PooledScorer(_squares, workers=2, cache=False, min_pool_batch=8)
    try:
        assert pooled(objects, objects) == [float(x * x) for x in objects]
        assert pooled.stats.pooled == 100
    finally:
        pooled.close()


def test_molecule_reward_pool_and_cache_agree_with_plain_scoring():
    plain = on_domain(QEDReward(workers=0, cache=False), molecule_domain())
    tokens = torch.randint(0, len(plain.domain.vocabulary.tokens), (40, 20))
    tokens = torch.cat([tokens, tokens[:10]])  # repeats, as late SVDD steps produce
    fast = on_domain(QEDReward(workers=2, cache=True), molecule_domain())
    fast.scorer.min_pool_batch = 8
    try:
        torch.testing.assert_close(fast(tokens), plain(tokens))
        stats = fast.cache_stats()
        assert stats["hits"] >= 10 and stats["scored_in_pool"] > 0
    finally:
        fast.scorer.close()


def test_mfe_reward_is_picklable_with_its_pool():
    import pickle

    reward = on_domain(MFEReward(workers=2), rna_domain())
    reward.scorer.min_pool_batch = 2
    seqs = torch.randint(0, 4, (6, 30))
    try:
        first = reward(seqs)
        copy = pickle.loads(pickle.dumps(reward))
        torch.testing.assert_close(copy(seqs), first)
    finally:
        reward.scorer.close()


def test_freed_memory_is_kept_on_glibc():
    import platform

    from svdd_lightning.allocator import keep_freed_memory

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert keep_freed_memory() is True
