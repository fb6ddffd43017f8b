"""How much would entropy coding save on GOOG's bits? (issue 13)

Computes the codes of all iterations of a GOOG campaign snapshot for the
images of a fitting folder (train400) and of a measuring folder (bsd68),
fits causal context models on the first (counts, add-1/2 smoothing) and
prints the empirical code length of the second, in bits per coded bit, and
the saving against the raw bits for every iteration count k (the first k
iterations coded). Bits b[t, y, x, c] (iteration t, code position y, x,
channel c) are coded in the order t, then c, then y, x; the contexts:

* ``tc``: the (iteration, channel) only;
* ``tc+p1``: and b[t-1, y, x, c] (the same bit in the previous iteration);
* ``tc+p2``: and b[t-2, y, x, c] as well;
* ``tc+p1+pn``: ``tc+p1`` and the number of ones among b[t-1, y+-1, x+-1, c]
  (the 4 neighbours in the previous iteration);
* ``tc+p1+l1`` / ``+l2`` / ``+l3``: ``tc+p1`` and the 1 / 2 / 3 lower
  channels at the same position in the same iteration;
* ``tc+p1+s``: ``tc+p1`` and the left and upper neighbours of the same
  channel in the same iteration (not vectorisable: one position at a time);
* ``tc+p1+l2+s``: both;
* ``selP``: the codec's model (`tf_hbd.baselines.goog_bits.fit`, its
  16-bit probabilities): per (t, c), P parent bits at the same position
  chosen greedily among the lower channels of iteration t and all channels
  of iteration t-1.

Every model but the two with ``s`` decodes with at most 32 vectorised
coder calls per iteration. Positions outside the grid count as -1 bits.
Last, the bpp of a 768 x 512 image (Kodak's size, no padding: 1/8 bpp of
raw bits per iteration) at --kodak_k iterations under each model: the
header (model name "goog", 2 parameter bytes), a 4-byte length per
iteration and the measured saving (the range coder adds ~2 bytes per
segment more).

Usage:
  python benchmarks/goog_entropy.py --snapshot=campaigns/baselines/goog \
      --fit_dir=/work/shared/data/train400 --eval_dir=/work/shared/data/bsd68
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_hbd.baselines import campaign  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import container  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import goog_bits  # pylint: disable=g-import-not-at-top
from tf_hbd.codecs import images  # pylint: disable=g-import-not-at-top


def load_snapshot(folder):
  """(GoogModel with the campaign widths, training step) of a snapshot."""
  model = goog.GoogModel(goog.GoogConfig(**campaign.GOOG_WIDTHS))
  path = tf.train.latest_checkpoint(folder)
  if path is None:
    raise FileNotFoundError(f"{folder}: no checkpoint; pass a campaign "
                            "snapshot folder (e.g. campaigns/baselines/goog)")
  tf.train.Checkpoint(model=model).restore(path).expect_partial()
  step = int(tf.train.load_variable(
      path, "state/step/.ATTRIBUTES/VARIABLE_VALUE"))
  return model, step


def folder_codes(model, folder, iterations, limit=None):
  """`goog.bits_of` every image of a folder (a list of (T, h, w, 32))."""
  files = images.list_images(folder)[:limit]
  if not files:
    raise FileNotFoundError(f"{folder}: no image")
  module = goog.GoogExport(model)
  return [goog.bits_of(module, images.load_image(f).gray, iterations)
          for f in files]


def _shift(bits, axis, offset):
  """bits moved by `offset` along `axis`; new entries are 0 (a -1 bit)."""
  out = np.zeros_like(bits)
  src = [slice(None)] * bits.ndim
  dst = [slice(None)] * bits.ndim
  n = bits.shape[axis]
  if offset > 0:
    src[axis], dst[axis] = slice(0, n - offset), slice(offset, n)
  else:
    src[axis], dst[axis] = slice(-offset, n), slice(0, n + offset)
  out[tuple(dst)] = bits[tuple(src)]
  return out


def contexts(bits, name):
  """Context index (int64, the shape of `bits` (T, h, w, 32)) of a model."""
  t_count, _, _, c_count = bits.shape
  base = (np.arange(t_count)[:, None, None, None] * c_count
          + np.arange(c_count)[None, None, None, :])
  ctx = np.broadcast_to(base, bits.shape).astype(np.int64)
  parts = name.split("+")[1:]
  for part in parts:
    if part == "p1":
      ctx = ctx * 2 + _shift(bits, 0, 1)
    elif part == "p2":
      ctx = ctx * 2 + _shift(bits, 0, 2)
    elif part == "pn":
      prev = _shift(bits, 0, 1)
      ctx = ctx * 5 + sum(_shift(prev, a, o) for a in (1, 2) for o in (1, -1))
    elif part.startswith("l"):
      for j in range(1, int(part[1:]) + 1):
        ctx = ctx * 2 + _shift(bits, 3, j)
    elif part == "s":
      ctx = (ctx * 2 + _shift(bits, 1, 1)) * 2 + _shift(bits, 2, 1)
    else:
      raise ValueError(f"unknown context part {part!r}")
  return ctx


def context_size(name, iterations):
  """Number of contexts (table rows) of a model."""
  size = iterations * goog.BITS
  for part in name.split("+")[1:]:
    size *= {"p1": 2, "p2": 2, "pn": 5, "s": 4}.get(
        part, 2 ** int(part[1:]) if part.startswith("l") else 1)
  return size


def fit(code_list, name, iterations):
  """Probabilities of a one bit per context (add-1/2 counts), float64."""
  size = context_size(name, iterations)
  ones = np.zeros(size)
  total = np.zeros(size)
  for bits in code_list:
    ctx = contexts(bits, name).ravel()
    ones += np.bincount(ctx, weights=bits.ravel(), minlength=size)
    total += np.bincount(ctx, minlength=size)
  return (ones + 0.5) / (total + 1.0)


def code_lengths(code_list, name, prob):
  """Bits spent per iteration (T,) on all images under a model."""
  out = 0.0
  for bits in code_list:
    p = prob[contexts(bits, name)]
    cost = -np.log2(np.where(bits > 0, p, 1.0 - p))
    out = out + cost.sum(axis=(1, 2, 3))
  return out


def selected_lengths(fit_codes, eval_codes, iterations, parents):
  """Bits spent per iteration (T,) on `eval_codes` under the codec's
  selected-parents model (`goog_bits.fit` on `fit_codes`, its quantized
  probabilities)."""
  table, p0 = goog_bits.fit(fit_codes, iterations, parents)
  p0 = p0.reshape(iterations, goog.BITS, -1) / float(1 << goog_bits.PRECISION)
  spent = np.zeros(iterations)
  for bits in eval_codes:
    for t in range(iterations):
      x = goog_bits.columns(bits[t], bits[t - 1] if t else None)
      for c in range(goog.BITS):
        ctx = np.zeros(x.shape[:2], np.int64)
        for j in table[t, c]:
          ctx = ctx * 2 + x[..., j]
        p = p0[t, c][ctx]
        spent[t] -= np.log2(np.where(x[..., c] > 0, 1.0 - p, p)).sum()
  return spent


MODELS = ("tc", "tc+p1", "tc+p2", "tc+p1+p2", "tc+p1+pn", "tc+p1+l1",
          "tc+p1+l2", "tc+p1+l3", "tc+p1+pn+l2", "tc+p1+s", "tc+p1+l2+s")


def table(fit_codes, eval_codes, iterations, models=MODELS, selected=()):
  """Rows (model, contexts, [saving % at k = 1..T])."""
  raw = sum(b.size for b in eval_codes) / iterations  # bits per iteration
  rows = []
  for name in models:
    prob = fit(fit_codes, name, iterations)
    spent = np.cumsum(code_lengths(eval_codes, name, prob))
    coded = raw * np.arange(1, iterations + 1)
    rows.append((name, context_size(name, iterations),
                 100.0 * (1.0 - spent / coded)))
  for parents in selected:
    spent = np.cumsum(selected_lengths(fit_codes, eval_codes, iterations,
                                       parents))
    rows.append((f"sel{parents}", iterations * 32 * 2 ** parents,
                 100.0 * (1.0 - spent / coded)))
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--snapshot", default="campaigns/baselines/goog")
  parser.add_argument("--fit_dir", default="/work/shared/data/train400")
  parser.add_argument("--eval_dir", default="/work/shared/data/bsd68")
  parser.add_argument("--iterations", type=int, default=goog.MAX_ITERATIONS)
  parser.add_argument("--max_images", type=int, default=None,
                      help="use only the first this-many images per folder")
  parser.add_argument("--kodak_k", type=int, default=3)
  parser.add_argument("--selected", default="4,6,8",
                      help="parent counts of the selected-parents models")
  parser.add_argument("--cache", default=None,
                      help="an .npz of the codes: read if present, else "
                      "written")
  args = parser.parse_args(argv)
  fit_codes, eval_codes, step = _codes(args)
  rows = table(fit_codes, eval_codes, args.iterations,
               selected=[int(n) for n in args.selected.split(",") if n])
  print(f"GOOG snapshot {args.snapshot}, step {step}: saving (%) against "
        f"raw bits, fitted on {len(fit_codes)} images of {args.fit_dir}, "
        f"measured on {len(eval_codes)} of {args.eval_dir}")
  ks = range(1, args.iterations + 1)
  print("| model | contexts | " + " | ".join(f"k={k}" for k in ks) + " |")
  print("|---|---|" + "---|" * args.iterations)
  for name, size, saving in rows:
    print(f"| {name} | {size:,} | "
          + " | ".join(f"{s:.1f}" for s in saving) + " |")
  k = args.kodak_k
  raw = goog.GoogCodec.bpp((512, 768), k, len("goog"))
  print(f"\nbpp of a 768 x 512 image at k = {k}: raw bits {raw:.4f}; "
        + "; ".join(f"{name} {_kodak_bpp(k, saving[k - 1]):.4f}"
                    for name, _, saving in rows))
  return 0


def _kodak_bpp(k, saving_percent):
  """bpp of an entropy-coded 768 x 512 file of k iterations."""
  payload = k * (4 + goog.code_bytes((512, 768)) * (1 - saving_percent / 100))
  return 8.0 * (container.header_bytes("goog", b"k1") + payload) / (512 * 768)


def _codes(args):
  """(fit codes, eval codes, step), from the cache or the snapshot."""
  if args.cache and os.path.isfile(args.cache):
    data = np.load(args.cache)
    n_fit = int(data["n_fit"])
    codes = [data[f"c{i}"] for i in range(int(data["n"]))]
    return codes[:n_fit], codes[n_fit:], int(data["step"])
  model, step = load_snapshot(args.snapshot)
  fit_codes = folder_codes(model, args.fit_dir, args.iterations,
                           args.max_images)
  eval_codes = folder_codes(model, args.eval_dir, args.iterations,
                            args.max_images)
  if args.cache:
    all_codes = fit_codes + eval_codes
    np.savez_compressed(args.cache, n=len(all_codes), n_fit=len(fit_codes),
                        step=step, **{f"c{i}": c
                                      for i, c in enumerate(all_codes)})
  return fit_codes, eval_codes, step


if __name__ == "__main__":
  sys.exit(main())
