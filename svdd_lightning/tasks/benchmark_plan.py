"""The benchmark's plan that benchmark.py and its companions (benchmarks/pareto.py, benchmarks/timing.py) share:
the methods, the tasks, their colours, how one cell's decode config is composed, and what one run cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from svdd_lightning.paths import CONFIG_DIR

# The library's methods, in the table's order; a decoder added to the decoder config group (a file on
# --search_path) runs when named in --decoders and gets a column after these.
DECODERS = ["pretrained", "best_of_n", "dps", "smc", "svdd_mc", "svdd_pm", "svdd_r", "beam"]
DEFAULT_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("image", "compressibility")]
ALL_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("molecule", "sa"),
             ("image", "compressibility"), ("image", "digit")]
COLOURS = {"pretrained": "black", "best_of_n": "tab:gray", "dps": "tab:purple", "smc": "tab:green",
           "svdd_mc": "tab:blue", "svdd_pm": "tab:red", "svdd_r": "tab:orange",
           "beam": "tab:cyan"}


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
    """decode.py's config as Hydra would compose it, with its runtime choices set."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name="benchmark"):
        cfg = compose(config_name="decode", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def per_sample_costs(summary: dict) -> dict:
    """calls_per_sample {denoiser, value, reward, total} and wall seconds per sample of one run:
    decode.py's own fields when it writes them, else from nfe_per_sample and wall_seconds."""
    calls = {k: float(v) for k, v in (summary.get("calls_per_sample") or summary["nfe_per_sample"]).items()}
    if "total" not in calls:
        calls["total"] = sum(calls.get(k, 0.0) for k in ("denoiser", "value", "reward"))
    n = summary["num_samples"]
    per_sample = summary.get("wall_seconds_per_sample")
    # The calls the algorithm asked for (its budget, the same with or without deduplication: what methods are
    # matched and plotted by) and the calls made (deduplication sends each distinct candidate once).
    asked = {k: float(v) for k, v in (summary.get("nfe_requested_per_sample") or calls).items() if k != "total"}
    return {"calls_per_sample": {**asked, "total": sum(asked.values())}, "made_calls_per_sample": calls,
            "wall_seconds_per_sample": float(per_sample) if per_sample is not None else summary["wall_seconds"] / n}
