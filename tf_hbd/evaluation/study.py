"""The study's outputs in one call: Table 3, Table 1, Figure 1, RD curves.

`run(...)` is what `tf_hbd.evaluation.main` (``hbd-evaluate``) and
`tf_hbd.workflows.reproduce` call.
For each dataset (a folder of images, preprocessed as the paper does for the
named benchmarks in `tf_hbd.evaluation.systems.BENCHMARKS`) it writes into `out_dir`:

* ``<dataset>/<system>.json``: every system at the Table 3 rate
  (CompressAI-like schema, per-image values included);
* ``table3.md``: datasets x systems x (bpp, PSNR, SSIM, MS-SSIM);
* ``table1_<dataset>.md`` / ``.json``: PSNR against K for every decoder (K
  at inference differs from training simply by running the recurrence for
  more or fewer steps; the state and weights are unchanged);
* ``rd/<dataset>/<system>.json`` and ``rd_<dataset>.png``: PSNR and MS-SSIM
  against bpp over the requested rates;
* ``figure1.png`` and ``convergence.md``: validation PSNR per epoch from the
  decoders' training logs, and their convergence epochs.
"""

import json
import os
import time
from typing import Dict, List, Optional, Sequence

from tf_hbd.data import roots
from tf_hbd.evaluation import systems as evaluation
from tf_hbd.evaluation import plots

__all__ = ["DatasetSpec", "parse_dataset", "run", "write_figure1",
           "load_logs"]


class DatasetSpec:
  """A dataset to evaluate: name, folder, Table 3 rate and preprocessing."""

  def __init__(self, name, path, bpp, max_side, title):
    self.name, self.path, self.bpp = name, path, bpp
    self.max_side, self.title = max_side, title


def parse_dataset(spec: str, bpp: Optional[float] = None,
                  max_side: Optional[int] = None) -> DatasetSpec:
  """``NAME=PATH`` or ``PATH``; a known NAME brings the paper's settings."""
  name, path = roots.split_label(spec)
  name = name or os.path.basename(os.path.normpath(path)).lower().replace(
      "sample:", "sample_")
  bench = evaluation.BENCHMARKS.get(name)
  return DatasetSpec(
      name, path,
      bpp if bpp else (bench.bpp if bench else 0.37),
      max_side if max_side else (bench.max_side if bench else None),
      bench.title if bench else name)


def _log(msg):
  print(msg, flush=True)


