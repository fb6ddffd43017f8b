"""Where the NumPy runtime's LSTM refine spends its time, per chunk of blocks.

The shipped JPEG decoder (tied LSTM-512, bfloat16 products, K = 4) refines
one chunk (`numpy_serving.CHUNK` blocks) of the 768 x 512 gray JPEG of
`benchmarks/enhance_speed.py` (kodim01, quality 20) with the steps of
`numpy_serving._Decoder._lstm_bf16` spelled out and each operation timed
(CPU time of the process, summed over --repeats chunks): the embedding, the
gates' (e + b), per step the state's bfloat16 rounding, the product s V,
its rounding and shift, the gates' nonlinearity pass (`np.tanh`, or
`np.exp` and + 1: `numpy_serving.GATES`, --gates), the state update
(`numpy_serving._lstm_update_tanh_` / `_lstm_update_exp_`), and the
readout. The spelled-out steps are checked to give the runtime's bits.
Matrix products are marked: their share is what the issue-16 ratio
(`enhance_speed.py`'s warm refine / bare products) would be for this chunk
without the rest of `refine` (patches, guards, projection).

Also counts the chunk's exact bfloat16 ties (`tie_counts`): the float32
products x W and s V whose low 16 bits are 0x8000, and among them those
the runtime's rounding (ties away from zero, `numpy_serving._bf16_into`)
takes to another bfloat16 than ties to even (`tf.cast`) does.

With --per_image, the whole warm `refine` of that JPEG instead, split
into the chunks' `predict_last` calls and the per-image work around them
(patches and block indices, the flat guard, the decoded image's DCT for
the coded-noise test and the projection, the projection, the uint8 image,
and the rest: each chunk's gather, scaling and guard), each part's CPU
time also as a fraction of the image's bare needed products
(`enhance_speed.numpy_products`): what it adds to the issue-16 ratio.

Run with OPENBLAS_NUM_THREADS=1 for CPU times without thread spinning.

Usage:
  .venv/bin/python benchmarks/numpy_step_profile.py [--image PNG] [--repeats 40]
      [--gates exp|tanh] [--per_image]
"""

import argparse
import collections
import os
import sys
import tempfile
import time
from unittest import mock

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=g-import-not-at-top,wrong-import-position
import enhance_speed
from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import patches as patches_lib
from tf_hbd.inference import numpy_serving as ns
# pylint: enable=g-import-not-at-top,wrong-import-position

_F32 = np.float32


def first_chunk(model, jpg):
  """(x, position, setting_row) of the JPEG's first chunk of blocks."""
  with open(jpg, "rb") as f:
    gray = codecs.decode(f.read())
  dec = model._decoder  # pylint: disable=protected-access
  grid = patches_lib.to_patches(gray, dec.d)
  rows, cols, position, _ = patches_lib.block_indices(
      grid.grid_shape, str(model.spec["boundary"]))
  setting = model.setting_for(None, jpg, gray.shape)
  rows_n = min(ns.CHUNK, rows.size)
  ctx = grid.patches[rows[:rows_n], cols[:rows_n]]
  x = np.divide(ctx.reshape(rows_n, -1), _F32(255.0), dtype=_F32)
  return x, position[:rows_n], setting[None] @ dec.S


