"""Evaluation of codecs, neural baselines and trained decoders (paper, 3.3).

One convention everywhere (see `tf_hbd.evaluation.metrics`): gray 8-bit images, full
size, no border crop, metrics on 8-bit rounded reconstructions, achieved rate
``8 * len(bitstream) / pixels``.

A *system* maps an original gray image and a target rate to a reconstruction
and the rate it actually spent:

* ``jpeg`` / ``jp2``: `tf_hbd.codecs.legacy` at the target (highest setting <= it);
* ``goog`` / ``e2e``: the shipped neural codecs (`tf_hbd.baselines`);
* a trained decoder: the codec it was trained for at the target, then
  `tf_hbd.inference.refine.refine`; its rate is the codec's rate (the decoder adds no
  bits). The codec output is computed once per image and shared by the plain
  codec row and every decoder that refines it, so a decoder that returns its
  input scores exactly the codec's numbers.

Results are written as one JSON file per dataset and system in a
CompressAI-like schema::

  {"name": ..., "description": ..., "dataset": ...,
   "results": {"bpp": [...], "psnr": [...], "ssim": [...], "ms-ssim": [...]},
   "per_image": [{"image": ..., "target_bpp": ..., "bpp": ..., ...}, ...]}

where ``results`` holds one mean per target rate (an RD curve).
"""

import collections
import dataclasses
import json
import math
import os
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import images
from tf_hbd.data import pipelines
from tf_hbd.evaluation import metrics

__all__ = [
    "Benchmark", "BENCHMARKS", "System", "codec_system", "baseline_system",
    "decoder_system", "load_eval_images", "evaluate",
    "summarize", "write_results", "table3_markdown", "METRICS",
    "decoder_label", "LoadedDecoder", "load_trained_decoder",
    "trained_decoder_system", "k_sweep_markdown", "convergence_markdown",
    "figure1_curves", "CodecCache", "split_label",
]

METRICS = ("psnr", "ssim", "ms-ssim")


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """One of the paper's test sets (section 3.1), found in a local folder.

  Attributes:
    title: name as in the paper's Table 3.
    bpp: the paper's operating point for Table 3.
    max_side: downsample so the longer side is at most this (None: as is).
    source: where to get the images.
  """
  title: str
  bpp: float
  max_side: Optional[int]
  source: str


BENCHMARKS = {
    "kodak": Benchmark("Kodak", 0.37, None,
                       "http://r0k.us/graphics/kodak/ (24 PNG, 768x512)"),
    "cb8": Benchmark("CB 8-Bit", 0.341, 1200,
                     "http://imagecompression.info/test_images/ "
                     "(gray8bit.zip, 14 PGM)"),
    "cb16": Benchmark("CB 16-Bit", 0.35, 1200,
                      "http://imagecompression.info/test_images/ "
                      "(gray16bit.zip, 16-bit PGM)"),
    "cb16linear": Benchmark("CB 16-Bit-Linear", 0.35, 1200,
                            "http://imagecompression.info/test_images/ "
                            "(rgb16bit-linear / gray16bit-linear)"),
    "tecnick": Benchmark("Tecnick", 0.475, None,
                         "https://testimages.org/ (TESTIMAGES, "
                         "SAMPLING/8BIT/RGB/1200x1200)"),
    "wikipedia": Benchmark("Wikipedia", 0.352, 1200,
                           "any folder of high-resolution photographs "
                           "(the paper crawled 100 from Wikipedia)"),
    "bsd68": Benchmark("BSD68", 0.37, None, "BSD68 test split (gray PNG)"),
}


def load_eval_images(folder: str, max_side: Optional[int] = None,
                     limit: Optional[int] = None
                     ) -> List[pipelines.EvalImage]:
  """Loads every image of a folder/glob in gray (optionally downsampled).

  `tf_hbd.data.pipelines.load_images` with the evaluation's conventions:
  ``sample:<split>`` selects a split of the embedded scikit-image photographs
  (`tf_hbd.data.sample_images`), e.g. ``sample:test``; images are named by
  their file name without extension; ``limit`` 0 or None means all.
  """
  source = folder
  if folder.startswith("sample:"):
    from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top
    source = [sample_images.sample_path(n)
              for n in sample_images.sample_names(folder[len("sample:"):])]
  return [dataclasses.replace(
      im, name=os.path.splitext(os.path.basename(im.name))[0])
          for im in pipelines.load_images(source, max_side=max_side,
                                          limit=limit or None)]


