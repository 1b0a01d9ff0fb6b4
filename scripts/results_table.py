"""Print a markdown table of decode runs from their summary.json files.

    python scripts/results_table.py outputs/accept/*/summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = {"pretrained": 0, "best_of_n": 1, "svdd_mc": 2, "svdd_pm": 3}
NATURALNESS = ["log_likelihood", "kmer3_correlation", "validity", "uniqueness", "novelty", "internal_diversity",
               "digit_rate", "frechet_distance"]


def main(paths: list[str]) -> None:
    rows = [json.loads(Path(p).read_text()) for p in paths]
    rows.sort(key=lambda s: (s["domain"], s["reward"], ORDER.get(s["decoder"], 9)))
    print("| domain | reward | decoder | median / q90 | calls per sample (denoiser / value / reward) | naturalness | wall s |")
    print("|---|---|---|---|---|---|---|")
    for s in rows:
        stats, calls, nat = s["reward_stats"], s["nfe_per_sample"], s["naturalness"]
        natural = ", ".join(f"{k} {nat[k]:.3g}" for k in NATURALNESS if k in nat)
        print(f"| {s['domain']} | {s['reward']} | {s['decoder']} | {stats['median']:.3f} / {stats['q90']:.3f} | "
              f"{calls['denoiser']:.0f} / {calls['value']:.0f} / {calls['reward']:.0f} | {natural} | "
              f"{s['wall_seconds']:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
