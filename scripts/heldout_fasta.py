"""Write held-out windows of a sequence domain's data as FASTA: seeds for inpainting and refinement
(``decode.py init.fasta=...``) that the pre-trained model never trained on (its validation split).

    python scripts/heldout_fasta.py [--domain dna] [--num 64] [--out outputs/heldout_dna.fasta]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--domain", default="dna")
    parser.add_argument("--num", type=int, default=64)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=["stage=pretrain", f"domain={args.domain}"])
    domain = instantiate(cfg.objects)
    data = instantiate(cfg.data, domain=domain)
    data.setup("fit")
    texts = domain.to_text(data.val_tokens[: args.num])
    out = Path(args.out or REPO / "outputs" / f"heldout_{args.domain}.fasta")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f">heldout_{k}\n{seq}\n" for k, seq in enumerate(texts)))
    print(f"wrote {len(texts)} held-out {args.domain} windows to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