@dataclasses.dataclass
class System:
  """Something that turns (image, target bpp) into (reconstruction, bpp).

  Attributes:
    name: row label, e.g. "JPEG" or "LSTM-JPEG-BPTT".
    description: one line for the JSON file.
    run: callable(image_uint8, target_bpp, cache, image_key) ->
      (recon_uint8, bpp); `cache` is a `CodecCache`.
  """
  name: str
  description: str
  run: Callable


class CodecCache:
  """Codec round trips shared between a codec row and decoders that refine it."""

  def __init__(self):
    self._store = {}

  def roundtrip(self, key, image, codec, bpp):
    """(decoded, achieved bpp)."""
    return self._get(key, image, codec, bpp)[:2]

  def encoded(self, key, image, codec, bpp) -> codecs.Encoded:
    """The bitstream behind `roundtrip` (for the codec setting)."""
    return self._get(key, image, codec, bpp)[2]

  def _get(self, key, image, codec, bpp):
    k = (key, codec, float(bpp))
    if k not in self._store:
      dec, enc = codecs.roundtrip(image, codec, bpp=bpp)
      self._store[k] = (dec, enc.bpp, enc)
    return self._store[k]


def codec_system(codec: str) -> System:
  title = {"jpeg": "JPEG", "jp2": "JPEG 2000"}[codec]

  def run(image, bpp, cache, key):
    return cache.roundtrip(key, image, codec, bpp)

  return System(title, f"{title} via Pillow at the highest setting with "
                "bpp <= target", run)


def baseline_system(name: str) -> System:
  """GOOG or E2E from the shipped models in `tf_hbd.baselines`."""
  from tf_hbd import baselines  # pylint: disable=g-import-not-at-top

  def run(image, bpp, cache, key):
    del cache, key
    decoded, _, achieved = baselines.encode_at_bpp(name, image, bpp)
    return decoded, achieved

  title = {"goog": "GOOG", "e2e": "E2E (Neural)"}.get(name, name.upper())
  return System(title, f"{title}: shipped {name} model, real bitstream", run)


def decoder_system(label: str, model, codec: str, K: Optional[int] = None,
                   refine_fn: Optional[Callable] = None,
                   description: str = "") -> System:
  """A trained decoder refining `codec` output at the target rate."""
  if refine_fn is None:
    from tf_hbd.inference import refine as refine_lib  # pylint: disable=g-import-not-at-top

    def refine_fn(decoded, model, K=None, encoded=None):
      setting = (codec_setting.features(encoded.data, codec, decoded.shape)
                 if getattr(model, "setting_size", 0) else None)
      return refine_lib.refine(decoded, model, K=K, setting=setting)

  def run(image, bpp, cache, key):
    decoded, achieved = cache.roundtrip(key, image, codec, bpp)
    return refine_fn(decoded, model, K=K,
                     encoded=cache.encoded(key, image, codec, bpp)), achieved

  desc = description or f"HBD decoder refining {codec} (K={K or 'trained'})"
  return System(label, desc, run)


def evaluate(eval_images: Sequence[pipelines.EvalImage],
             systems: Sequence[System], bpps: Sequence[float],
             progress: Optional[Callable] = None,
             cache: Optional[CodecCache] = None) -> Dict[str, list]:
  """Runs every system on every image at every target rate.

  Returns:
    {system name: [per-image dicts with image, target_bpp, bpp, psnr, ssim,
    ms-ssim]}.
  """
  cache = cache or CodecCache()
  out = collections.OrderedDict((s.name, []) for s in systems)
  if len(out) != len(systems):
    raise ValueError("system names must be unique: "
                     f"{[s.name for s in systems]}")
  for bpp in bpps:
    for img in eval_images:
      for s in systems:
        recon, achieved = s.run(img.gray, bpp, cache, img.name)
        recon = metrics.to_uint8(recon)
        if recon.shape != img.gray.shape:
          raise ValueError(f"{s.name} returned shape {recon.shape} for "
                           f"{img.name} {img.gray.shape}")
        row = {"image": img.name, "target_bpp": float(bpp),
               "bpp": float(achieved)}
        row.update(metrics.all_metrics(img.gray, recon))
        out[s.name].append(row)
        if progress:
          progress(s.name, img.name, row)
  return out


