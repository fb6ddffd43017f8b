"""Grid-shift and geometric ensembles of a JPEG 2000 decoder, against one pass.

Encodes every image of a set (default: BSD68, the selection set) with
OpenJPEG at each rate, and refines the decoded image with an exported
decoder in the NumPy runtime (`tf_hbd.inference.numpy_serving`, what
`hbd enhance` uses) for each variant: ``S`` = `refine(shifts=S)` (the mean
of the refinements of the image shifted to S offsets of the 8 x 8 patch
grid by half a patch, `numpy_serving.grid_offsets`), ``Se`` = the same with
the geometric self-ensemble (`ensemble=True`, 8 flips / transposes per
offset). Every variant runs through `NumpyModel.refine` itself, guards as
exported (rate cap, flat tiles, activity ramp: each pass is guarded as a
single refinement is). With ``--unguarded`` each variant is also measured
with the export's passthrough options removed (no rate cap, no content
tests, no ramp; the flat-block guard stays, as in the model's own passes).

Each model pass (`NumpyModel._refine_blocks` on one shifted / flipped image)
is kept in ``--cache`` under a hash of its input, so variants share passes,
and a stopped run resumes. Prints, per variant and rate, the mean PSNR gain
over the decoded image (dB) and the worst image's (the do-no-harm contract,
`tf_hbd.evaluation.no_harm`, allows -0.05 dB), the number of model passes per image and the
mean seconds per model pass (timings: whatever else runs on the machine).

  python benchmarks/jp2_shift_ensemble.py \\
      --model=tf_hbd/pretrained/hbd-lstm-jp2 --variants=1,2,4 --unguarded

``--grid=15/30,20/40`` also measures each variant with other activity-ramp
thresholds (gains on the set only: the do-no-harm check is
`benchmarks/jp2_guard_sweep.py`'s and `benchmarks/no_harm.py`'s).

Exit code 0.
"""

import argparse
import hashlib
import json
import os
import time

import numpy as np

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import pipelines as data_lib
from tf_hbd.data import stress_set
from tf_hbd.evaluation import disk_cache
from tf_hbd.evaluation import metrics
from tf_hbd.inference import numpy_serving

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "shared", "data")


def model_identity(export_dir):
  """`numpy_serving.fingerprint` of the export's weights, with its NumPy
  runtime file and the runtime's source: passes cached for other weights or
  other runtime code are never reused (the guards act after the pass)."""
  h = hashlib.sha1(numpy_serving.fingerprint(export_dir).encode())
  for path in (os.path.join(export_dir, numpy_serving.RUNTIME_FILE),
               numpy_serving.__file__):
    with open(path, "rb") as f:
      h.update(f.read())
  return h.hexdigest()


class PassCache:
  """Wraps a NumpyModel's block pass with an on-disk cache keyed by input
  and by `model_identity` (a folder per model)."""

  def __init__(self, model, folder, identity):
    folder = os.path.join(folder, identity[:16])
    self.model, self.folder = model, folder
    self.inner = model._refine_blocks  # pylint: disable=protected-access
    self.seconds, self.runs = 0.0, 0
    os.makedirs(folder, exist_ok=True)
    model._refine_blocks = self  # pylint: disable=protected-access

  def __call__(self, gray, k, setting):
    h = hashlib.sha1(np.ascontiguousarray(gray).tobytes())
    h.update(repr((gray.shape, int(k), bool(self.model.metadata.get(
        "flat_guard")))).encode())
    if setting is not None:
      h.update(np.asarray(setting, np.float32).tobytes())
    path = os.path.join(self.folder, h.hexdigest() + ".npy")
    if os.path.exists(path):
      return np.load(path)
    start = time.perf_counter()
    out = self.inner(gray, k, setting)
    self.seconds += time.perf_counter() - start
    self.runs += 1
    disk_cache.write_atomic(path, lambda f: np.save(f, out), binary=True)
    return out


def _encoded(images, rates, folder):
  """{(name, rate): (original, decoded, setting)}, decodes cached."""
  out = {}
  os.makedirs(folder, exist_ok=True)
  for rate in rates:
    for name, img in images:
      path = os.path.join(folder, f"{name}_{rate:g}.npz")
      if not os.path.exists(path):
        dec, enc = codecs.roundtrip(img, "jp2", bpp=rate)
        st = codec_setting.features(enc.data, "jp2", dec.shape)
        disk_cache.write_atomic(
            path, lambda f: np.savez(f, decoded=dec, setting=st), binary=True)
      with np.load(path) as z:
        out[(name, rate)] = (img, z["decoded"], z["setting"])
  return out


