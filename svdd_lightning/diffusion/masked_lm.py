"""Hugging Face masked language models as masked diffusion models.

``from_masked_lm(model, tokenizer, alphabet=..., seq_len=...)`` wraps any ``transformers`` masked LM
(``AutoModelForMaskedLM``, ``BertForMaskedLM``, ``EsmForMaskedLM``...) as a
:class:`~svdd_lightning.diffusion.masked.MaskedDiffusion` that every decoder runs unchanged:

- states are the model's own token ids; the mask is the tokenizer's ``mask_token_id``; the sampleable tokens are
  the ids of the domain's letters (``alphabet``, in the domain's order), so special tokens are never sampled;
- the special tokens the model expects around a sequence are added on every call: whatever the tokenizer puts
  before and after a sequence when it encodes one ([CLS] ... [SEP] for BERT-style models
  such as AntiBERTy, <cls> ... <eos> for ESM), plus optional fixed conditioning tokens (``prefix_tokens``, e.g.
  a chain or species tag) right after the leading specials;
- masked LMs do not condition on time: the network is called on the tokens alone (``time_input=None``), and
  the schedule (log-linear by default) only decides how many positions are revealed per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.diffusion.schedules import MaskSchedule


def special_tokens_around(tokenizer) -> tuple[list[int], list[int]]:
    """(ids before, ids after) a sequence, as the tokenizer adds them for one sequence."""
    sentinel = tokenizer.mask_token_id
    built = list(tokenizer(tokenizer.mask_token, add_special_tokens=True)["input_ids"])
    if built.count(sentinel) != 1:
        raise ValueError(f"{type(tokenizer).__name__} does not keep its mask token {tokenizer.mask_token!r} as one "
                         f"token; cannot tell which special tokens it adds")
    where = built.index(sentinel)
    return list(built[:where]), list(built[where + 1:])


class MaskedLMDenoiser(nn.Module):
    """``(tokens (B, L)) -> logits (B, L, vocabulary)`` of a masked LM, with its special and conditioning tokens
    added around the sequence and their positions dropped from the output."""

    def __init__(self, *, model: nn.Module, prefix: Sequence[int], suffix: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("prefix", torch.tensor(list(prefix), dtype=torch.long), persistent=False)
        self.register_buffer("suffix", torch.tensor(list(suffix), dtype=torch.long), persistent=False)

    def forward(self, tokens: Tensor) -> Tensor:
        batch, length = tokens.shape
        ids = torch.cat([self.prefix.expand(batch, -1), tokens, self.suffix.expand(batch, -1)], dim=1)
        out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids))
        start = self.prefix.numel()
        return out.logits[:, start:start + length]


def from_masked_lm(model: nn.Module, tokenizer, *, alphabet: str, seq_len: int, num_steps: int = 128,
                   prefix_tokens: Sequence[str] = (), schedule: MaskSchedule | None = None) -> MaskedDiffusion:
    """A masked diffusion over ``seq_len`` letters of ``alphabet`` run by a masked LM (see the module docstring)."""
    if tokenizer.mask_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no mask token: from_masked_lm needs a masked LM's tokenizer")
    ids = tokenizer.convert_tokens_to_ids(list(alphabet))
    unknown = [letter for letter, i in zip(alphabet, ids) if i is None or i == tokenizer.unk_token_id]
    if unknown:
        raise ValueError(f"the tokenizer has no token for the letters {unknown} of alphabet {alphabet!r}")
    before, after = special_tokens_around(tokenizer)
    conditioning = tokenizer.convert_tokens_to_ids(list(prefix_tokens))
    unknown = [tok for tok, i in zip(prefix_tokens, conditioning) if i is None or i == tokenizer.unk_token_id]
    if unknown:
        raise ValueError(f"prefix_tokens {unknown} are not in the tokenizer's vocabulary")
    network = MaskedLMDenoiser(model=model.eval(), prefix=[*before, *conditioning], suffix=after)
    return MaskedDiffusion(network=network, vocab_size=len(alphabet), seq_len=seq_len, num_steps=num_steps,
                           mask_index=tokenizer.mask_token_id, token_ids=ids, schedule=schedule, time_input=None)
