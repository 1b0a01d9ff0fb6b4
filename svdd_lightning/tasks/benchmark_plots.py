"""The benchmark's pictures: rewards per method (boxplots.png), median reward against wall time and calls per
sample (scaling_<domain>_<reward>.png), and SVDD-PM against Best-of-N over M (ablation_m.png). matplotlib is
imported inside each function, with the Agg backend, so reading a report never needs a display."""

from __future__ import annotations

from pathlib import Path

from svdd_lightning.atomic import atomic_path
from svdd_lightning.tasks.benchmark_plan import COLOURS, methods
from svdd_lightning.tasks.benchmark_rows import is_ok


def savefig(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def plot_boxes(path: Path, rows: list[dict], tasks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(tasks))
    rows_n = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols, 4.2 * rows_n), dpi=110, squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.set_visible(False)
    for ax, (domain, reward) in zip(axes.flat, tasks):
        done = [r for dec in methods(rows) for r in rows
                if (r["domain"], r["reward"], r["decoder"]) == (domain, reward, dec) and is_ok(r)]
        ax.boxplot([r["rewards"] for r in done], tick_labels=[r["decoder"] for r in done], showfliers=True)
        ax.set_title(f"{domain} / {reward}")
        ax.set_ylabel(f"{reward} reward (higher is better)")
        ax.tick_params(axis="x", rotation=45)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)


def scaling_series(scaling: list[dict], domain: str, reward: str, decoder: str) -> list[dict]:
    return sorted((r for r in scaling if (r["domain"], r["reward"], r["decoder"]) == (domain, reward, decoder)
                   and is_ok(r)), key=lambda r: r["budget"])


def error_bars(points: list[dict]):
    """matplotlib yerr from median_ci (clipped at 0: a percentile interval may sit beside its estimate)."""
    return [[max(0.0, p["median"] - p["median_ci"][0]) for p in points],
            [max(0.0, p["median_ci"][1] - p["median"]) for p in points]]


def log_ticks(ax) -> None:
    """Plain-number ticks at 1, 2, 5 x 10^k on a log x-axis (matplotlib's would read 2 x 10^-1)."""
    import math

    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = ax.get_xlim()
    decades = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)

    def at(mantissas):
        return [m * 10.0 ** k for k in decades for m in mantissas if lo * (1 - 1e-9) <= m * 10.0 ** k <= hi * (1 + 1e-9)]

    # The coarsest set with 3 to 8 ticks: powers of ten over many decades, finer steps over less than one.
    options = [at(m) for m in ((1,), (1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 5, 7),
                               (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8), [1 + i / 10 for i in range(90)])]
    ticks = next((t for t in options if 3 <= len(t) <= 8), None) or \
        max((t for t in options if len(t) <= 8), key=len) or [lo, hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}" if v >= 1000 else f"{v:.3g}"))
    ax.xaxis.set_minor_locator(NullLocator())


def plot_scaling(path: Path, scaling: list[dict], domain: str, reward: str) -> None:
    """Median reward (95% interval as error bars) against wall seconds and against total calls per
    sample, log-x, one line per method, each point labelled with its budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12.0, 5.2), dpi=110, sharey=True)
    axes_x = (("wall_seconds_per_sample", "wall-clock seconds per sample (this machine)"),
              ("calls_total", "calls per sample (denoiser + value + reward; methods dodged 2% apart)"))
    samples = sorted({r["num_samples"] for r in scaling
                      if (r["domain"], r["reward"]) == (domain, reward) and is_ok(r)})
    for ax, (key, label) in zip(axes, axes_x):
        order = methods(scaling)
        for dec in order:
            pts = scaling_series(scaling, domain, reward, dec)
            if not pts:
                continue
            xs = [p["calls_per_sample"]["total"] if key == "calls_total" else p[key] for p in pts]
            if key == "calls_total":  # methods often share a call count: dodge them apart a little
                xs = [x * (1 + 0.02 * (order.index(dec) - 3)) for x in xs]
            ys = [p["median"] for p in pts]
            colour = COLOURS.get(dec)
            single = len(pts) == 1
            ax.errorbar(xs, ys, yerr=error_bars(pts), color=colour, marker="s" if single else "o",
                        markersize=6 if single else 4, linestyle="none" if single else "-", capsize=3,
                        linewidth=1.4, label=dec)
            for x, y, p in zip(xs, ys, pts):
                ax.annotate(str(p["budget"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                            color=colour)
        ax.set_xscale("log")
        log_ticks(ax)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"median {reward} reward, 95% interval")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=max(1, len(labels)), fontsize=8, frameon=False,
               title="method (numbers beside points: budget)", title_fontsize=8)
    shown = "/".join(str(n) for n in samples)
    fig.suptitle(f"Inference-time scaling, {domain} / {reward}: budget = decoder.num_candidates "
                 f"({shown} samples per point; higher and further left is better)", fontsize=10)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    savefig(fig, path)
    plt.close(fig)


def plot_ablation(path: Path, scaling: list[dict], task: tuple[str, str]) -> bool:
    """SVDD-PM against Best-of-N over M (equal denoiser calls), from the scaling rows of ``task``."""
    series = {dec: scaling_series(scaling, *task, dec) for dec in ("svdd_pm", "best_of_n")}
    if not all(series.values()):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=110)
    for dec, label, colour in (("svdd_pm", "SVDD-PM (M candidates)", "tab:red"),
                               ("best_of_n", "Best-of-N (N = M chains)", "tab:gray")):
        pts = series[dec]
        m = [p["budget"] for p in pts]
        ax.errorbar(m, [p["median"] for p in pts], yerr=error_bars(pts), marker="o", color=colour, capsize=3,
                    label=f"{label}: median, 95% interval")
        ax.plot(m, [p["q90"] for p in pts], marker=".", linestyle=":", color=colour, label=f"{label}: q90")
    ax.set_xscale("log", base=2)
    ms = sorted({p["budget"] for pts in series.values() for p in pts})
    ax.set_xticks(ms, [str(m) for m in ms])
    ax.minorticks_off()
    ax.set_xlabel("M (denoiser calls per sample per step; equal for both methods)")
    ax.set_ylabel(f"{task[1]} reward")
    n = series["svdd_pm"][0]["num_samples"]
    ax.set_title(f"Ablation over M: {task[0]} / {task[1]} ({n} samples per point)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    savefig(fig, path)
    plt.close(fig)
    return True