def _parse_variant(text):
  ensemble = text.endswith("e")
  return int(text.rstrip("e")), ensemble


def _measure(model, pairs, rates, variant, guarded, ramp=None):
  """{rate: [gain per image]} of one variant; `ramp`: (low, high) activity
  thresholds in place of the export's."""
  shifts, ensemble = _parse_variant(variant)
  saved = model.metadata["passthrough"]
  if not guarded:
    model.metadata["passthrough"] = {}
  elif ramp:
    model.metadata["passthrough"] = dict(
        saved, jp2_min_activity_per_bpp=ramp[0],
        jp2_full_activity_per_bpp=ramp[1])
  gains = {rate: [] for rate in rates}
  try:
    for (_, rate), (img, dec, st) in pairs.items():
      out = model.refine(dec, setting=st, shifts=shifts, ensemble=ensemble)
      if np.array_equal(dec, img):  # decoded exactly (flat fields)
        gains[rate].append(0.0 if np.array_equal(out, img) else -np.inf)
      else:
        gains[rate].append(float(metrics.psnr(img, out)) -
                           float(metrics.psnr(img, dec)))
  finally:
    model.metadata["passthrough"] = saved
  return gains


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", required=True, help="JPEG 2000 export.")
  p.add_argument("--set", default="bsd68", help="folder under --data_root, "
                 "or stress (`tf_hbd.data.stress_set`).")
  p.add_argument("--rates", default="0.25,0.37,0.5", help="bpp list.")
  p.add_argument("--variants", default="1,2,4",
                 help="S or Se (S grid offsets; e: with the 8 symmetries).")
  p.add_argument("--unguarded", action="store_true",
                 help="Also each variant without the passthrough options.")
  p.add_argument("--grid", default="",
                 help="low/high activity thresholds (as jp2_guard_sweep.py)"
                 " to measure each variant with besides the export's: gains "
                 "only, no do-no-harm check.")
  p.add_argument("--limit", type=int, default=0, help="first N images.")
  p.add_argument("--images", default="", help="only these file names.")
  p.add_argument("--cache", default="/tmp/jp2_shift_ensemble")
  p.add_argument("--json", default="", help="write per-image gains here.")
  p.add_argument("--data_root", default=os.environ.get("TF_HBD_DATA", SHARED))
  args = p.parse_args(argv)
  rates = [float(r) for r in args.rates.split(",")]
  model = numpy_serving.load(args.model, "numpy")
  cache = PassCache(model, os.path.join(args.cache, "passes"),
                    model_identity(args.model))
  if args.set == "stress":
    images = sorted(stress_set.images().items())
  else:
    images = [(im.name, im.gray) for im in data_lib.load_images(
        os.path.join(args.data_root, args.set))]
  if args.images:
    images = [im for im in images if im[0] in args.images.split(",")]
  images = images[:args.limit] if args.limit else images
  pairs = _encoded(images, rates, os.path.join(args.cache, args.set))
  print(f"{args.set}: {len(images)} images x {args.rates} bpp; "
        f"{args.model}", flush=True)
  report = {}
  ramps = [None] + [tuple(float(v) for v in pair.split("/"))
                    for pair in args.grid.split(",") if pair]
  for variant in args.variants.split(","):
    shifts, ensemble = _parse_variant(variant)
    runs_of = [(True, r) for r in ramps] + ([(False, None)] if args.unguarded
                                            else [])
    for guarded, ramp in runs_of:
      runs, seconds = cache.runs, cache.seconds
      gains = _measure(model, pairs, rates, variant, guarded, ramp)
      label = variant + ("" if guarded else " unguarded") + (
          f" ramp {ramp[0]:g}/{ramp[1]:g}" if ramp else "")
      report[label] = {f"{r:g}": g for r, g in gains.items()}
      new = cache.runs - runs
      per_pass = (cache.seconds - seconds) / new if new else float("nan")
      print(f"{label:>18}: " + " / ".join(
          f"{np.mean(gains[r]):+.3f}" for r in rates) +
            f" dB at {args.rates} bpp (worst image " + " / ".join(
                f"{np.min(gains[r]):+.3f}" for r in rates) +
            f") | {shifts * (8 if ensemble else 1)} "
            f"passes per image; {new} new passes, {per_pass:.2f} s each",
            flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=1)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
