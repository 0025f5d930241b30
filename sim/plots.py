"""Figures people look at: spike rasters of a chip run and training curves (PNG via matplotlib Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.model import ChipResult

#: the figure formats :func:`raster` writes (matplotlib's Agg backend; the suffix picks the format)
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def raster(result: ChipResult, path: str | Path, sample: int = 0, title: str = "") -> Path:
    """One panel per layer the backend reports (hidden layers: fast model only), neuron vs time step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = [(l, s) for l, s in enumerate(result.spikes) if s is not None]
    fig, axes = plt.subplots(len(layers), 1, figsize=(7, 1.8 + 1.6 * len(layers)), squeeze=False, sharex=True)
    for ax, (l, s) in zip(axes[:, 0], layers):
        t, n = np.nonzero(s[sample])
        ax.scatter(t, n, marker="|", s=30, color="black")
        ax.set_ylabel(f"layer {l}\nneuron")
        ax.set_ylim(-0.5, s.shape[2] - 0.5)
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(title or f"spikes of sample {sample}, {int(result.cycles[sample])} cycles")
    fig.tight_layout()
    from hw.files import write_atomic
    write_atomic(path, lambda p: fig.savefig(p, dpi=120))
    plt.close(fig)
    return Path(path)


def training_curves(history: list[dict], path: str | Path, title: str = "") -> Path:
    """Every numeric series in a TrainResult history against its epoch / iteration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xkey = "iter" if history and "iter" in history[0] else "epoch"
    keys = [k for k in history[0] if k != xkey and isinstance(history[0][k], (int, float))] if history else []
    fig, axes = plt.subplots(len(keys), 1, figsize=(6.5, 1.8 + 1.6 * len(keys)), squeeze=False, sharex=True)
    x = [h[xkey] for h in history]
    for ax, k in zip(axes[:, 0], keys):
        ax.plot(x, [h[k] for h in history])
        ax.set_ylabel(k.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel(xkey)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    from hw.files import write_atomic
    write_atomic(path, lambda p: fig.savefig(p, dpi=120))
    plt.close(fig)
    return Path(path)