def summarize(rows: Sequence[dict]) -> dict:
  """Mean bpp and metrics per target rate (CompressAI `results` layout)."""
  by_rate = collections.OrderedDict()
  for r in rows:
    by_rate.setdefault(r["target_bpp"], []).append(r)
  res = {"bpp": [], "psnr": [], "ssim": [], "ms-ssim": []}
  for _, rs in by_rate.items():
    res["bpp"].append(float(np.mean([r["bpp"] for r in rs])))
    for m in METRICS:
      vals = [r[m] for r in rs]
      res[m].append(float(np.mean(vals)) if all(map(math.isfinite, vals))
                    else float("inf"))
  return res


def _slug(name):
  return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def write_results(out_dir: str, dataset: str, results: Dict[str, list],
                  systems: Sequence[System]) -> Dict[str, str]:
  """Writes <out_dir>/<dataset>/<system>.json; returns {system: path}."""
  os.makedirs(os.path.join(out_dir, dataset), exist_ok=True)
  desc = {s.name: s.description for s in systems}
  paths = {}
  for name, rows in results.items():
    doc = {"name": name, "description": desc.get(name, ""), "dataset": dataset,
           "results": summarize(rows), "per_image": rows}
    path = os.path.join(out_dir, dataset, _slug(name) + ".json")
    with open(path, "w") as f:
      json.dump(doc, f, indent=1)
    paths[name] = path
  return paths


def table3_markdown(tables: Dict[str, Dict[str, list]],
                    titles: Optional[Dict[str, str]] = None) -> str:
  """Markdown laid out like the paper's Table 3 (datasets x systems x metrics).

  Args:
    tables: {dataset: {system: per-image rows}} (one target rate each).
    titles: optional {dataset: header text}.
  """
  lines = []
  for dataset, results in tables.items():
    title = (titles or {}).get(dataset, dataset)
    lines.append(f"### {title}\n")
    lines.append("| Model | bpp | PSNR | SSIM | MS-SSIM |")
    lines.append("|---|---|---|---|---|")
    for name, rows in results.items():
      s = summarize(rows)
      lines.append(f"| {name} | {s['bpp'][0]:.4f} | {s['psnr'][0]:.4f} | "
                   f"{s['ssim'][0]:.4f} | {s['ms-ssim'][0]:.4f} |")
    lines.append("")
  return "\n".join(lines)


# ---- trained decoders from model dirs ---------------------------------------

_CODEC_TITLE = {"jpeg": "JPEG", "jp2": "JP2"}


def split_label(spec: str):
  """``[LABEL=]PATH`` -> (LABEL or "", PATH); the last "=" separates them."""
  label, _, path = spec.rpartition("=")
  return label, path


def decoder_label(cell: str, codec: str, algorithm: str, sne: bool = False):
  """The paper's row label, e.g. ``LSTM-JP2-SAB`` or ``SNE-RNN-JPEG-BPTT``."""
  head = "SNE-RNN" if sne else (cell or "rnn").upper()
  return f"{head}-{_CODEC_TITLE.get(codec, codec.upper())}-{algorithm.upper()}"


@dataclasses.dataclass
class LoadedDecoder:
  """A trained decoder found in a model dir or an export.

  Attributes:
    label: row label (``LSTM-JPEG-BPTT``...).
    codec: the codec whose output it refines.
    refine: callable(decoded uint8, K=None, encoded=None, ensemble=False)
      -> uint8; the `tf_hbd.codecs.legacy.Encoded` bitstream gives the codec
      setting to decoders that take it; ``ensemble``: geometric
      self-ensemble (serving exports).
    K: the trained number of refinement steps.
    log: the training log (``log.json``) if there is one, else None.
    path: where it was loaded from.
  """
  label: str
  codec: str
  refine: Callable
  K: int
  log: Optional[dict]
  path: str


