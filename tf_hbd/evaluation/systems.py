"""Evaluation of codecs, neural baselines and trained decoders (paper, 3.3).

One convention everywhere (see `tf_hbd.evaluation.metrics`): gray 8-bit images, full
size, no border crop, metrics on 8-bit rounded reconstructions, achieved rate
``8 * len(bitstream) / pixels``.

One `evaluate` runs *systems* on images at *operating points* (`Point`: a
target rate, a codec quality, or none: each system's own setting). A system
maps an original gray image and the point to a reconstruction and the rate it
actually spent. They are made by the factories of the registry `SYSTEMS`
(filled by `register_system`, as CompressAI's model zoo is):

* ``jpeg`` / ``jp2``: `tf_hbd.codecs.legacy` at the point (highest setting
  whose rate is <= the target, or the given quality);
* ``goog`` / ``e2e``: the shipped neural codecs (`tf_hbd.baselines`) at the
  target rate; `neural_system` also runs one shipped model at its own
  setting (an E2E model, a GOOG iteration count);
* ``at_rate_of``: a codec at the rate another system achieved on the same
  image (the neural baselines' RD table, `tf_hbd.baselines.rd`);
* a trained decoder: the codec it was trained for at the point, then
  `tf_hbd.inference.refine.refine`; its rate is the codec's rate (the
  decoder adds no bits). The codec output is computed once per image and
  shared by the plain codec row and every decoder that refines it, so a
  decoder that returns its input scores exactly the codec's numbers.

Results are written as one JSON file per dataset and system in a
CompressAI-like schema::

  {"name": ..., "description": ..., "dataset": ...,
   "results": {"bpp": [...], "psnr": [...], "ssim": [...], "ms-ssim": [...]},
   "per_image": [{"image": ..., "target_bpp": ..., "bpp": ..., ...}, ...]}

where ``results`` holds one mean per operating point (an RD curve).
"""

import collections
import dataclasses
import functools
import json
import math
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import images
from tf_hbd.data import pipelines
from tf_hbd.data import roots
from tf_hbd.evaluation import metrics

