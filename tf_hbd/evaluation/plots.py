"""Figures: rate-distortion curves and validation-PSNR-per-epoch (Figure 1).

Both read the JSON files the package writes (`tf_hbd.evaluation.systems` results and
training logs), so a figure can be redrawn without rerunning anything.
"""

import json
import os
from typing import Dict, Sequence

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

__all__ = ["plot_rd", "plot_curves", "plot_bands"]


def plot_rd(result_files: Sequence[str], out_png: str,
            metrics: Sequence[str] = ("psnr", "ms-ssim"), title: str = ""):
  """PSNR / MS-SSIM against bpp, one line per result JSON file."""
  fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.5))
  axes = [axes] if len(metrics) == 1 else axes
  colours = plt.get_cmap("tab20").colors
  for n, path in enumerate(result_files):
    with open(path) as f:
      doc = json.load(f)
    res = doc["results"]
    order = sorted(range(len(res["bpp"])), key=lambda i: res["bpp"][i])
    for ax, m in zip(axes, metrics):
      ax.plot([res["bpp"][i] for i in order], [res[m][i] for i in order],
              marker="osd^v<>"[n % 7], color=colours[n % len(colours)],
              linestyle="-" if n < len(colours) else "--", label=doc["name"])
  for ax, m in zip(axes, metrics):
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel({"psnr": "PSNR (dB)", "ms-ssim": "MS-SSIM",
                   "ssim": "SSIM"}[m])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
  if title:
    fig.suptitle(title)
  _save(fig, out_png)
  return out_png


def plot_curves(curves: Dict[str, Sequence], out_png: str,
                xlabel: str = "epoch", ylabel: str = "validation PSNR (dB)",
                title: str = "", baseline: Dict[str, float] = None):
  """Line plot of {label: [(x, y), ...]} with optional horizontal baselines."""
  fig, ax = plt.subplots(figsize=(6.5, 4.5))
  colours = plt.get_cmap("tab20").colors
  for n, (label, pts) in enumerate(curves.items()):
    xs, ys = zip(*pts) if pts else ((), ())
    ax.plot(xs, ys, marker=".", color=colours[n % len(colours)], label=label)
  for label, y in (baseline or {}).items():
    ax.axhline(y, linestyle="--", color="gray", linewidth=1)
    ax.text(ax.get_xlim()[0], y, " " + label, va="bottom", fontsize=8,
            color="gray")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  if title:
    ax.set_title(title)
  _save(fig, out_png)
  return out_png


def plot_bands(panels: Dict[str, Dict[str, Sequence]], out_png: str,
               xlabel: str = "epoch",
               ylabel: str = "validation gain over the codec (dB)",
               title: str = "", zero_line: bool = True):
  """Mean curves with interval bands, one subplot per panel.

  Args:
    panels: {panel title: {label: [(x, mean, lo, hi), ...]}}.
    out_png: where to save.
    xlabel, ylabel, title: axis labels and the figure title.
    zero_line: draw y = 0 (the codec).
  """
  n = max(1, len(panels))
  fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.5), squeeze=False)
  colours = plt.get_cmap("tab10").colors
  for ax, (name, curves) in zip(axes[0], panels.items()):
    for k, (label, pts) in enumerate(curves.items()):
      if not pts:
        continue
      xs, mean, lo, hi = zip(*pts)
      colour = colours[k % len(colours)]
      ax.plot(xs, mean, marker=".", color=colour, label=label,
              linestyle="-" if k < len(colours) else "--")
      ax.fill_between(xs, lo, hi, color=colour, alpha=0.2, linewidth=0)
    if zero_line:
      ax.axhline(0.0, linestyle="--", color="gray", linewidth=1)
    ax.set_title(name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
  if title:
    fig.suptitle(title)
  _save(fig, out_png)
  return out_png


def _save(fig, out_png):
  """Lays out, writes (creating the folder) and closes a figure."""
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
  fig.savefig(out_png, dpi=120)
  plt.close(fig)