def chunk(dec, x, pos, setting_row, k, tm):
  """One chunk through the decoder, every operation timed by `tm`;
  returns the state s_K (as `_lstm_bf16`) and the prediction."""
  # pylint: disable=protected-access
  xc = tm("embed: centre", lambda: x - _F32(0.5))
  xb = tm("embed: bf16(x)", lambda: ns._bf16_into(xc, xc))
  y = tm("matmul x W", lambda: np.matmul(xb, dec.W))
  e = tm("embed: bf16(x W)", lambda: ns._bf16_into(y, np.empty_like(y)))
  tm("embed: + P + S", lambda: np.add(e, (dec.P + setting_row)[pos], out=e))
  v, n, rows, gates = dec._lstm_vb[0], dec.n, x.shape[0], dec._gates
  eb, prod, pre, s, s_bf, c = dec._buffers(rows)
  tm("(e + b) scaled", lambda: dec._scaled_eb(e, eb))
  with np.errstate(**ns._QUIET):
    for step in range(k):
      z = eb
      if step:
        tm("bf16(s)", lambda: ns._bf16_into(s, s_bf))
        tm("matmul s V", lambda: np.matmul(s_bf, v, out=prod))
        z = tm("bf16(s V)", lambda: ns._bf16_into(prod, prod))
        tm("+ (e + b)", lambda: np.add(z, eb, out=z))
      lo = 1 if step == 0 else 0
      tm(f"gates: {ns.GATES} pass", lambda: gates.pass_(
          z.reshape(rows, 4, n).transpose(1, 0, 2)[lo:], pre[lo:]))
      tm("state update", lambda: gates.update(pre, c, s, step == 0))
  sb = tm("readout: bf16(s)", lambda: ns._bf16_into(s, np.empty_like(s)))
  p = tm("matmul s U", lambda: np.matmul(sb, dec._readout))
  p = tm("readout: rest", lambda: ns._bf16_into(p, np.empty_like(p)) + dec.c
         + x.reshape(-1, 9, dec.d * dec.d)[np.arange(rows), pos])
  # pylint: enable=protected-access
  return s.copy(), p


def _ties(y):
  """[ties, ties the two roundings take apart, size] of float32 y."""
  u = y.view(np.uint32)
  tie = (u & np.uint32(0xFFFF)) == np.uint32(0x8000)
  below_even = (u & np.uint32(0x10000)) == 0
  return np.array([np.count_nonzero(tie),
                   np.count_nonzero(tie & below_even), u.size])


def tie_counts(dec, x, pos, setting_row, k):
  """{"x W": counts, "s V": counts summed over steps 2..K} (`_ties`) of
  the chunk's float32 products before their bfloat16 rounding; the states
  from the reference steps (`_Decoder._lstm`, = `_lstm_bf16` bit for bit)."""
  # pylint: disable=protected-access
  xc = x - _F32(0.5) if dec.center else x
  counts = {"x W": _ties(np.matmul(ns._bf16_into(xc, np.empty_like(xc)),
                                   dec.W)), "s V": np.zeros(3, np.int64)}
  e = dec.embed(x, pos, setting_row)
  for step in range(1, k):
    s = dec._lstm(e.copy(), step)
    counts["s V"] += _ties(np.matmul(ns._bf16_into(s, np.empty_like(s)),
                                     dec._lstm_vb[0]))
  # pylint: enable=protected-access
  return counts


def shipped_chunk(image):
  """The shipped JPEG decoder's NumPy `_Decoder`, its K, the input's name
  and `first_chunk` of `image` as `enhance_speed.make_input` prepares it."""
  model = ns.load_pretrained("jpeg", "numpy")
  with tempfile.TemporaryDirectory() as tmp:
    jpg, source = enhance_speed.make_input(image, tmp)
    chunk_inputs = first_chunk(model, jpg)
  return (model._decoder,  # pylint: disable=protected-access
          int(model.spec["K"]), source, chunk_inputs)


# The per-image parts --per_image times: (name, owner, attribute).
PARTS = (("chunks: the decoder", ns._Decoder, "predict_inputs"),  # pylint: disable=protected-access
         ("patches", patches_lib, "to_patches"),
         ("block indices", patches_lib, "block_indices"),
         ("flat guard", ns, "_flat_blocks"),
         ("decoded DCT", ns._Constraint, "__init__"),  # pylint: disable=protected-access
         ("coded noise", ns._Constraint, "noise_rms"),  # pylint: disable=protected-access
         ("projection", ns._Constraint, "project"),  # pylint: disable=protected-access
         ("uint8 image", ns, "_image_u8"))


def _timed(times, name, fn):
  """fn, its CPU time added to times[name] (a plain function, so that it
  binds as a method where fn was one)."""
  def wrapper(*args, **kwargs):
    t = time.process_time()
    try:
      return fn(*args, **kwargs)
    finally:
      times[name] += time.process_time() - t
  return wrapper


