"""Antibody variable domains as amino-acid strings (the 20 standard residues), written as FASTA.

CDR-H3 is located by the Kabat rule on the sequence itself (Kabat et al. 1991, as summarised by Martin's
"rules for identifying CDRs"): it starts three residues after the conserved cysteine at Kabat position 92
(C-x-x, typically C-A-R) and ends just before the W-G-x-G motif that opens framework 4. In trastuzumab's heavy
chain "...AVYYCSRWGGDGFYAMDYWGQGTLVTVSS" that is WGGDGFYAMDY (positions 99-109). A record whose header states
``mask=START-END`` overrides the rule.

Naturalness of designs that started from seeds (inpainting): the pseudo-log-likelihood of the redesigned
positions under the model that designed them (AntiBERTy; each position masked in turn, mean log-probability
of its residue, as AntiBERTy's ``pseudo_log_likelihood``), and the identity to the seed over those positions,
beside uniqueness and diversity.

Pictures: the sequence domain's ``samples_positions.png`` and ``samples_logo.png``, the logo (logomaker's
'chemistry' colours) covering only the redesigned region (CDR-H3 by default) at its real 1-based positions.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

from svdd_lightning.domains.sequences import SequenceDomain

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
CDR_H3 = re.compile(r"C..(.{3,30}?)WG.G")


def cdr_h3_range(sequence: str) -> tuple[int, int]:
    """1-based inclusive (start, end) of CDR-H3 by the Kabat rule (module docstring); ValueError if not found."""
    matches = list(CDR_H3.finditer(sequence))
    if not matches:
        raise ValueError(f"no CDR-H3 (C-x-x ... W-G-x-G) in {sequence[:20]}...; state it in the FASTA header as "
                         f"mask=START-END")
    last = matches[-1]  # the Cys-92 / framework-4 pair is the last such motif in a variable domain
    return last.start(1) + 1, last.end(1)


class AntibodyDomain(SequenceDomain):
    name = "antibody"

    def __init__(self, *, native_name: str = "samples.fasta", pll_batch: int = 64) -> None:
        super().__init__(alphabet=AMINO_ACIDS, mask_letter="_", native_name=native_name, logo_colors="chemistry")
        self.pll_batch = int(pll_batch)

    def named_region(self, name: str, sequence: str) -> tuple[int, int]:
        if name.lower().replace("-", "_") in ("cdr_h3", "cdrh3", "h3"):
            return cdr_h3_range(sequence)
        raise ValueError(f"unknown region {name!r}; the antibody domain knows cdr_h3")

    @torch.no_grad()
    def naturalness(self, samples: Tensor, *, diffusion: Any, seed: int, init: Any = None) -> dict[str, float]:
        from svdd_lightning.metrics import token_diversity, unique_fraction

        out = {"unique_fraction": unique_fraction(samples)}
        diversity = token_diversity(samples, self.vocab_size)
        if diversity == diversity:
            out["diversity"] = diversity
        if init is None or init.masks is None:
            return out
        seeds = diffusion.to_data(init.seeds)
        rows = torch.arange(samples.shape[0]) % len(seeds)
        masks = init.masks[rows]
        same = (samples == seeds[rows]) & masks
        out["identity_to_seed"] = float((same.sum(1).float() / masks.sum(1).float()).mean())
        plls = [self.pseudo_log_likelihood(diffusion, samples[k], masks[k]) for k in range(samples.shape[0])]
        out["pseudo_log_likelihood"] = float(torch.tensor(plls).mean())
        return out

    def pseudo_log_likelihood(self, diffusion: Any, tokens: Tensor, positions: Tensor) -> float:
        """Mean log p(residue | the rest) over ``positions``, each masked in turn (one model call per position,
        in batches), under the diffusion's network."""
        ids = diffusion.from_data(tokens.unsqueeze(0)).to(diffusion.device)[0]
        where = positions.nonzero()[:, 0].tolist()
        total = 0.0
        for start in range(0, len(where), self.pll_batch):
            chunk = where[start:start + self.pll_batch]
            batch = ids.unsqueeze(0).repeat(len(chunk), 1)
            batch[torch.arange(len(chunk)), torch.tensor(chunk)] = diffusion.mask_index
            logits = diffusion.network(batch).index_select(-1, diffusion.token_ids).float()
            logp = torch.log_softmax(logits, dim=-1)
            picked = logp[torch.arange(len(chunk)), torch.tensor(chunk), tokens[chunk].to(logp.device)]
            total += float(picked.sum())
        return total / max(len(where), 1)
