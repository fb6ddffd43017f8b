"""The JPEG 2000 guards' thresholds against the do-no-harm contract and the gain.

Refines every stress-set image and every Kodak / BSD68 image (where present)
once per rate with an exported JPEG 2000 decoder in the NumPy runtime, with
its passthroughs off, then applies the runtime's own guard arithmetic
(`tf_hbd.inference.numpy_serving`: rate cap, flat-tile fraction, activity
ramp) for each pair of activity thresholds. Prints, per pair, the do-no-harm
violations (`tf_hbd.evaluation.no_harm` rules) split into the selection sets
(BSD68 + stress set) and Kodak (reported only), and the mean gain per set and
rate. The hbd-lstm-jp2 MODEL.md table comes from:

  .venv/bin/python benchmarks/jp2_guard_sweep.py \
      --model=tf_hbd/pretrained/hbd-lstm-jp2 --unguarded

Exit code 0.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import pipelines as data_lib
from tf_hbd.data import stress_set
from tf_hbd.evaluation import no_harm
from tf_hbd.inference import numpy_serving

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "shared", "data")
GRID = "15/30,20/30,20/40,25/40,25/50,30/50,30/60,40/60"


def _images(root):
  images = dict(stress_set.images())
  for name in ("kodak", "bsd68"):
    folder = os.path.join(root, name)
    if os.path.isdir(folder):
      for im in data_lib.load_images(folder):
        images[f"{name}/{im.name}"] = im.gray
  return images


def _passes(model, images, rates, flat_guard):
  """(name, rate, original, decoded, setting, unguarded refined) per pair."""
  model.metadata["flat_guard"] = flat_guard
  model.metadata["passthrough"] = {}
  out = []
  for rate in rates:
    for name, img in images.items():
      decoded, enc = codecs.roundtrip(img, "jp2", bpp=rate)
      setting = codec_setting.features(enc.data, "jp2", decoded.shape)
      out.append((name, rate, img, decoded, setting, enc.bpp,
                  np.asarray(model.refine(decoded, setting=setting))))
  return out


def _rows(pairs, options):
  rows = []
  for name, rate, img, dec, setting, bpp, ref in pairs:
    st = np.asarray(setting, np.float32).reshape(-1)
    if options and numpy_serving._passthrough("jp2", st, options, dec):  # pylint: disable=protected-access
      out = dec
    elif options:
      out = numpy_serving._activity_ramp(dec, ref, st, options)  # pylint: disable=protected-access
    else:
      out = ref
    flat = img.min() == img.max()
    level = int(img.flat[0]) if flat else -1
    dev = lambda x: int(np.abs(x.astype(int) - level).max()) if flat else 0  # pylint: disable=cell-var-from-loop
    rows.append(no_harm.Row(name, rate, bpp, no_harm._psnr(img, dec),  # pylint: disable=protected-access
                            no_harm._psnr(img, out), level, dev(out),  # pylint: disable=protected-access
                            dev(dec)))
  return rows


def _report(label, rows, rates):
  bad = no_harm.failures(rows)
  kodak = [r for r in bad if r.image.startswith("kodak/")]
  worst = min((r.delta_db for r in rows if r.flat_value < 0), default=0.0)
  gains = []
  for group in ("bsd68", "kodak"):
    means = [np.mean([r.delta_db for r in rows if r.setting == s and
                      r.image.startswith(group + "/")] or [np.nan])
             for s in rates]
    gains.append(f"{group} " + " / ".join(f"{m:+.3f}" for m in means))
  print(f"{label:>22}: violations {len(bad) - len(kodak)} (bsd68 + stress), "
        f"{len(kodak)} (kodak); worst {worst:+.3f} dB | " + " | ".join(gains),
        flush=True)


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", required=True, help="JPEG 2000 export.")
  p.add_argument("--rates", default="0.1,0.25,0.37,0.5", help="bpp list.")
  p.add_argument("--grid", default=GRID, help="low/high activity pairs.")
  p.add_argument("--max_bpp", type=float, default=0.7)
  p.add_argument("--max_flat_fraction", type=float, default=0.5)
  p.add_argument("--unguarded", action="store_true",
                 help="Also a row with no guards at all (a second pass).")
  p.add_argument("--data_root", default=os.environ.get("TF_HBD_DATA", SHARED))
  args = p.parse_args(argv)
  rates = [float(r) for r in args.rates.split(",")]
  model = numpy_serving.load(args.model, "numpy")
  images = _images(args.data_root)
  print(f"{len(images)} images x {len(rates)} rates; gains at "
        f"{args.rates} bpp", flush=True)
  if args.unguarded:
    _report("no guards", _rows(_passes(model, images, rates, False), {}),
            rates)
  pairs = _passes(model, images, rates, True)
  for pair in args.grid.split(","):
    low, high = (float(v) for v in pair.split("/"))
    options = {"jp2_max_bpp": args.max_bpp,
               "jp2_max_flat_fraction": args.max_flat_fraction,
               "jp2_min_activity_per_bpp": low,
               "jp2_full_activity_per_bpp": high}
    _report(f"{low:g} / {high:g}", _rows(pairs, options), rates)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