def load_trained_decoder(spec: str) -> LoadedDecoder:
  """Loads ``[LABEL=]PATH`` where PATH is a training model dir or an export.

  A training model dir (``scripts/train.py --model_dir``) holds ``log.json``
  and ``export/`` (the Keras SavedModel); a serving export
  (`tf_hbd.inference.serving.export_serving`) holds ``hbd_model.json``. With both, the
  serving export ``<dir>/serving`` is used, so what is evaluated is what
  ships.
  """
  label, path = split_label(spec)
  path = os.path.expanduser(path)
  log = None
  log_path = os.path.join(path, "log.json")
  if os.path.isfile(log_path):
    with open(log_path) as f:
      log = json.load(f)
  from tf_hbd.inference import serving  # pylint: disable=g-import-not-at-top
  for cand in (path, os.path.join(path, "serving")):
    if os.path.isfile(os.path.join(cand, serving.METADATA_FILE)):
      served = serving.load(cand)
      meta = served.metadata
      label = label or meta.get("label") or decoder_label(
          meta.get("cell"), meta["codec"], meta.get("algorithm", "?"),
          meta.get("sne", False))
      codec = meta["codec"]

      def served_refine(img, K=None, encoded=None, ensemble=False,
                        served=served, codec=codec):
        setting = (codec_setting.features(encoded.data, codec, img.shape)
                   if served.setting_size and encoded is not None else None)
        return served.refine(img, K=K, setting=setting, ensemble=ensemble)

      return LoadedDecoder(label, codec, served_refine, int(meta["K"]), log,
                           cand)
  export = os.path.join(path, "export")
  if log is None or not os.path.isdir(export):
    raise FileNotFoundError(
        f"{path!r} is neither a tf_hbd serving export (hbd_model.json) nor a "
        "finished training model dir (log.json + export/)")
  from tf_hbd.training import algorithms  # pylint: disable=g-import-not-at-top,unused-import
  from tf_hbd.model import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import refine as refine_lib  # pylint: disable=g-import-not-at-top
  model = decoder_lib.load_decoder(export)
  flags_ = log.get("flags", {})
  codec = flags_.get("codec", "jpeg")
  label = label or decoder_label(flags_.get("cell", "lstm"), codec,
                                 log.get("algorithm", "?"),
                                 bool(flags_.get("sne", False)))

  def model_refine(img, K=None, encoded=None, ensemble=False):
    if ensemble:
      raise ValueError("the self-ensemble needs a serving export")
    setting = (codec_setting.features(encoded.data, codec, img.shape)
               if getattr(model, "setting_size", 0) and encoded is not None
               else None)
    return refine_lib.refine(img, model, K=K, setting=setting)

  return LoadedDecoder(label, codec, model_refine, int(model.K), log, export)


def trained_decoder_system(dec: LoadedDecoder, K: Optional[int] = None,
                           label: Optional[str] = None) -> System:
  """A `System` for a loaded decoder, optionally at another K."""
  name = label or (dec.label if K is None else f"{dec.label} K={K}")
  return decoder_system(
      name, None, dec.codec, K=K,
      refine_fn=lambda img, _model, K=None, encoded=None: dec.refine(
          img, K=K, encoded=encoded),
      description=f"HBD decoder from {dec.path} refining {dec.codec} "
      f"(trained K={dec.K}, evaluated K={K or dec.K})")


def k_sweep_markdown(results: Dict[str, list], labels: Sequence[str],
                     ks: Sequence[int], codec_rows: Sequence[str] = ()) -> str:
  """Table 1: PSNR as a function of K, one row per decoder."""
  lines = ["| Model | " + " | ".join(f"K={k}" for k in ks) + " |",
           "|---|" + "---|" * len(ks)]
  for label in labels:
    cells = []
    for k in ks:
      rows = results[f"{label} K={k}"]
      cells.append(f"{summarize(rows)['psnr'][0]:.4f}")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  for name in codec_rows:
    p = summarize(results[name])["psnr"][0]
    lines.append(f"| {name} | " + " | ".join(f"{p:.4f}" for _ in ks) + " |")
  return "\n".join(lines) + "\n"


def convergence_markdown(logs: Dict[str, dict]) -> str:
  """The convergence-epoch table from training logs (Figure 1's companion)."""
  lines = ["| Model | epochs run | best val PSNR (epoch) | convergence epoch |"
           " codec val PSNR |", "|---|---|---|---|---|"]
  for label, log in logs.items():
    eps = log.get("epochs", [])
    best = log.get("best") or {}
    codec_psnr = next((e.get("codec_psnr") for e in eps
                       if e.get("codec_psnr") is not None), None)
    lines.append(
        f"| {label} | {len(eps)} | "
        f"{best.get('val_psnr', float('nan')):.4f} ({best.get('epoch', '-')}) "
        f"| {log.get('convergence_epoch', '-')} | "
        + (f"{codec_psnr:.4f}" if codec_psnr is not None else "-") + " |")
  return "\n".join(lines) + "\n"


def figure1_curves(logs: Dict[str, dict]) -> Dict[str, list]:
  """{label: [(epoch, val_psnr), ...]} from training logs."""
  return {label: [(e["epoch"], e["val_psnr"]) for e in log.get("epochs", [])
                  if e.get("val_psnr") is not None]
          for label, log in logs.items()}
