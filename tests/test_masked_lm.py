"""Masked language models as masked diffusion models (svdd_lightning/diffusion/masked_lm.py): AntiBERTy, the
antibody language model whose weights ship in the antiberty==0.1.3 wheel, against its own runner's outputs
(recorded by tests/fixtures/antiberty_reference.py in a transformers 4 side environment, command in that file),
and a tiny BERT built from a config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from svdd_lightning import ops
from svdd_lightning.diffusion.masked_lm import from_masked_lm

FIXTURE = Path(__file__).parent / "fixtures" / "antiberty_reference.npz"
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


@pytest.fixture(scope="module")
def antiberty():
    from svdd_lightning.networks.antiberty import load_antiberty

    return load_antiberty()


def encode(diffusion, sequence: str) -> torch.Tensor:
    """Letters (and "_" for a mask) -> the model's ids."""
    ids = [diffusion.mask_index if c == "_" else int(diffusion.token_ids[AMINO_ACIDS.index(c)]) for c in sequence]
    return torch.tensor([ids])


def test_adapter_matches_antibertys_own_runner(antiberty):
    """Per-position probabilities over the 20 amino acids equal AntiBERTyRunner's within 1e-5, masked inputs and
    not; at masked positions denoise() returns exactly those."""
    model, tokenizer = antiberty
    reference = np.load(FIXTURE)
    for k, sequence in enumerate(reference["inputs"]):
        diffusion = from_masked_lm(model, tokenizer, alphabet=AMINO_ACIDS, seq_len=len(sequence))
        x = encode(diffusion, str(sequence))
        expected = reference[f"probs_{k}"]
        with torch.no_grad():
            logits = diffusion.network(x).index_select(-1, diffusion.token_ids)
            probs = torch.softmax(logits.double(), dim=-1)[0].numpy()
            denoised = diffusion.denoise(x, 7)[0].double().numpy()
        assert np.abs(probs - expected).max() < 1e-5
        masked = np.array([c == "_" for c in str(sequence)])
        if masked.any():
            assert np.abs(denoised[masked] - expected[masked]).max() < 1e-5
        assert np.abs(probs - np.roll(expected, 1, axis=0)).max() > 1e-2  # the comparison can fail


def test_antiberty_special_tokens_and_vocabulary(antiberty):
    model, tokenizer = antiberty
    diffusion = from_masked_lm(model, tokenizer, alphabet=AMINO_ACIDS, seq_len=10)
    assert diffusion.network.prefix.tolist() == [tokenizer.cls_token_id]
    assert diffusion.network.suffix.tolist() == [tokenizer.sep_token_id]
    assert diffusion.mask_index == tokenizer.mask_token_id == 4
    assert diffusion.token_ids.tolist() == list(range(5, 25))  # A..Y after [PAD] [UNK] [CLS] [SEP] [MASK]
    assert not diffusion.states_are_data and diffusion.time_input is None


def test_antiberty_infills_a_masked_cdr_with_amino_acids_only(antiberty):
    model, tokenizer = antiberty
    heavy = str(np.load(FIXTURE)["heavy"])
    diffusion = from_masked_lm(model, tokenizer, alphabet=AMINO_ACIDS, seq_len=len(heavy), num_steps=4)
    x = encode(diffusion, heavy[:98] + "_" * 11 + heavy[109:]).repeat(2, 1)
    gens = ops.make_generators(0, range(2))
    with torch.no_grad():
        for t in (2, 1):  # a partially masked start: decode from step 2 of 4
            x = diffusion.step(x, t, gens).prev_sample
    letters = diffusion.to_data(x)
    assert (letters < 20).all()
    designed = ["".join(AMINO_ACIDS[i] for i in row.tolist()) for row in letters]
    for seq in designed:
        assert seq[:98] == heavy[:98] and seq[109:] == heavy[109:]  # only the masked region changed


def tiny_bert(tmp_path):
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "x", *"ACGT", "y"]
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(words)}, do_lower_case=False)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32, max_position_embeddings=64))
    return model.eval(), tokenizer


