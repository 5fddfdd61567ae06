"""``curves.png``: the training curves of a run, drawn from its ``history.csv``.

Loss and top-1 error per epoch (training solid, validation dashed), with a dotted
line where the learning rate dropped. Written elsewhere, then renamed
(:func:`kerascnn._io.atomic_path`), so a viewer never sees half an image.
"""

from __future__ import annotations

import csv

import numpy as np

from kerascnn._io import atomic_path

__all__ = ["plot_history"]


def plot_history(csv_path, png_path, title=None):
    """Draws loss and top-1 error (train and validation) per epoch from a history
    CSV, with a dashed line where the learning rate dropped; written atomically."""
    from matplotlib.figure import Figure

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None

    def col(name):
        return np.array([float(r[name]) if r.get(name) not in (None, "") else np.nan
                         for r in rows])

    epochs = col("epoch") + 1
    # a Figure of its own (no pyplot: no global figure list, no backend switch) with
    # fixed margins (tight_layout draws the whole figure once more to measure it)
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.88 if title else 0.95,
                        wspace=0.25)
    for ax, key, label in ((axes[0], "loss", "loss"),
                           (axes[1], "top1_error", "top-1 error (%)")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in rows[0]:
                ax.plot(epochs, col(prefix + key), style, marker="o", markersize=3,
                        label=("train" if not prefix else "validation"))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if "learning_rate" in rows[0]:
        lr = col("learning_rate")
        for i in range(1, len(lr)):
            if lr[i] < lr[i - 1]:
                for ax in axes:
                    ax.axvline(epochs[i] - 0.5, color="gray", linestyle=":")
                axes[1].annotate(f"lr {lr[i]:.3g}", (epochs[i] - 0.5, 0.95),
                                 xycoords=("data", "axes fraction"), fontsize=8,
                                 rotation=90, va="top", ha="right", color="gray")
    axes[0].legend()
    if title:
        fig.suptitle(title)
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    return png_path
