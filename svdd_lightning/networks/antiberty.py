"""AntiBERTy (Ruffolo et al. 2021), the antibody masked language model whose trained weights ship inside the
PyPI wheel ``antiberty==0.1.3`` (MIT; 26M parameters, BERT, 8 layers, hidden 512, pre-trained on 558M natural
antibody sequences): loaded from the installed package, nothing downloaded.

Its own model class fails to load under transformers 5, so the weights go into transformers' own
``BertForMaskedLM`` (the same BERT encoder and masked-LM head; the checkpoint's extra species, chain and graft
heads and its pooler are not used), and its vocabulary into a ``BertTokenizer`` (no lower-casing), as
AntiBERTy's runner builds it. The package is found by path, without importing it (its ``__init__`` needs
transformers 4).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from svdd_lightning.errors import CheckpointError

MODEL_FOLDER = "trained_models/AntiBERTy_md_smooth"
VOCAB_FILE = "trained_models/vocab.txt"
# Keys of the checkpoint that BertForMaskedLM has no place for: the pooler, a position-id buffer transformers 5
# no longer stores, and AntiBERTy's own classification heads.
UNUSED_PREFIXES = ("bert.pooler.", "bert.embeddings.position_ids", "cls.species", "cls.chain", "cls.graft")


def antiberty_folder() -> Path:
    spec = importlib.util.find_spec("antiberty")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("AntiBERTy is not installed: `make setup` installs it (pip install --no-deps "
                              "antiberty==0.1.3, the release whose wheel ships the trained weights).")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / MODEL_FOLDER / "pytorch_model.bin").is_file():
        raise CheckpointError(f"{folder} holds no trained AntiBERTy weights ({MODEL_FOLDER}/pytorch_model.bin); "
                              f"install antiberty==0.1.3 (1.0 ships none).")
    return folder


def load_antiberty():
    """(BertForMaskedLM with AntiBERTy's weights, in eval mode; its BertTokenizer)."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    folder = antiberty_folder()
    config = BertConfig.from_pretrained(folder / MODEL_FOLDER)
    model = BertForMaskedLM(config)
    state = torch.load(folder / MODEL_FOLDER / "pytorch_model.bin", map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=False)
    unexpected = [k for k in result.unexpected_keys if not k.startswith(UNUSED_PREFIXES)]
    missing = [k for k in result.missing_keys if "position_ids" not in k]
    if missing or unexpected:
        raise CheckpointError(f"AntiBERTy's weights do not fit BertForMaskedLM: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    # transformers 5's BertTokenizer takes the vocabulary itself (a path given as vocab_file= is ignored).
    words = (folder / VOCAB_FILE).read_text().split()
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(words)}, do_lower_case=False)
    return model.eval(), tokenizer


def antiberty_diffusion(*, seq_len: int, num_steps: int = 64):
    """AntiBERTy as a masked diffusion over the 20 amino acids (Hydra form of the antibody domain)."""
    from svdd_lightning.diffusion.masked_lm import from_masked_lm
    from svdd_lightning.domains.antibodies.domain import AMINO_ACIDS

    model, tokenizer = load_antiberty()
    return from_masked_lm(model, tokenizer, alphabet=AMINO_ACIDS, seq_len=seq_len, num_steps=num_steps)