def test_a_tiny_bert_decodes_with_every_token_decoder(tmp_path):
    """A BERT-style masked LM with special and extra tokens around the letters: pretrained sampling, SVDD-PM and
    Best-of-N only ever produce the alphabet's letters, and a conditioning token changes the model's input."""
    import svdd_lightning as svdd

    model, tokenizer = tiny_bert(tmp_path)
    diffusion = from_masked_lm(model, tokenizer, alphabet="ACGT", seq_len=12, num_steps=6)
    assert diffusion.token_ids.tolist() == [6, 7, 8, 9]

    def gc(seqs):
        return [sum(c in "GC" for c in s) / len(s) for s in seqs]

    for decoder in ("pretrained", "best_of_n", "svdd_pm"):
        options = {} if decoder == "pretrained" else {"num_candidates": 3}
        result = svdd.decode(diffusion=diffusion, reward=gc, domain=svdd.NucleotideDomain(alphabet="ACGT"),
                             decoder=decoder, decoder_options=options, num_samples=4, seed=0, naturalness=False)
        assert all(set(text) <= set("ACGT") and len(text) == 12 for text in result.texts)
    tagged = from_masked_lm(model, tokenizer, alphabet="ACGT", seq_len=12, prefix_tokens=["y"])
    assert tagged.network.prefix.tolist() == [tokenizer.cls_token_id, 10]
    x = diffusion.prior(1, ops.make_generators(0, [0]))
    assert not torch.allclose(diffusion.network(x), tagged.network(x))


def test_letters_the_tokenizer_lacks_are_a_clear_error(tmp_path):
    model, tokenizer = tiny_bert(tmp_path)
    with pytest.raises(ValueError, match=r"no token for the letters \['U'\]"):
        from_masked_lm(model, tokenizer, alphabet="ACGU", seq_len=8)


def test_an_esm_style_model_gets_its_bos_and_eos(tmp_path):
    """ESM's tokenizer puts <cls> before and <eos> after a sequence (BERT's: [CLS], [SEP]); a tiny EsmForMaskedLM
    with ESM-2's vocabulary decodes amino acids only."""
    import svdd_lightning as svdd
    from transformers import EsmConfig, EsmForMaskedLM, EsmTokenizer

    words = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO", ".", "-", "<null_1>", "<mask>"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = EsmTokenizer(vocab_file=str(tmp_path / "vocab.txt"))
    torch.manual_seed(0)
    model = EsmForMaskedLM(EsmConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64, pad_token_id=1,
                                     mask_token_id=32))
    diffusion = from_masked_lm(model, tokenizer, alphabet=AMINO_ACIDS, seq_len=10, num_steps=5)
    assert diffusion.network.prefix.tolist() == [0] and diffusion.network.suffix.tolist() == [2]
    assert diffusion.mask_index == 32 and 3 not in diffusion.token_ids.tolist()  # <unk> is never sampled

    def charge(seqs):
        return [s.count("K") + s.count("R") - s.count("D") - s.count("E") for s in seqs]

    result = svdd.decode(diffusion=diffusion, reward=charge, domain=svdd.SequenceDomain(alphabet=AMINO_ACIDS),
                         decoder="svdd_pm", decoder_options={"num_candidates": 3}, num_samples=3, seed=0,
                         naturalness=False)
    assert all(len(t) == 10 and set(t) <= set(AMINO_ACIDS) for t in result.texts)


def test_a_built_decoder_must_score_data_not_model_ids(tmp_path):
    """A decoder built by hand around a masked LM would hand the reward model ids (6..9 here), not letters: decode()
    refuses it unless its reward went through reward_of_states, which maps the states to data first."""
    import svdd_lightning as svdd
    from svdd_lightning.decoders.best_of_n import BestOfN
    from svdd_lightning.errors import ConfigError
    from svdd_lightning.rewards.build import as_reward
    from svdd_lightning.rewards.latent import reward_of_states

    model, tokenizer = tiny_bert(tmp_path)
    diffusion = from_masked_lm(model, tokenizer, alphabet="ACGT", seq_len=8, num_steps=4)
    domain = svdd.NucleotideDomain(alphabet="ACGT")

    def gc(seqs):
        return [sum(c in "GC" for c in s) / len(s) for s in seqs]

    raw = as_reward(gc, domain=domain)
    with pytest.raises(ConfigError, match="states are not data"):
        svdd.decode(diffusion=diffusion, reward=raw, decoder=BestOfN(reward=raw, num_candidates=2), domain=domain,
                    num_samples=2, naturalness=False)
    wrapped = reward_of_states(raw, diffusion)
    result = svdd.decode(diffusion=diffusion, reward=wrapped, decoder=BestOfN(reward=wrapped, num_candidates=2),
                         domain=domain, num_samples=2, naturalness=False)
    assert result.rewards.tolist() == pytest.approx(gc(result.texts))
