"""Ship one Ehrlich preset's pre-trained prior for another preset of the same Markov process.

A prior learns the function's Markov process (ehrlich.num_states, dim, random_seed), not its motifs, and
`train.py stage=pretrain domain=ehrlich` trains on that process's samples alone: two presets that share the process
train to the same weights (checked: `ehrlich=hard` and `ehrlich=moderate` gave bitwise equal tensors after 10
steps). So the moderate preset's prior is the hard preset's training run, labelled with the moderate domain's name
and function (what decode.py checks), rather than a second identical training.

    python scripts/ehrlich_shared_prior.py --source checkpoints/ehrlich_hard/pretrained.ckpt \
        --preset moderate --out checkpoints/ehrlich_moderate/pretrained.ckpt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PROCESS = ("num_states", "dim", "random_seed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="a pretrained.ckpt of domain=ehrlich")
    parser.add_argument("--preset", required=True, help="the preset (configs/ehrlich/NAME.yaml) to label it for")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    checkpoint = torch.load(args.source, map_location="cpu", weights_only=True)
    meta = checkpoint["svdd"]
    from svdd_lightning.domains.ehrlich import FUNCTION_KEYS

    node = OmegaConf.load(REPO / "configs" / "ehrlich" / f"{args.preset}.yaml")
    name, preset = node.name, {k: node[k] for k in FUNCTION_KEYS}
    differs = [k for k in PROCESS if meta["ehrlich"][k] != preset[k]]
    if differs:
        sys.exit(f"error: {args.source} learned another Markov process ({', '.join(differs)} differ from preset "
                 f"{args.preset}); train this preset's prior with `python train.py stage=pretrain domain=ehrlich "
                 f"ehrlich={args.preset}`.")
    checkpoint["svdd"] = {**meta, "domain": f"ehrlich_{name}", "ehrlich": preset}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    print(f"wrote {args.out}: the weights of {args.source}, labelled domain ehrlich_{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
