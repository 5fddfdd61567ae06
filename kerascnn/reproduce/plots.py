"""Figures in the paper's style, written atomically (temporary file, then rename).

- :func:`training_curves` — Figure 6: error (%) over iterations, one panel per group
  of networks, thin lines the training error, bold lines the test error, one colour
  per network (one line per seed).
- :func:`response_stds` — Figure 7: the std of each 3×3 layer's response, by layer
  index (top) and sorted by magnitude (bottom).
"""

from __future__ import annotations

import re

import numpy as np

from kerascnn._io import atomic_path

__all__ = ["training_curves", "response_stds"]

_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    plt = _pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path


def training_curves(panels, path, title=None):
    """Figure 6.

    Args:
      panels: ``[(panel title, [series, ...]), ...]``; a series is a dict with
        ``label``, ``iterations``, ``train_error``, ``test_error`` (lists, %) and
        optionally ``colour`` (an index shared by the seeds of one network).
      path: the PNG to write.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2),
                             squeeze=False)
    for ax, (name, series) in zip(axes[0], panels):
        seen = set()
        for i, s in enumerate(series):
            colour = _COLOURS[s.get("colour", i) % len(_COLOURS)]
            it = np.asarray(s["iterations"], np.float64)
            label = s["label"]
            ax.plot(it, s["train_error"], color=colour, linewidth=0.8, alpha=0.8)
            ax.plot(it, s["test_error"], color=colour, linewidth=2.4,
                    label=None if label in seen else label)
            seen.add(label)
        ax.set_title(name)
        ax.set_xlabel("iterations")
        ax.set_ylabel("error (%)")
        ax.grid(alpha=0.3)
        ax.legend(title="thin: train, bold: test", fontsize=8, title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def response_stds(stds, path, title=None):
    """Figure 7.

    Args:
      stds: ``{label: per-layer std in layer order}`` (plain and residual nets); the
        nets of one depth (the first number in the label) share a colour, plain
        nets dashed.
      path: the PNG to write.
    """
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5))
    depths = []  # one colour per depth: plain-N dashed, ResNet-N solid
    for label in stds:
        depth = re.findall(r"\d+", label)[:1]
        if depth not in depths:
            depths.append(depth)
    for label, values in stds.items():
        values = np.asarray(values, np.float64)
        colour = _COLOURS[depths.index(re.findall(r"\d+", label)[:1]) % len(_COLOURS)]
        dashed = "--" if label.lower().startswith("plain") else "-"
        x = np.arange(1, values.size + 1)
        top.plot(x, values, dashed, color=colour, label=label, linewidth=1.4)
        bottom.plot(x, np.sort(values)[::-1], dashed, color=colour, label=label,
                    linewidth=1.4)
    top.set_xlabel("layer index (original)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
