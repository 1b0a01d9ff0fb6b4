"""Record in each shipped pre-trained checkpoint the model it holds (svdd_lightning/model_description.py), as
train.py stage=pretrain now does, so that svdd_lightning.load_diffusion(PATH) needs no retyped sizes. The
description is the domain's diffusion node as configs/domain/NAME.yaml composes it; the weights are not touched
(checked: every tensor equal after writing). Idempotent.

    python scripts/describe_checkpoints.py [dna rna molecule image]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from svdd_lightning.atomic import atomic_path  # noqa: E402
from svdd_lightning.checkpoints import load_tensors_only  # noqa: E402
from svdd_lightning.model_description import describe_model  # noqa: E402

DOMAINS = ("dna", "rna", "molecule", "image")


def describe(domain: str) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"domain={domain}", "stage=pretrain"])
    path = ROOT / cfg.diffusion.checkpoint
    checkpoint = load_tensors_only(path)
    description = describe_model(cfg.diffusion)
    if checkpoint.get("svdd", {}).get("model") == description:
        print(f"{path.relative_to(ROOT)}: already describes its model")
        return
    checkpoint.setdefault("svdd", {})["model"] = description
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    again = load_tensors_only(path)
    before = checkpoint["state_dict"]
    assert again["state_dict"].keys() == before.keys()
    assert all(torch.equal(again["state_dict"][k], before[k]) for k in before), "weights changed"
    print(f"{path.relative_to(ROOT)}: records {description['_target_']} ({len(before)} tensors unchanged)")


if __name__ == "__main__":
    for name in sys.argv[1:] or DOMAINS:
        describe(name)
