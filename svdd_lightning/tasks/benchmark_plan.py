"""The benchmark's plan that benchmark.py and its companions (benchmarks/pareto.py, benchmarks/timing.py) share:
the methods, the tasks, their colours, how one cell's decode config is composed, and what one run cost."""

from __future__ import annotations

from svdd_lightning.paths import REPO_ROOT

DECODERS = ["pretrained", "best_of_n", "dps", "smc", "svdd_mc", "svdd_pm", "svdd_r", "beam"]
# One draw per step (they take no decoder.num_candidates): one point (budget 1) in the scaling comparison.
SINGLE_POINT = ("pretrained", "dps")
DEFAULT_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("image", "compressibility")]
ALL_TASKS = [("dna", "hepg2_motif"), ("rna", "mfe"), ("molecule", "qed"), ("molecule", "sa"),
             ("image", "compressibility"), ("image", "digit")]
COLOURS = {"pretrained": "black", "best_of_n": "tab:gray", "dps": "tab:purple", "smc": "tab:green",
           "svdd_mc": "tab:blue", "svdd_pm": "tab:red", "svdd_r": "tab:orange",
           "beam": "tab:cyan"}


def compose_decode(overrides: list[str]):
    """decode.py's config as Hydra would compose it, with its runtime choices set."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "configs"), version_base="1.3", job_name="benchmark"):
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