def run(datasets: Sequence[DatasetSpec], out_dir: str,
        systems: Sequence[str] = ("jpeg", "jp2", "goog", "e2e"),
        decoders: Sequence[str] = (), k_sweep: Sequence[int] = (),
        rd_bpps: Sequence[float] = (), max_images: Optional[int] = None,
        verbose: bool = True) -> Dict[str, str]:
  """Evaluates everything and writes the tables and figures.

  Args:
    datasets: what to evaluate on.
    out_dir: results folder.
    systems: codec / neural-baseline rows, names in
      `tf_hbd.evaluation.systems.SYSTEMS`: "jpeg", "jp2", "goog", "e2e".
    decoders: ``[LABEL=]PATH`` of trained decoders (model dirs or exports).
    k_sweep: K values for Table 1 (empty: skip).
    rd_bpps: rates of the RD curves (empty: skip).
    max_images: use at most this many images per dataset.
    verbose: print progress.

  Returns:
    {artifact name: path}.
  """
  say = _log if verbose else (lambda m: None)
  os.makedirs(out_dir, exist_ok=True)
  loaded = [evaluation.load_trained_decoder(s) for s in decoders]
  base_systems = [evaluation.make_system(s) for s in systems]
  dec_systems = [evaluation.trained_decoder_system(d) for d in loaded]
  all_systems = base_systems + dec_systems
  artifacts = {}
  table3 = {}
  titles = {}
  for ds in datasets:
    t0 = time.time()
    imgs = evaluation.load_eval_images(ds.path, ds.max_side, max_images)
    say(f"[{ds.name}] {len(imgs)} images from {ds.path}, Table 3 rate "
        f"{ds.bpp} bpp")
    cache = evaluation.CodecCache()
    res = evaluation.evaluate(imgs, all_systems, [ds.bpp], cache=cache)
    evaluation.write_results(out_dir, ds.name, res, all_systems)
    table3[ds.name] = res
    titles[ds.name] = f"{ds.title} ({len(imgs)} images, target {ds.bpp} bpp)"
    for name, rows in res.items():
      s = evaluation.summarize(rows)
      say(f"  {name:<28} bpp {s['bpp'][0]:.4f}  PSNR {s['psnr'][0]:.4f}  "
          f"SSIM {s['ssim'][0]:.4f}  MS-SSIM {s['ms-ssim'][0]:.4f}")
    if k_sweep and loaded:
      ksys = [evaluation.trained_decoder_system(d, K=k) for d in loaded
              for k in k_sweep]
      codec_rows = [s for s in base_systems if s.name in ("JPEG",
                                                          "JPEG 2000")]
      kres = evaluation.evaluate(imgs, ksys + codec_rows, [ds.bpp],
                                 cache=cache)
      md = evaluation.k_sweep_markdown(kres, [d.label for d in loaded],
                                       k_sweep, [s.name for s in codec_rows])
      path = os.path.join(out_dir, f"table1_{ds.name}.md")
      with open(path, "w") as f:
        f.write(f"PSNR (dB) on {titles[ds.name]} as a function of K\n\n" + md)
      with open(path[:-3] + ".json", "w") as f:
        json.dump({k: evaluation.summarize(v) for k, v in kres.items()}, f,
                  indent=1)
      artifacts[f"table1_{ds.name}"] = path
      say(md)
    if rd_bpps:
      rd = evaluation.evaluate(imgs, all_systems, list(rd_bpps), cache=cache)
      rd_dir = os.path.join(out_dir, "rd")
      paths = evaluation.write_results(rd_dir, ds.name, rd, all_systems)
      png = plots.plot_rd(list(paths.values()),
                          os.path.join(out_dir, f"rd_{ds.name}.png"),
                          title=f"{ds.title}: rate-distortion")
      artifacts[f"rd_{ds.name}"] = png
    say(f"[{ds.name}] done in {time.time() - t0:.1f}s")
  path = os.path.join(out_dir, "table3.md")
  with open(path, "w") as f:
    f.write("# Table 3: out-of-sample results\n\n"
            + evaluation.table3_markdown(table3, titles))
  artifacts["table3"] = path
  logs = {d.label: d.log for d in loaded if d.log and d.log.get("epochs")}
  if logs:
    artifacts.update(write_figure1(logs, out_dir))
  return artifacts


def load_logs(model_dirs: Sequence[str]) -> Dict[str, dict]:
  """{label: log.json} of training model dirs given as ``[LABEL=]DIR``."""
  logs = {}
  for spec in model_dirs:
    label, path = roots.split_label(spec)
    with open(os.path.join(path, "log.json")) as f:
      log = json.load(f)
    fl = log.get("flags", {})
    label = label or evaluation.decoder_label(
        fl.get("cell", "lstm"), fl.get("codec", "jpeg"), log["algorithm"],
        str(fl.get("sne", False)).lower() == "true")
    logs[label] = log
  return logs


def write_figure1(logs: Dict[str, dict], out_dir: str) -> Dict[str, str]:
  """Figure 1 (validation PSNR per epoch) and the convergence table."""
  curves = evaluation.figure1_curves(logs)
  codec_psnr = {}
  for log in logs.values():
    codec = str(log.get("flags", {}).get("codec", "codec")).upper()
    for e in log["epochs"]:
      if e.get("codec_psnr") is not None:
        codec_psnr.setdefault(f"{codec} alone", e["codec_psnr"])
        break
  png = plots.plot_curves(curves, os.path.join(out_dir, "figure1.png"),
                          title="Validation PSNR per epoch",
                          baseline=codec_psnr)
  path = os.path.join(out_dir, "convergence.md")
  with open(path, "w") as f:
    f.write(evaluation.convergence_markdown(logs))
  return {"figure1": png, "convergence": path}
