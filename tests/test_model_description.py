"""A pre-trained checkpoint knows its model (svdd_lightning/model_description.py): the shipped checkpoints load by
path alone into the model the hand-built form gives, and a description that names anything but the project's
diffusions and networks, or no description at all, is refused by name."""

from __future__ import annotations

import pytest
import torch

import svdd_lightning as svdd
from svdd_lightning.errors import CheckpointError
from svdd_lightning.model_description import read_model_description


def gc_fraction(sequences):
    return [(s.count("G") + s.count("C")) / len(s) for s in sequences]


@pytest.mark.parametrize("domain", ["dna", "rna", "molecule", "image"])
def test_every_shipped_pretrained_checkpoint_describes_the_model_it_holds(domain):
    path = f"checkpoints/{domain}/pretrained.ckpt"
    diffusion = svdd.load_diffusion(path)  # load_state refuses weights that do not fit the rebuilt model
    assert not diffusion.training and not any(p.requires_grad for p in diffusion.parameters())
    assert read_model_description(path)["_target_"].startswith("svdd_lightning.diffusion.")


def test_the_path_alone_decodes_the_samples_of_the_hand_built_model():
    from svdd_lightning.diffusion.masked import MaskedDiffusion
    from svdd_lightning.networks.sequence import SequenceDenoiser

    net = SequenceDenoiser(vocab_size=4, channels=64, num_layers=6, kernel_size=5)
    by_hand = svdd.load_diffusion(MaskedDiffusion(network=net, vocab_size=4, seq_len=200, num_steps=8),
                                  "checkpoints/dna/pretrained.ckpt")
    described = svdd.load_diffusion("checkpoints/dna/pretrained.ckpt", num_steps=8)
    runs = [svdd.decode(diffusion=d, reward=gc_fraction, domain=svdd.NucleotideDomain(alphabet="ACGT"),
                        decoder="svdd_pm", decoder_options={"num_candidates": 2}, num_samples=2, batch_size=2,
                        seed=0, trainer=None) for d in (by_hand, described)]
    # Same class, same arguments, same weights, same generators: the same computation, so the same samples.
    assert runs[0].texts == runs[1].texts


def rewritten(tmp_path, source, change):
    ckpt = torch.load(source, weights_only=True)
    change(ckpt["svdd"])
    path = tmp_path / "changed.ckpt"
    torch.save(ckpt, path)
    return path


def test_a_description_naming_another_class_is_refused(tmp_path):
    def foreign(meta):
        meta["model"]["network"]["_target_"] = "os.system"

    path = rewritten(tmp_path, "checkpoints/dna/pretrained.ckpt", foreign)
    with pytest.raises(CheckpointError, match=r"os\.system.*refusing to build"):
        svdd.load_diffusion(path)


def test_a_checkpoint_without_a_description_names_the_other_way(tmp_path):
    path = rewritten(tmp_path, "checkpoints/dna/pretrained.ckpt", lambda meta: meta.pop("model"))
    with pytest.raises(CheckpointError, match=r"does not record its model.*load_diffusion\(diffusion, path\)"):
        svdd.load_diffusion(path)


def test_a_value_checkpoint_is_not_a_diffusion():
    with pytest.raises(CheckpointError, match="not a pre-trained diffusion"):
        svdd.load_diffusion("checkpoints/dna/value_hepg2_motif.ckpt")