def per_image(image, repeats):
  """Prints the warm refine's CPU time split into `PARTS` and the rest."""
  model = ns.load_pretrained("jpeg", "numpy")
  with tempfile.TemporaryDirectory() as tmp:
    jpg, source = enhance_speed.make_input(image, tmp)
    with open(jpg, "rb") as f:
      gray = codecs.decode(f.read())
    setting = model.setting_for(None, jpg, gray.shape)
  dec = model._decoder  # pylint: disable=protected-access
  blocks = int(np.prod(patches_lib.to_patches(gray, dec.d).grid_shape))
  products = enhance_speed.numpy_products(dec, blocks, int(model.spec["K"])
                                          - 1, ns.CHUNK)
  times = collections.defaultdict(float)
  patches = [mock.patch.object(owner, attr, _timed(
      times, name, getattr(owner, attr))) for name, owner, attr in PARTS]
  for p in patches:
    p.start()
  model.refine(gray, setting=setting)
  times.clear()
  for _ in range(repeats):
    t = time.process_time()
    model.refine(gray, setting=setting)
    times["refine"] += time.process_time() - t
    t = time.process_time()
    products()
    times["bare needed products"] += time.process_time() - t
  for p in patches:
    p.stop()
  bare, total = times.pop("bare needed products"), times.pop("refine")
  print(f"{source}, JPEG q=20, {blocks} blocks; warm refine, CPU ms per "
        f"image (mean of {repeats}, alternating with the bare needed "
        f"products: {bare / repeats * 1e3:.1f} ms); STEP_THREADS="
        f"{ns.STEP_THREADS}; OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}; load average "
        f"{os.getloadavg()[0]:.1f}")
  times["rest (inputs, gathers, guard, rounding)"] = total - sum(times.values())
  for name, t in times.items():
    print(f"  {name:<38} {t / repeats * 1e3:8.2f} ms  / products "
          f"{t / bare:.4f}")
  outside = total - times["chunks: the decoder"]
  print(f"  {'refine':<38} {total / repeats * 1e3:8.2f} ms  / products "
        f"{total / bare:.4f}; per-image work {outside / repeats * 1e3:.2f}"
        f" ms, / products {outside / bare:.4f}")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=enhance_speed.DEFAULT_IMAGE)
  parser.add_argument("--repeats", type=int, default=40)
  parser.add_argument("--gates", choices=sorted(ns._GATE_FORMULAS),  # pylint: disable=protected-access
                      default=ns.GATES, help="the LSTM gate formula "
                      "(default: the one this CPU gets)")
  parser.add_argument("--per_image", action="store_true",
                      help="split the whole refine, not one chunk")
  args = parser.parse_args(argv)
  ns.GATES = args.gates
  if args.per_image:
    per_image(args.image, args.repeats)
    return 0
  dec, k, source, (x, pos, setting_row) = shipped_chunk(args.image)
  want = dec.predict_last(x, pos, k, setting_row)
  times = collections.defaultdict(float)

  def tm(name, fn):
    t = time.process_time()
    out = fn()
    times[name] += time.process_time() - t
    return out

  for _ in range(args.repeats):
    _, got = chunk(dec, x, pos, setting_row, k, tm)
  np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
  total = sum(times.values())
  products = sum(t for name, t in times.items() if name.startswith("matmul"))
  print(f"{source}, JPEG q=20; one chunk of {x.shape[0]} blocks, LSTM-"
        f"{dec.n}, K={k}, GATES={ns.GATES}; CPU ms per chunk (mean of "
        f"{args.repeats}); "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '-')}"
        f"; load average {os.getloadavg()[0]:.1f}")
  for name, t in times.items():
    print(f"  {name:<18} {t / args.repeats * 1e3:8.3f} ms  "
          f"{100 * t / total:5.1f} %")
  print(f"  {'total':<18} {total / args.repeats * 1e3:8.3f} ms; products "
        f"{products / args.repeats * 1e3:.3f} ms; total / products "
        f"{total / products:.3f}")
  for name, (ties, apart, size) in tie_counts(dec, x, pos, setting_row,
                                              k).items():
    print(f"  bfloat16 ties in {name}: {ties} of {size} ({ties / size:.1e})"
          f"; rounded otherwise than to even: {apart} ({apart / size:.1e})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
