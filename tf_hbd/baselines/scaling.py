"""Compute-scaling curves of the baselines: what longer training buys.

Every campaign model keeps a learning curve, ``curve.jsonl``
(`tf_hbd.baselines.training.train_loop`): every few thousand steps the model
is range coded for real on the first validation images (BSD68) and scored
against JPEG at the same rate (`training.score_at_rate`). This module lays
those curves out for BUILD.md: a markdown table per model and figures of the
gain over JPEG at equal rate against training hours and steps
(``scripts/plot_curves.py --baselines``).
"""

import os
from typing import Dict, Sequence

from tf_hbd.baselines import training

__all__ = ["load_curves", "scaling_markdown", "write_scaling"]


def load_curves(models: Sequence) -> Dict[str, list]:
  """{name: curve records sorted by step} of `tf_hbd.baselines.folders`
  models that have a curve (the last record of a step wins)."""
  out = {}
  for model in models:
    if model.curve:
      records = {r["step"]: r for r in training.read_jsonl(model.curve)}
      out[model.name] = [records[s] for s in sorted(records)]
  return out


def scaling_markdown(curves: Dict[str, list]) -> str:
  """One table per model: step, hours, validation bpp / PSNR / MS-SSIM,
  JPEG's PSNR at that rate and the gain over it, and a closing line with the
  best gain and when it was reached."""
  lines = []
  for name, records in curves.items():
    lines += [f"**{name}** (validation: bpp from the real files, JPEG at "
              "each image's rate):", "",
              "| step | hours | bpp | PSNR (dB) | MS-SSIM | JPEG PSNR at "
              "that bpp | vs JPEG (dB) |", "|---|---|---|---|---|---|---|"]
    for r in records:
      lines.append(f"| {r['step']:,} | {r['hours']:.2f} | {r['bpp']:.4f} | "
                   f"{r['psnr']:.2f} | {r['ms_ssim']:.4f} | "
                   f"{r['jpeg_psnr']:.2f} | {r['vs_jpeg_db']:+.2f} |")
    if records:
      best = max(records, key=lambda r: r["vs_jpeg_db"])
      last = records[-1]
      lines += ["", f"Best {best['vs_jpeg_db']:+.2f} dB at step "
                f"{best['step']:,} ({best['hours']:.2f} h); last "
                f"{last['vs_jpeg_db']:+.2f} dB at step {last['step']:,} "
                f"({last['hours']:.2f} h)."]
    lines.append("")
  return "\n".join(lines)


def write_scaling(curves: Dict[str, list], out_dir: str,
                  stem: str = "baseline_scaling") -> Dict[str, str]:
  """Writes ``<stem>.md`` (`scaling_markdown`) and ``<stem>_hours.png`` /
  ``<stem>_steps.png`` (gain over JPEG at equal rate, one line per model,
  JPEG as the zero line) into `out_dir`; returns {kind: path}."""
  from tf_hbd.evaluation import plots  # pylint: disable=g-import-not-at-top
  os.makedirs(out_dir, exist_ok=True)
  paths = {"markdown": os.path.join(out_dir, f"{stem}.md")}
  with open(paths["markdown"], "w", encoding="utf-8") as f:
    f.write(scaling_markdown(curves))
  for key, label in (("hours", "training hours (step time)"),
                     ("step", "training steps")):
    paths[key] = plots.plot_curves(
        {name: [(r[key], r["vs_jpeg_db"]) for r in records]
         for name, records in curves.items()},
        os.path.join(out_dir, f"{stem}_{'steps' if key == 'step' else key}"
                     ".png"),
        xlabel=label, ylabel="gain over JPEG at equal rate (dB)",
        title="Baselines: validation gain over JPEG vs training",
        baseline={"JPEG": 0.0})
  return paths
