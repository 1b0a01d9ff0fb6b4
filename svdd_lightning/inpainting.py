"""Inpainting: decode from existing sequences with some positions masked (a CDR loop, a promoter region).

``init.fasta=FILE`` gives the seeds (one FASTA record each, all of one length) and ``init.mask=`` which positions
to redesign:

- ranges of 1-based, inclusive positions: ``"99-109"``, ``"5,10-12"``;
- a fraction of positions, drawn per sample: ``0.25``;
- ``header``: the ranges written in each record's header as ``mask=99-109`` (so seeds may differ in which region
  is redesigned);
- a region the domain locates in each seed, e.g. ``cdr_h3`` for antibodies.

Sample ``i`` starts from seed ``i mod S`` with its masked positions set to the mask token, at the step of the
schedule where that fraction of tokens is masked (t0 = the first t whose mask probability reaches the masked
fraction), and every decoder runs unchanged from there: each batch's :class:`~svdd_lightning.starts.Start` (the
partially masked seeds, t0, the seed of each sample) is the decoder call's ``start``. Unmasked positions never change (carry-over). A sample depends only
on (seed, index), as for any decode.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from svdd_lightning.diffusion.masked import MaskedDiffusion
from svdd_lightning.errors import ConfigError, DataError
from svdd_lightning.starts import Start

RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


@dataclass
class SeedRecord:
    name: str
    description: str
    sequence: str


def read_seed_fasta(path: str | Path) -> list[SeedRecord]:
    """FASTA records (Biopython's parser), with a named error for a missing, empty or malformed file."""
    from Bio.SeqIO.FastaIO import SimpleFastaParser

    from svdd_lightning.paths import resolve_path

    file = resolve_path(path)
    if not file.is_file():
        raise DataError(f"init.fasta={file} does not exist; pass a FASTA file of the sequences to start from.")
    text = file.read_text()
    if not text.lstrip().startswith(">"):
        raise DataError(f"init.fasta={file} is not FASTA: it must start with a '>' header line (got "
                        f"{text.strip()[:30]!r}).")
    with open(file) as handle:
        records = [SeedRecord(title.split()[0] if title.split() else f"seed_{k}", title, seq.replace(" ", "").upper())
                   for k, (title, seq) in enumerate(SimpleFastaParser(handle))]
    empty = [r.name for r in records if not r.sequence]
    if not records or empty:
        raise DataError(f"init.fasta={file} has {'no records' if not records else f'empty records: {empty[:3]}'}.")
    return records


def read_seed_smiles(path: str | Path) -> list[SeedRecord]:
    """One SMILES per line (the first whitespace-separated field; an optional second one names it)."""
    from svdd_lightning.paths import resolve_path

    file = resolve_path(path)
    if not file.is_file():
        raise DataError(f"init.smiles={file} does not exist; pass a file with one SMILES per line.")
    records = []
    for k, line in enumerate(file.read_text().splitlines()):
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            records.append(SeedRecord(fields[1] if len(fields) > 1 else f"seed_{k}", line, fields[0]))
    if not records:
        raise DataError(f"init.smiles={file} holds no SMILES.")
    return records


def parse_ranges(spec: str, length: int, *, what: str) -> Tensor:
    """1-based inclusive ranges ``"5,10-12"`` -> a boolean mask (L,)."""
    mask = torch.zeros(length, dtype=torch.bool)
    for part in str(spec).split(","):
        match = RANGE.match(part)
        if not match:
            raise ConfigError(f"{what}={spec!r}: use 1-based positions and ranges like 99-109 or '\"99-109,120\"' (quoted on "
                              f"the command line), a fraction like 0.25, or header (mask=99-109 in each FASTA header).")
        start, end = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= start <= end <= length:
            raise ConfigError(f"{what}={spec!r}: range {start}-{end} is outside positions 1..{length}.")
        mask[start - 1:end] = True
    return mask


@dataclass
class Inpainting:
    """Seeds (S, L) as the model's token ids, which positions of each to mask, and the step decoding starts at.
    ``start(indices, seed=...)`` is the :class:`~svdd_lightning.starts.Start` of a batch of sample indices, passed
    to the decoder; nothing about the seeds is kept in the diffusion."""

    seeds: Tensor  # (S, L) long, the model's ids
    masks: Tensor | None  # (S, L) bool, or None for a fraction drawn per sample
    mask_index: int  # the model's mask token
    first_step: int  # the first step whose mask probability reaches the masked fraction (MaskedDiffusion)
    fraction: float | None = None
    names: list[str] = field(default_factory=list)
    source: str = ""  # the seed file, for summary.json
    mask_spec: str = ""  # init.mask as given

    @property
    def masked_fraction(self) -> float:
        return masked_fraction(self.masks, self.fraction)

    def starts(self, indices: Tensor, *, seed: int) -> Tensor:
        """The partially masked start of each sample index (B, L)."""
        rows = self.seeds[indices.cpu() % len(self.seeds)].clone()
        if self.masks is not None:
            masks = self.masks[indices.cpu() % len(self.seeds)]
        else:
            length = self.seeds.shape[1]
            count = max(1, round(self.fraction * length))
            masks = torch.zeros_like(rows, dtype=torch.bool)
            for row, index in enumerate(indices.tolist()):
                # Its own stream (not the sample's decoding generator): the positions depend on (seed, index) only.
                gen = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(index) * 7_919 + 0x1A2B) % (2**63))
                masks[row, torch.randperm(length, generator=gen)[:count]] = True
        rows[masks] = self.mask_index
        return rows

    def start(self, indices: Tensor, *, seed: int) -> Start:
        """Where the samples ``indices`` begin: sample i from seed i mod S, masked, at ``first_step``; population
        decoders keep each seed's designs together (no groups when there is one seed); a refinement redesigns
        only the masked positions."""
        states = self.starts(indices, seed=seed)
        groups = None if len(self.seeds) == 1 else (indices.cpu() % len(self.seeds)).long()
        return Start(states=states, first_step=self.first_step, groups=groups,
                     redesignable=states == self.mask_index)

    def timesteps(self) -> list[int]:
        """The reverse steps a decode from these seeds runs: first_step, ..., 1."""
        return list(range(self.first_step, 0, -1))

    def describe(self) -> dict:
        """What summary.json records of the seeds (``init``)."""
        return {"source": self.source, "mask": self.mask_spec, "num_seeds": len(self.seeds),
                "seed_names": self.names[:20], "masked_fraction": round(self.masked_fraction, 6),
                "start_step": self.first_step}


