"""The benchmark's plan, which benchmark.py and its companions (benchmarks/pareto.py, benchmarks/timing.py) share:
the methods, the tasks, their colours, the modes (sizes of the table and the scaling comparison), the options
that spend a budget, how one cell's decode config is composed, and what one run cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from svdd_lightning.paths import CONFIG_DIR

# The library's methods, in the table's order; a decoder added to the decoder config group (a file on
# --search_path) runs when named in --decoders and gets a column after these.
DECODERS = ["pretrained", "best_of_n", "dps", "smc", "svdd_mc", "svdd_pm", "svdd_r", "beam", "svdd_smc", "tree",
            "tree_search"]
DEFAULT_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("image", "compressibility")]
ALL_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("molecule", "sa"),
             ("image", "compressibility"), ("image", "digit"), ("image_flow", "compressibility")]
COLOURS = {"pretrained": "black", "best_of_n": "tab:gray", "dps": "tab:purple", "smc": "tab:green",
           "svdd_mc": "tab:blue", "svdd_pm": "tab:red", "svdd_r": "tab:orange",
           "beam": "tab:cyan", "svdd_smc": "tab:olive", "tree": "gold",
           "tree_search": "darkgoldenrod"}


def methods(rows: Iterable[dict]) -> list[str]:
    """The report's columns: the library's methods in their order, then any other decoder of ``rows`` in the order
    they ran."""
    extra = [d for d in dict.fromkeys(r["decoder"] for r in rows) if d not in DECODERS]
    return DECODERS + extra


def known_decoders(search_path: Sequence[str | Path] = ()) -> list[str]:
    """Every decoder of the config group: the library's, then those of the search path's ``decoder/`` folders."""
    from svdd_lightning.decoders.registry import decoder_files

    return DECODERS + [name for name in decoder_files(search_path) if name not in DECODERS]


def single_point(decoder: str, search_path: Sequence[str | Path] = ()) -> bool:
    """Whether a method draws one candidate per step (its config has no decoder.num_candidates: pretrained, DPS):
    one point, budget 1, in the scaling comparison."""
    from omegaconf import OmegaConf

    from svdd_lightning.decoders.registry import decoder_files

    path = decoder_files(search_path).get(decoder)
    return path is None or "num_candidates" not in (OmegaConf.load(path).get("decoder") or {})


def search_path_override(search_path: Sequence[str | Path]) -> list[str]:
    """``hydra.searchpath=[file://DIR,...]`` for compose, as on decode.py's command line; none for an empty path."""
    if not search_path:
        return []
    dirs = ",".join(f"file://{Path(str(d).removeprefix('file://')).resolve()}" for d in search_path)
    return [f"hydra.searchpath=[{dirs}]"]


def compose_decode(overrides: list[str]):
    """decode.py's config as Hydra composes it. The configs read only config values (the method's name, the
    chosen rewards), never Hydra's runtime choices, so nothing of Hydra's own state needs setting."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="benchmark"):
        return compose(config_name="decode", overrides=overrides)


def per_sample_costs(summary: dict) -> dict:
    """calls_per_sample (asked) and made_calls_per_sample {denoiser, value, reward, total}, and wall seconds per
    sample of one run, from its summary.json's calls record (svdd_lightning/calls.py)."""
    per_sample = summary["calls"]["per_sample"]
    # The calls the algorithm asked for (its budget, the same with or without deduplication: what methods are
    # matched and plotted by) and the calls made (deduplication sends each distinct candidate once).
    asked, made = ({k: float(v) for k, v in per_sample[kind].items()} for kind in ("asked", "made"))
    return {"calls_per_sample": asked, "made_calls_per_sample": made,
            "wall_seconds_per_sample": float(summary["wall_seconds_per_sample"])}


@dataclass(frozen=True)
class Mode:
    name: str
    tasks: tuple[tuple[str, str], ...]
    num_samples: int  # per table cell
    batch_size: int  # the population of SMC / SVDD-R
    num_candidates: int  # M of the table
    scaling_budgets: tuple[int, ...]  # decoder.num_candidates of the scaling comparison
    scaling_samples: int  # per scaling point
    scaling_batch_size: int
    ablation_task: tuple[str, str]  # ablation_m.png: SVDD-PM against Best-of-N over M, from its scaling rows
    # The tasks of the scaling comparison (the four default ones: the others double its time).
    scaling_tasks: tuple[tuple[str, str], ...] = tuple(DEFAULT_TASKS)


# Quick mode's scaling stops at budget 4: budgets 8 and 16 took 6 of its 12 minutes (18 in all) on 2 CPU cores.
QUICK = Mode(name="quick", tasks=tuple(DEFAULT_TASKS), num_samples=24, batch_size=24, num_candidates=5,
             scaling_budgets=(1, 2, 4), scaling_samples=8, scaling_batch_size=8,
             ablation_task=("dna", "hepg2_motif"))

FULL = Mode(name="full", tasks=tuple(ALL_TASKS), num_samples=256, batch_size=64, num_candidates=10,
            scaling_budgets=(1, 2, 4, 8, 16), scaling_samples=64, scaling_batch_size=64,
            ablation_task=("dna", "hepg2_motif"))


def mode_from(data: dict) -> Mode:
    """The Mode recorded in a benchmark.json (older files lack the scaling fields: the named mode's)."""
    base = QUICK if data.get("name") == "quick" else FULL
    known = {f.name for f in fields(Mode)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("tasks", "scaling_tasks"):
        if key in values:
            values[key] = tuple(tuple(t) for t in values[key])
    for key in ("ablation_task", "scaling_budgets"):
        if key in values:
            values[key] = tuple(values[key])
    return replace(base, **values)


def beam_shape(budget: int) -> tuple[int, int]:
    """(A paths, K children) of beam search at budget M with A x K = M (SVDD-PM's candidates per step): A = 4 where
    4 divides M and leaves K >= 2, else the divisor nearest 4 that does (M = 10: 5 x 2; M = 4: 2 x 2; M = 2: 1 x 2,
    which is SVDD). K = 1 would keep every child: Best-of-A, no search."""
    divisors = [a for a in range(1, budget + 1) if budget % a == 0 and (budget // a >= 2 or budget == 1)]
    paths = min(divisors, key=lambda a: (abs(a - 4), -a))
    return paths, budget // paths


def budget_options(decoder: str, budget: int) -> list[str]:
    """decode.py options that spend ``budget`` candidates per step and sample."""
    if decoder == "beam":
        paths, children = beam_shape(budget)
        return [f"decoder.beams={paths}", f"decoder.num_candidates={children}"]
    return [f"decoder.num_candidates={budget}"]


def scaling_plan(mode: Mode, decoders: list[str], search_path: Sequence[str] = ()) -> list[tuple[str, str, str, int]]:
    plan = []
    for domain, reward in (t for t in mode.tasks if t in mode.scaling_tasks):
        for dec in decoders:
            for budget in ((1,) if single_point(dec, search_path) else sorted(mode.scaling_budgets)):
                plan.append((domain, reward, dec, budget))
    return plan
