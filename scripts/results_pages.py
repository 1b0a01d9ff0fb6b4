"""Stamp the results pages of the docs (docs/results/*.md) from the machine-readable result files.

    python scripts/results_pages.py          # rewrite the generated blocks in place
    python scripts/results_pages.py --check  # exit 1 if a page is not what the result files give

Each page holds generated blocks between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`: the stamp
(command, date, commit and machine of the result) and, where a result file has them, the tables. The prose around
them is written by hand. Results without a machine-readable source keep the text and provenance the README stated;
their stamp says so. The commit is the last one that changed the result file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
DECODERS = ["pretrained", "best_of_n", "dps", "smc", "svdd_mc", "svdd_pm", "svdd_r", "beam", "svdd_smc", "tree",
            "tree_search"]
README_COMMIT = "0e3b138"  # the README these pages' hand-written text was moved from


def last_commit(path: Path) -> str:
    """'<hash> (<date>)' of the last commit that changed path, or 'uncommitted'."""
    out = subprocess.run(["git", "log", "-1", "--format=%h (%cs)", "--", str(path)], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    return out or "uncommitted"


def stamp(*, command: str, date: str, commit: str, machine: str, source: str) -> str:
    return "\n".join(["!!! info \"Provenance\"", f"    - **Command:** `{command}`", f"    - **Date:** {date}",
                      f"    - **Commit:** {commit}", f"    - **Machine:** {machine}", f"    - **Source:** {source}"])


def interval(value: float, ci: list[float]) -> str:
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def benchmark_blocks() -> dict[str, str]:
    path = ROOT / "docs" / "benchmark" / "benchmark.json"
    data = json.loads(path.read_text())
    date = re.search(r"\d{4}-\d{2}-\d{2}", data["command"])
    # a run whose command names no date: the date the sessions that ran it recorded beside it, if any
    date = date.group(0) if date else data.get("date", "not recorded")
    blocks = {"stamp": stamp(command=data["command"], date=date,
                             commit=last_commit(path), machine=data["machine"],
                             source="`docs/benchmark/benchmark.json` (the full report: "
                                    "[benchmark report](../benchmark/benchmark.md))")}
    cells = {(r["domain"], r["reward"], r["decoder"]): r for r in data["rows"] if r.get("status", "ok") == "ok"}
    tasks = [tuple(t) for t in data["mode"]["tasks"]]
    lines = ["| Task | " + " | ".join(DECODERS) + " |", "|---" * (len(DECODERS) + 1) + "|"]
    for domain, reward in tasks:
        row = [interval(cells[(domain, reward, d)]["median"], cells[(domain, reward, d)]["median_ci"])
               if (domain, reward, d) in cells else "-" for d in DECODERS]
        lines.append(f"| {domain} / {reward} | " + " | ".join(row) + " |")
    blocks["median"] = "\n".join(lines)
    return blocks


def flow_blocks() -> dict[str, str]:
    """The digits as a rectified flow (domain=image_flow): the benchmark's rows of docs/flow/benchmark.json."""
    path = ROOT / "docs" / "flow" / "benchmark.json"
    data = json.loads(path.read_text())
    blocks = {"stamp": stamp(command=data["command"], date=data.get("date", "not recorded"), commit=last_commit(path),
                             machine=data["machine"], source="`docs/flow/benchmark.json` (the full report: "
                                                             "[flow benchmark report](../flow/benchmark.md))")}
    rows = [r for r in data["rows"] if r.get("status", "ok") == "ok"]
    lines = ["| method | median [95% interval] | 90th percentile | calls per sample | digit rate | Fréchet distance |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        nat = r.get("naturalness", {})
        lines.append(f"| {r['decoder']} | {interval(r['median'], r['median_ci'])} | {r['q90']:.3f} | "
                     f"{r['calls_per_sample']['total']:.0f} | {nat.get('digit_rate', float('nan')):.3f} | "
                     f"{nat.get('frechet_distance', float('nan')):.3f} |")
    blocks["median"] = "\n".join(lines)
    return blocks


def speed_blocks() -> dict[str, str]:
    path = ROOT / "benchmarks" / "speed.json"
    data = json.loads(path.read_text())
    machine = f"{data['device']}, torch {data['torch']}, fp32 matmul peak {data['peak_fp32_matmul_gflops']} GFLOP/s"
    blocks = {"stamp": stamp(command="python benchmarks/speed.py --repeats 1 --no_compile (as the README stated; "
                                     "--loop_only for the loop's own time)", date=data["date"] + " (loop: "
                                     + data["loop_overhead"]["before"]["date"] + ")", commit=last_commit(path),
                             machine=machine, source="`benchmarks/speed.json`")}
    latent = ROOT / "benchmarks" / "latent_memory.json"
    lat = json.loads(latent.read_text())
    m = lat["machine"]
    blocks["latent_stamp"] = stamp(command="python benchmarks/latent_memory.py", date=last_commit(latent).split("(")[-1]
                                   .rstrip(")") + " (commit date)", commit=last_commit(latent),
                                   machine=f"{m['cpus']} CPUs, torch {m['torch']}, {m['platform']}",
                                   source="`benchmarks/latent_memory.json`")
    lines = ["| M | peak memory growth, uncapped | with `max_batch=4` | s per step and sample, uncapped | "
             "with `max_batch=4` |", "|---|---|---|---|---|"]
    for row in lat["rows"]:
        u, c = row["uncapped"], row["max_batch=4"]
        lines.append(f"| {row['num_candidates']} | {u['peak_growth_mb']:.0f} MB | {c['peak_growth_mb']:.0f} MB | "
                     f"{u['seconds_per_step_per_sample']:.2f} | {c['seconds_per_step_per_sample']:.2f} |")
    blocks["latent"] = "\n".join(lines)
    return blocks


def pareto_blocks() -> dict[str, str]:
    path = ROOT / "docs" / "multi_objective" / "pareto.json"
    data = json.loads(path.read_text())
    command = next(iter(data["commands"].values()))
    commit = last_commit(path)
    return {"stamp": stamp(command="python benchmarks/pareto.py --domain molecule --rewards qed sa --num_samples 64 "
                                   f"(one decode per decoder, e.g. {command})",
                           date=commit.split("(")[-1].rstrip(")") + " (commit date)", commit=commit,
                           machine="this project's 2-core CPU (not recorded in the file)",
                           source="`docs/multi_objective/pareto.json` ([multi-objective report]"
                                  "(../multi_objective/pareto.md))")}


def ehrlich_blocks() -> dict[str, str]:
    """The Ehrlich comparison (benchmarks/ehrlich.py): per preset, each method at each budget it ran, the mean over
    seeds [95% t-interval] of the best and median reward, the solved and feasible fractions; the GA at the first
    generation past 10^2, 10^3, 10^4 and 10^5 reward calls."""
    path = ROOT / "docs" / "ehrlich" / "ehrlich.json"
    data = json.loads(path.read_text())
    blocks = {"stamp": stamp(command=data["command"], date=data["date"], commit=f"{data['commit']} (run); "
                             f"{last_commit(path)} (file)", machine=data["machine"],
                             source="`docs/ehrlich/ehrlich.json` ([Ehrlich report](../ehrlich/ehrlich.md))")}
    for preset in dict.fromkeys(p["preset"] for p in data["points"]):
        lines = ["| method | budget | reward + value calls | wall s | best | median | solved fraction | "
                 "feasible fraction |", "|---|---|---|---|---|---|---|---|"]
        mine = [p for p in data["points"] if p["preset"] == preset]
        for method in dict.fromkeys(p["method"] for p in mine):
            series = sorted((p for p in mine if p["method"] == method), key=lambda p: p["calls"])
            if method.startswith("ga"):
                series = [next(p for p in series if p["calls"] >= 10 ** k) for k in (2, 3, 4, 5)
                          if any(p["calls"] >= 10 ** k for p in series)]
            for p in series:
                lines.append(f"| {method} | {p['budget']} | {p['calls']:.0f} | {p['wall_seconds']:.1f} | "
                             f"{interval(p['best'], p['best_ci'])} | {interval(p['median'], p['median_ci'])} | "
                             f"{interval(p['solved_fraction'], p['solved_fraction_ci'])} | "
                             f"{interval(p['feasible_fraction'], p['feasible_fraction_ci'])} |")
        blocks[f"table_{preset}"] = "\n".join(lines)
    return blocks


def distill_blocks() -> dict[str, str]:
    """The distillation comparison (benchmarks/distill.py): per task its table, rounds and break-even, as the
    script renders them from docs/distill/<domain>/distill.json."""
    blocks = {}
    for path in sorted((ROOT / "docs" / "distill").glob("*/distill.json")):
        data = json.loads(path.read_text())
        # the table benchmarks/distill.py rendered beside its json (scripts do not import each other)
        body = (path.parent / "distill.md").read_text().split("\n", 2)[2].rstrip("\n")  # without its title
        domain = path.parent.name
        blocks[f"stamp_{domain}"] = stamp(command=data["command"], date=data["date"], commit=last_commit(path),
                                          machine=data["machine"], source=f"`docs/distill/{domain}/distill.json`")
        blocks[f"table_{domain}"] = body
    return blocks


def readme_stamp(command: str, date: str, machine: str) -> dict[str, str]:
    return {"stamp": stamp(command=command, date=date, commit=f"{README_COMMIT} (text moved from README.md)",
                           machine=machine, source="no machine-readable result file: the text and provenance "
                                                   "as the README stated them")}


PAGES = {
    "benchmark.md": benchmark_blocks,
    "ehrlich.md": ehrlich_blocks,
    "distill.md": distill_blocks,
    "flow.md": flow_blocks,
    "speed.md": speed_blocks,
    "multi-objective.md": pareto_blocks,
    "soft-value.md": lambda: readme_stamp("train.py stage=value value_training.target=soft|mean, then "
                                          "decode.py decoder=svdd_mc value.checkpoint=PATH num_samples=64 seed=0",
                                          "not recorded (the RNA MFE rows: 2026-11-22)", "this project's 2-core CPU"),
    "shipped.md": lambda: readme_stamp("python decode.py domain=D reward=R decoder=X num_samples=64 seed=0 "
                                       "decoder.num_candidates=10 logger=none", "not recorded (rna svdd_mc row: "
                                       "2026-11-22)", "this project's 2-core CPU machine, single-threaded runs"),
    "antibody.md": lambda: readme_stamp("python decode.py domain=antibody reward=hydrophobicity|instability "
                                        "decoder=pretrained|best_of_n|svdd_pm num_samples=32",
                                        "not recorded", "this project's 2-core CPU, one thread per run"),
    "inpainting.md": lambda: readme_stamp("python decode.py domain=dna init.fasta=outputs/heldout_dna.fasta "
                                          "init.mask=76-125 decoder=svdd_pm num_samples=64",
                                          "not recorded", "this project's 2-core CPU, one thread per run"),
}


def render(text: str, blocks: dict[str, str]) -> str:
    for name, body in blocks.items():
        pattern = re.compile(rf"<!-- generated:{name} -->.*?<!-- /generated:{name} -->", re.S)
        replacement = f"<!-- generated:{name} -->\n{body}\n<!-- /generated:{name} -->"
        if pattern.search(text):
            text = pattern.sub(lambda _: replacement, text)
        elif name == "stamp":  # first run: the stamp goes under the title
            title, rest = text.split("\n", 1)
            text = f"{title}\n\n{replacement}\n{rest}"
        else:
            raise SystemExit(f"no <!-- generated:{name} --> block to fill")
    return text


def pages() -> dict[Path, str]:
    return {RESULTS / name: render((RESULTS / name).read_text(), make()) for name, make in PAGES.items()}


if __name__ == "__main__":
    stale = []
    for path, text in pages().items():
        if path.read_text() != text:
            stale.append(path)
            if "--check" not in sys.argv:
                path.write_text(text)
    if "--check" in sys.argv and stale:
        print("stale (run python scripts/results_pages.py):", *stale, sep="\n  ")
        sys.exit(1)