def masked_fraction(masks: Tensor | None, fraction: float | None) -> float:
    """The largest share of a seed's positions that is masked: where the decode must start."""
    return float(fraction) if masks is None else float(masks.float().mean(dim=1).max())


def build_inpainting(*, fasta: str | None = None, mask: str | float, domain, diffusion: MaskedDiffusion,
                     smiles: str | None = None) -> Inpainting:
    """Read ``init.fasta`` (or ``init.smiles``) through the domain (letters or molecules checked) and
    ``init.mask``; seeds become model ids."""
    records = read_seed_fasta(fasta) if fasta else read_seed_smiles(smiles)
    fasta = fasta or smiles
    lengths = {len(r.sequence) for r in records}
    if len(lengths) != 1 and not smiles:  # SMILES are padded to the domain's token length
        raise DataError(f"init.fasta={fasta}: the seeds have lengths {sorted(lengths)}; one run decodes seeds of one "
                        f"length (split the file by length).")
    try:
        # SMILES keep their case (c is aromatic carbon); sequences are read upper-case.
        tokens = domain.from_objects([r.description.split()[0] if smiles else r.sequence for r in records])
    except ValueError as exc:
        what = f"init.smiles={smiles}: {exc}; each line must be a valid SMILES" if smiles else \
            f"init.fasta={fasta}: {exc}; the seeds must be in the domain's alphabet {getattr(domain, 'alphabet', '')}"
        raise DataError(what + ".") from exc
    seeds = diffusion.from_data(tokens)
    length = seeds.shape[1]
    names = [r.name for r in records]

    def seeded(masks: Tensor | None, fraction: float | None) -> Inpainting:
        first_step = diffusion.step_for_fraction(masked_fraction(masks, fraction))
        return Inpainting(seeds=seeds, masks=masks, mask_index=diffusion.mask_index, first_step=first_step,
                          fraction=fraction, names=names, source=str(fasta), mask_spec=str(mask))

    if str(mask).strip().lower() == "header":
        masks = []
        for r in records:
            found = re.search(r"mask=(\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)", r.description)
            if not found:
                raise DataError(f"init.mask=header but the record {r.name!r} of {fasta} has no mask=START-END in its "
                                f"header.")
            masks.append(parse_ranges(found.group(1).strip(), length, what=f"the header of {r.name}"))
        return seeded(torch.stack(masks), None)
    if isinstance(mask, (list, tuple)) or type(mask).__name__ == "ListConfig":  # init.mask=[99-109,120]
        mask = ",".join(str(part) for part in mask)
    spec = str(mask).strip()
    if re.fullmatch(r"[A-Za-z][\w-]*", spec):  # a region the domain can locate, e.g. cdr_h3
        if not hasattr(domain, "named_region"):
            raise ConfigError(f"init.mask={spec}: domain {getattr(domain, 'name', '')} locates no named regions; "
                              f"give positions (99-109) or a fraction.")
        masks = []
        for r in records:
            try:
                start, end = domain.named_region(spec, r.sequence)
            except ValueError as exc:
                raise DataError(f"init.mask={spec}, record {r.name!r} of {fasta}: {exc}") from exc
            masks.append(parse_ranges(f"{start}-{end}", length, what=f"{spec} of {r.name}"))
        return seeded(torch.stack(masks), None)
    try:
        fraction = float(mask)
    except (TypeError, ValueError):
        fraction = None
    if fraction is not None and "-" not in spec and "," not in spec and fraction < 1:
        if not 0 < fraction < 1:
            raise ConfigError(f"init.mask={mask}: a fraction must be in (0, 1).")
        return seeded(None, fraction)
    ranges = parse_ranges(spec, length, what="init.mask")
    return seeded(ranges.expand(len(records), -1).clone(), None)


def seeds_from_options(init: Mapping | None, *, domain, diffusion) -> Inpainting | None:
    """``init.fasta`` / ``init.mask`` (or ``init.smiles``), from the command line or ``decode(init={...})``: the seeds
    a decode starts from, or None for a decode from the prior."""
    init = init or {}
    source = init.get("fasta") or init.get("smiles")
    if not source:
        if init.get("mask") is not None:
            raise ConfigError("init.mask= needs init.fasta=FILE (or init.smiles=FILE), the sequences to start from.")
        return None
    if init.get("mask") is None:
        raise ConfigError(f"init: {source} needs init.mask=: 1-based ranges (99-109), a fraction (0.25) or "
                          f"header (mask=START-END in each FASTA header).")
    if not isinstance(diffusion, MaskedDiffusion):
        raise ConfigError(f"init.fasta= starts masked (token) models from seeds; domain '{getattr(domain, 'name', '')}' "
                          f"is not one.")
    return build_inpainting(fasta=init.get("fasta"), smiles=init.get("smiles"), mask=init["mask"], domain=domain,
                            diffusion=diffusion)