__all__ = [
    "Benchmark", "BENCHMARKS", "System", "Point", "as_point", "SYSTEMS",
    "register_system", "make_system", "codec_system", "baseline_system",
    "neural_system", "at_rate_of", "decoder_system", "load_eval_images",
    "evaluate",
    "summarize", "write_results", "table3_markdown", "METRICS",
    "decoder_label", "LoadedDecoder", "load_trained_decoder",
    "trained_decoder_system", "k_sweep_markdown", "convergence_markdown",
    "figure1_curves", "CodecCache",
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


def load_eval_images(folder, max_side: Optional[int] = None,
                     limit: Optional[int] = None, name_by: str = "stem"
                     ) -> List[pipelines.EvalImage]:
  """Loads every image of a folder/glob (or a list of files) in gray.

  `tf_hbd.data.pipelines.load_images` with the evaluation's conventions:
  ``sample:<split>`` selects a split of the embedded scikit-image photographs
  (`tf_hbd.data.sample_images`), e.g. ``sample:test``; images are named by
  their file name without extension (``name_by="stem"``) or by the path
  they were read from (``"path"``, for a list of files); ``limit`` 0 or
  None means all; ``max_side`` downsamples (None: as is).
  """
  if name_by not in ("stem", "path"):
    raise ValueError(f"name_by must be 'stem' or 'path', not {name_by!r}")
  source = folder
  if isinstance(folder, str) and folder.startswith("sample:"):
    from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top
    source = [sample_images.sample_path(n)
              for n in sample_images.sample_names(folder[len("sample:"):])]
  if name_by == "path":
    if isinstance(source, str):
      source = images.list_images(source)
    source = list(source)[:limit or None]
    return [dataclasses.replace(im, name=path) for path, im in zip(
        source, pipelines.load_images(source, max_side=max_side))]
  return [dataclasses.replace(
      im, name=os.path.splitext(os.path.basename(im.name))[0])
          for im in pipelines.load_images(source, max_side=max_side,
                                          limit=limit or None)]


@dataclasses.dataclass(frozen=True)
class Point:
  """An operating point: a target rate, a codec quality, or neither.

  Attributes:
    bpp: target bits per pixel (codecs: highest setting at or below it).
    quality: a codec's own quality setting (JPEG 1..100, JPEG 2000 ratio).
  With neither, each system runs at its own setting (a neural model's
  fixed rate; a codec then needs `at_rate_of`).
  """
  bpp: Optional[float] = None
  quality: Optional[float] = None

  def __post_init__(self):
    if self.bpp is not None and self.quality is not None:
      raise ValueError("a Point has a target bpp or a quality, not both")

  def codec_kwargs(self) -> dict:
    """``bpp=`` or ``quality=`` for `tf_hbd.codecs.legacy.encode`."""
    if self.bpp is not None:
      return {"bpp": self.bpp}
    if self.quality is not None:
      return {"quality": self.quality}
    raise ValueError("a codec needs a target bpp or a quality (or "
                     "at_rate_of another system)")

  def row_fields(self) -> dict:
    """What a result row records of the point."""
    if self.bpp is not None:
      return {"target_bpp": float(self.bpp)}
    return {} if self.quality is None else {"quality": self.quality}


def as_point(point) -> Point:
  """A `Point` from a Point, a target bpp (number) or None."""
  if isinstance(point, Point):
    return point
  return Point() if point is None else Point(bpp=float(point))


@dataclasses.dataclass
class System:
  """Something that turns (image, operating point) into (reconstruction, bpp).

  Attributes:
    name: row label, e.g. "JPEG" or "LSTM-JPEG-BPTT".
    description: one line for the JSON file.
    run: callable(image_uint8, point, cache, image_key) -> (recon_uint8,
      bpp) or (recon_uint8, bpp, details dict added to the row); `point` is
      a `Point`, `cache` a `CodecCache`.
  """
  name: str
  description: str
  run: Callable


class CodecCache:
  """What systems share within one evaluation.

  Codec round trips (shared between a codec row and the decoders that refine
  it), the rate each system achieved on each image (for `at_rate_of`) and
  any other per-image value a system wants to compute once (`memo`).

  Args:
    disk: a `tf_hbd.evaluation.codec_cache.RoundTripCache` the codec round
      trips go through (shared by evaluations in other processes, e.g. the
      runs of a study); None: coded here.
  """

  def __init__(self, disk=None):
    self._store = {}
    self._achieved = {}
    self._disk = disk

  def roundtrip(self, key, image, codec, point):
    """(decoded, achieved bpp) at a `Point` (or a target bpp)."""
    return self._get(key, image, codec, point)[:2]

  def encoded(self, key, image, codec, point) -> codecs.Encoded:
    """The bitstream behind `roundtrip` (for the codec setting)."""
    return self._get(key, image, codec, point)[2]

  def memo(self, key, compute: Callable):
    """``compute()`` once per `key` (a tuple naming the image and the value)."""
    key = ("memo",) + tuple(key)
    if key not in self._store:
      self._store[key] = compute()
    return self._store[key]

  def note(self, key, point, system: str, bpp: float):
    """Records the rate `system` achieved on image `key` at `point`."""
    self._achieved[(key, as_point(point), system)] = float(bpp)

  def achieved(self, key, point, system: str) -> float:
    """The rate `system` achieved on image `key` at `point`."""
    try:
      return self._achieved[(key, as_point(point), system)]
    except KeyError:
      raise ValueError(f"{system!r} has not run on {key!r} yet: list it "
                       "before the systems that use its rate") from None

  def _get(self, key, image, codec, point):
    point = as_point(point)
    k = (key, codec, point)
    if k not in self._store:
      roundtrip = (codecs.roundtrip if self._disk is None
                   else self._disk.roundtrip)
      dec, enc = roundtrip(image, codec, **point.codec_kwargs())
      self._store[k] = (dec, enc.bpp, enc)
    return self._store[k]


SYSTEMS: Dict[str, Callable[..., System]] = {}


def register_system(*names: str):
  """Decorator: registers a `System` factory under each of `names`.

  The factory is stored with the name as its first argument, so
  ``SYSTEMS["jpeg"]()`` is ``codec_system("jpeg")``.
  """
  def register(factory):
    for name in names:
      if name in SYSTEMS:
        raise ValueError(f"system {name!r} is registered twice")
      SYSTEMS[name] = functools.partial(factory, name)
    return factory
  return register


def make_system(system: str, /, **kwargs) -> System:
  """The registered `system` (see `SYSTEMS`) made with `kwargs`."""
  if system not in SYSTEMS:
    raise ValueError(f"unknown system {system!r}; known: {sorted(SYSTEMS)}")
  return SYSTEMS[system](**kwargs)


@register_system("jpeg", "jp2")
def codec_system(codec: str, name: Optional[str] = None) -> System:
  """A legacy codec at the operating point."""
  title = {"jpeg": "JPEG", "jp2": "JPEG 2000"}[codec]

  def run(image, point, cache, key):
    return cache.roundtrip(key, image, codec, point)

  return System(name or title, f"{title} via Pillow at the highest setting "
                "with bpp <= target", run)


@register_system("at_rate_of")
def _at_rate_of(_, codec: str, reference: str, name: str) -> System:
  return at_rate_of(codec, reference, name)


def at_rate_of(codec: str, reference: str, name: str) -> System:
  """`codec` at the rate system `reference` achieved on the same image.

  `reference` must come earlier in the list given to `evaluate`; the
  round trip is shared with every other system at that rate.
  """
  def run(image, point, cache, key):
    bpp = cache.achieved(key, point, reference)
    return cache.roundtrip(key, image, codec, Point(bpp=bpp))

  return System(name, f"{codec} at the rate of {reference} on each image",
                run)


@register_system("goog", "e2e")
def baseline_system(name: str) -> System:
  """GOOG or E2E from the shipped models in `tf_hbd.baselines`."""
  title = {"goog": "GOOG", "e2e": "E2E (Neural)"}.get(name, name.upper())
  return neural_system(name, label=title,
                       description=f"{title}: shipped {name} model, real "
                       "bitstream")


def neural_system(model: str, iterations: Optional[int] = None,
                  target: Optional[float] = None,
                  label: Optional[str] = None, codes_for: Optional[int] = None,
                  details: bool = False, description: str = "") -> System:
  """A shipped neural codec (`tf_hbd.baselines`), file written and decoded.

  Args:
    model: a shipped model or a family ("goog", "e2e").
    iterations: GOOG at this fixed iteration count.
    target: this fixed target bpp (`tf_hbd.baselines.encode_at_bpp`).
    label: the system's name (default: `model`).
    codes_for: GOOG: code this many iterations once per image and cut the
      file from them (several iteration counts of one image share them).
    details: add ``codec`` (family), ``model``, ``encode_s``, ``decode_s``
      (and GOOG's ``iterations``) to each row.
    description: one line for the JSON file.

  Without `iterations` and `target` the point's bpp is the target; at a
  point without one the model runs at its own setting (E2E: its rate;
  GOOG: 16 iterations).
  """
  def encode(image, point, cache, key):
    # pylint: disable=g-import-not-at-top
    from tf_hbd import baselines
    rate = target if target is not None else (
        None if iterations is not None else point.bpp)
    if rate is not None:
      _, data, _ = baselines.encode_at_bpp(model, image, rate)
      return baselines.load(baselines.model_of(data)), data
    codec = baselines.load(model)
    if iterations is None:
      return codec, codec.compress(image)
    codes = cache.memo((key, "goog codes", model, codes_for or iterations),
                       lambda: codec.codes(image, codes_for or iterations))
    return codec, codec.pack(image.shape, codes, iterations)

  def run(image, point, cache, key):
    # pylint: disable=g-import-not-at-top
    from tf_hbd.baselines import codec_base
    from tf_hbd.baselines import container
    t0 = time.time()
    codec, data = encode(image, point, cache, key)
    t1 = time.time()
    decoded = codec.decompress(data, key)
    t2 = time.time()
    bpp = codec_base.bpp_of(data, image.shape)
    if not details:
      return decoded, bpp
    extra = {"codec": codec.family, "model": codec.name, "encode_s": t1 - t0,
             "decode_s": t2 - t1}
    if iterations is not None or codec.family == "goog":
      extra["iterations"] = container.unpack(data).params[0]
    return decoded, bpp, extra

  return System(label or model, description or f"{model}: shipped neural "
                "codec, real bitstream", run)


def decoder_system(label: str, codec: str, refine: Callable,
                   description: str) -> System:
  """A decoder refining `codec` output at the operating point.

  ``refine(decoded uint8, encoded tf_hbd.codecs.legacy.Encoded)`` returns
  the refined image; the codec round trip is shared through the cache.
  """
  def run(image, point, cache, key):
    decoded, achieved = cache.roundtrip(key, image, codec, point)
    return refine(decoded, cache.encoded(key, image, codec, point)), achieved

  return System(label, description, run)


def evaluate(eval_images: Sequence[pipelines.EvalImage],
             systems: Sequence[System], points: Sequence,
             progress: Optional[Callable] = None,
             cache: Optional[CodecCache] = None,
             measure: Callable = metrics.all_metrics,
             on_image: Optional[Callable] = None) -> Dict[str, list]:
  """Runs every system on every image at every operating point.

  Args:
    eval_images: what to measure on (`load_eval_images`).
    systems: in order (`at_rate_of` after its reference).
    points: `Point`s, target bpps (numbers), or None (own settings).
    progress: called as progress(system name, image name, row).
    cache: share codec round trips with another call.
    measure: measure(original, reconstruction uint8) -> dict of metrics
      (default PSNR, SSIM, MS-SSIM).
    on_image: called as on_image(image name, point, {system: row}) after
      all systems ran on an image.

  Returns:
    {system name: [per-image dicts with image, the point (target_bpp or
    quality), bpp, the metrics and any details the system adds]}.
  """
  cache = cache or CodecCache()
  out = collections.OrderedDict((s.name, []) for s in systems)
  if len(out) != len(systems):
    raise ValueError("system names must be unique: "
                     f"{[s.name for s in systems]}")
  for point in map(as_point, points):
    for img in eval_images:
      rows = collections.OrderedDict()
      for s in systems:
        recon, achieved, *extra = s.run(img.gray, point, cache, img.name)
        recon = metrics.to_uint8(recon)
        if recon.shape != img.gray.shape:
          raise ValueError(f"{s.name} returned shape {recon.shape} for "
                           f"{img.name} {img.gray.shape}")
        cache.note(img.name, point, s.name, achieved)
        row = {"image": img.name, **point.row_fields(),
               "bpp": float(achieved)}
        row.update(measure(img.gray, recon))
        for more in extra:
          row.update(more)
        out[s.name].append(row)
        rows[s.name] = row
        if progress:
          progress(s.name, img.name, row)
      if on_image:
        on_image(img.name, point, rows)
  return out


def summarize(rows: Sequence[dict]) -> dict:
  """Mean bpp and metrics per operating point (CompressAI `results` layout)."""
  by_point = collections.OrderedDict()
  for r in rows:
    by_point.setdefault((r.get("target_bpp"), r.get("quality")),
                        []).append(r)
  res = {"bpp": [], "psnr": [], "ssim": [], "ms-ssim": []}
  for _, rs in by_point.items():
    res["bpp"].append(float(np.mean([r["bpp"] for r in rs])))
    for m in METRICS:
      if m not in rs[0]:
        continue
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
    refine_steps: callable(decoded uint8, K, encoded=None) -> uint8 (K,) +
      image shape, `refine` at K = 1..K (serving exports: one K-step pass,
      `tf_hbd.inference.serving.ServedModel.refine_steps`); None: not
      available (call `refine` at each K).
  """
  label: str
  codec: str
  refine: Callable
  K: int
  log: Optional[dict]
  path: str
  refine_steps: Optional[Callable] = None


def load_trained_decoder(spec: str) -> LoadedDecoder:
  """Loads ``[LABEL=]PATH`` where PATH is a training model dir or an export.

  A serving export (`tf_hbd.inference.serving.export_serving`) holds
  ``hbd_model.json``; a training model dir (``scripts/train.py
  --model_dir``) holds ``log.json`` and, once finished, its serving export
  ``<dir>/serving``, which is used, so what is evaluated is what ships. A
  finished run without one (``--noexport``) is evaluated with its final
  decoder, rebuilt from its checkpoints (`tf_hbd.training.run_decoder`; runs
  of earlier versions: their ``export/`` decoder SavedModel).
  """
  label, path = roots.split_label(spec)
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

      def served_steps(img, K, encoded=None, served=served, codec=codec):
        setting = (codec_setting.features(encoded.data, codec, img.shape)
                   if served.setting_size and encoded is not None else None)
        return served.refine_steps(img, K, setting=setting)

      return LoadedDecoder(label, codec, served_refine, int(meta["K"]), log,
                           cand, refine_steps=served_steps)
  if log is None or log.get("status") != "finished":
    raise FileNotFoundError(
        f"{path!r} is neither a tf_hbd serving export (hbd_model.json) nor a "
        "finished training model dir (log.json + checkpoints)")
  from tf_hbd.training import run_decoder  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import refine as refine_lib  # pylint: disable=g-import-not-at-top
  model, export = run_decoder.load(path, "final", log)
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
                           label: Optional[str] = None,
                           ensemble: bool = False) -> System:
  """A `System` for a loaded decoder, optionally at another K.

  ``ensemble``: the geometric self-ensemble (serving exports only).
  """
  name = label or (dec.label if K is None else f"{dec.label} K={K}")
  more = {"ensemble": True} if ensemble else {}
  return decoder_system(
      name, dec.codec,
      lambda img, encoded: dec.refine(img, K=K, encoded=encoded, **more),
      f"HBD decoder from {dec.path} refining {dec.codec} (trained K={dec.K}, "
      f"evaluated K={K or dec.K})")


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
