"""A compiled (numba) LSTM step for the NumPy runtime: same bits, how fast?

Issue 16's last speed target is `refine` <= 1.25x its bare needed matrix
products; the NumPy runtime's elementwise passes between the products are
what is left (`numpy_step_profile.py`). This trial, not shipped, replaces
the passes of `numpy_serving._Decoder._lstm_bf16` by three numba kernels per
step that do the same float32 operations in the same order, element by
element, in one sweep each (the rounding of s V by splitting and the shift
by e + b written gate-major; the gate update; the cell's tanh, o and the
bfloat16 rounding of s), and keeps NumPy's own `np.exp` passes between
them, so the bits stay the runtime's (checked below, on a chunk and on the
whole image). numba compiles with ``error_model="numpy"`` (no
division-by-zero branch, so the loops vectorise) and without fastmath (no
reordering, no fused multiply-adds).

numba is not a dependency of tf_hbd: install it apart, e.g.
``python -m pip install --target DIR numba`` and run with PYTHONPATH=DIR.
With NUMBA_CACHE_DIR set, the kernels are cached there (run twice to see
a later process's first call).

Prints numba's import and compile times, then CPU times (alternating, one
process) of one chunk (`numpy_serving.CHUNK` blocks) through the runtime and
through the trial against the chunk's products, and of the whole refine of
the 768 x 512 JPEG of `enhance_speed.py` against its bare needed products
(`enhance_speed.child_ratio_numpy`'s definition). Run with
OPENBLAS_NUM_THREADS=1 for CPU times without thread spinning.

Usage:
  PYTHONPATH=DIR .venv/bin/python benchmarks/numba_step.py [--image PNG] [--repeats 60] [--check_bits]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=g-import-not-at-top,wrong-import-position
import enhance_speed
import numpy_step_profile
from tf_hbd.codecs import legacy as codecs
from tf_hbd.inference import numpy_serving as ns

_START = time.perf_counter()
try:
  import numba
except ImportError:
  sys.exit("numba_step.py: numba is not installed; install it apart "
           "(python -m pip install --target DIR numba) and set PYTHONPATH=DIR")
_IMPORT_S = time.perf_counter() - _START
# pylint: enable=g-import-not-at-top,wrong-import-position

_F32 = np.float32
# Compiled code is cached on disk only when NUMBA_CACHE_DIR is set (the
# first-call cost of a second process is then the cache's load time).
_JIT = numba.njit(error_model="numpy",
                  cache=bool(os.environ.get("NUMBA_CACHE_DIR")))


@_JIT
def shift_(prod, eb, pre, first_gate, n):
  """pre[g] = bf16(s V) (by splitting, `numpy_serving._bf16_split`) + (e + b),
  gate-major, for the gates g >= first_gate."""
  for r in range(eb.shape[0]):
    for g in range(first_gate, 4):
      a, e, out = prod[r, g * n:(g + 1) * n], eb[r, g * n:(g + 1) * n], pre[g, r]
      for j in range(n):
        x = a[j]
        t = x * _F32(65537.0)
        x2 = t - x
        out[j] = (t - x2) + e[j]


@_JIT
def update_(pre, c, s, first):
  """`numpy_serving._lstm_update_` up to the cell's exp: pre holds exp of the
  scaled pre-activations; c updated, s = -2 c."""
  for r in range(c.shape[0]):
    for j in range(c.shape[1]):
      g = _F32(2.0) / (pre[2, r, j] + _F32(1.0))
      g = g - _F32(1.0)
      g = g / (pre[1, r, j] + _F32(1.0))
      if not first:
        g = c[r, j] / (pre[0, r, j] + _F32(1.0)) + g
      c[r, j] = g
      s[r, j] = g * _F32(-2.0)


@_JIT
def finish_(pre, s, s_bits, bf_bits):
  """s holds exp(-2 c): s = tanh(c) / d_o, and its bfloat16 rounding
  (`numpy_serving._bf16_into`) into bf_bits."""
  for r in range(s.shape[0]):
    for j in range(s.shape[1]):
      t = _F32(2.0) / (s[r, j] + _F32(1.0))
      s[r, j] = (t - _F32(1.0)) / (pre[3, r, j] + _F32(1.0))
  for r in range(s.shape[0]):
    for j in range(s.shape[1]):
      x = s_bits[r, j]
      bf_bits[r, j] = ((((x >> np.uint32(16)) & np.uint32(1))
                        + np.uint32(0x7FFF) + x) & np.uint32(0xFFFF0000))


def lstm_bf16(dec, e, k):
  """`dec._lstm_bf16(e, k)` with the trial's kernels (its own buffers)."""
  # pylint: disable=protected-access
  n, rows, v = dec.n, e.shape[0], dec._lstm_vb[0]
  eb, prod, _, pre, s, s_bf, c = dec._buffers(rows)
  dec._scaled_eb(e, eb)
  if not (dec._split_ok and np.abs(eb).min() >= ns._SPLIT_MIN_SHIFT):
    return dec._lstm_bf16(e, k)  # the runtime's integer rounding case
  with np.errstate(over="ignore", under="ignore"):
    for step in range(k):
      first_gate = 1 if step == 0 else 0
      if step == 0:
        pre[1:] = eb.reshape(rows, 4, n).transpose(1, 0, 2)[1:]
      else:
        np.matmul(s_bf, v, out=prod)
        shift_(prod, eb, pre, first_gate, n)
      np.exp(pre[first_gate:], out=pre[first_gate:])
      update_(pre, c, s, step == 0)
      np.exp(s, out=s)
      finish_(pre, s, s.view(np.uint32), s_bf.view(np.uint32))
  return s


class NumbaDecoder:
  """A runtime `_Decoder` whose bfloat16 LSTM steps are `lstm_bf16`."""

  def __init__(self, dec):
    self._dec = dec

  def __getattr__(self, name):
    return getattr(self._dec, name)

  def predict_last(self, x, position, k, setting_row=None):
    dec = self._dec
    s = lstm_bf16(dec, dec.embed(x, position, setting_row), k)
    p = dec._mm(s, dec.U)  # pylint: disable=protected-access
    p += dec.c
    p += x.reshape(-1, 9, dec.d * dec.d)[np.arange(x.shape[0]), position]
    return p


def _cpu_medians(fns, repeats):
  """{name: median CPU seconds} of `fns`, warm, alternating."""
  for fn in fns.values():
    fn()
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.process_time()
      fn()
      times[name].append(time.process_time() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def _print(title, cpu, base):
  print(title)
  for name, t in cpu.items():
    print(f"  {name:<24} {t * 1e3:8.2f} ms CPU  {t / cpu[base]:.3f}x "
          f"the products")


def chunk_figures(dec, k, chunk_inputs, repeats):
  """The chunk through the runtime and the trial, bits and CPU times."""
  x, pos, setting_row = chunk_inputs
  trial = NumbaDecoder(dec)
  start = time.perf_counter()
  got = trial.predict_last(x, pos, k, setting_row)
  compile_s = time.perf_counter() - start
  want = dec.predict_last(x, pos, k, setting_row)
  np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
  print(f"numba {numba.__version__}: import {_IMPORT_S:.2f} s, first call "
        f"(compilation) {compile_s:.2f} s; chunk bits equal to the runtime's")
  v, n = dec.w["cell.V"], dec.n

  def products():
    s = x @ dec.W
    for _ in range(k - 1):
      s = (s @ v)[:, :n]
    return s @ dec.U

  cpu = _cpu_medians({
      "runtime": lambda: dec.predict_last(x, pos, k, setting_row),
      "trial (numba)": lambda: trial.predict_last(x, pos, k, setting_row),
      "products": products}, repeats)
  _print(f"one chunk of {x.shape[0]} blocks, median of {repeats}:", cpu,
         "products")


def refine_figures(image, repeats):
  """Whole refines, runtime vs trial, against the bare needed products."""
  with tempfile.TemporaryDirectory() as tmp:
    jpg, _ = enhance_speed.make_input(image, tmp)
    with open(jpg, "rb") as f:
      gray = codecs.decode(f.read())
    runtime = ns.load_pretrained("jpeg", "numpy")
    setting = runtime.setting_for(None, jpg, gray.shape)
  trial = ns.load_pretrained("jpeg", "numpy")
  trial._decoder = NumbaDecoder(trial._decoder)  # pylint: disable=protected-access
  want, got = (m.refine(gray, setting=setting) for m in (runtime, trial))
  np.testing.assert_array_equal(got, want)
  dec, k = runtime._decoder, int(runtime.spec["K"])  # pylint: disable=protected-access
  blocks = (-(-gray.shape[0] // dec.d)) * (-(-gray.shape[1] // dec.d))
  rng = np.random.default_rng(0)
  xs = [rng.uniform(0, 1, (min(ns.CHUNK, blocks - s), dec.W.shape[0])).astype(
      _F32) for s in range(0, blocks, ns.CHUNK)]

  def products():
    for x in xs:
      s = x @ dec.W
      for _ in range(k - 1):
        s = (s @ dec.w["cell.V"])[:, :dec.n]
      out = s @ dec.U
    return out

  cpu = _cpu_medians({
      "runtime refine": lambda: runtime.refine(gray, setting=setting),
      "trial refine (numba)": lambda: trial.refine(gray, setting=setting),
      "bare needed products": products}, max(3, repeats // 10))
  _print(f"whole refine ({blocks} blocks, outputs equal), median of "
         f"{max(3, repeats // 10)}:", cpu, "bare needed products")


def check_bits(kodak_dir):
  """Refines of both shipped decoders through the runtime and the trial
  (3 Kodak images, 2 settings, K = 2/4/6); prints how many are equal."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
  equal = total = 0
  for codec, settings in (("jpeg", ({"quality": 10}, {"quality": 30})),
                          ("jp2", ({"bpp": 0.25}, {"bpp": 1.0}))):
    runtime = ns.load_pretrained(codec, "numpy")
    trial = ns.load_pretrained(codec, "numpy")
    trial._decoder = NumbaDecoder(trial._decoder)  # pylint: disable=protected-access
    for name in ("kodim05", "kodim13", "kodim20"):
      img = np.asarray(Image.open(os.path.join(kodak_dir, name + ".png"))
                       .convert("L"))
      for kwargs in settings:
        decoded, enc = codecs.roundtrip(img, codec, **kwargs)
        setting = codec_setting.features(enc.data, codec, img.shape)
        for k in (2, 4, 6):
          total += 1
          equal += int(np.array_equal(
              runtime.refine(decoded, K=k, setting=setting),
              trial.refine(decoded, K=k, setting=setting)))
  print(f"{equal} of {total} refines bit-identical (JPEG q 10/30, JPEG "
        "2000 0.25/1 bpp, K 2/4/6)")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=enhance_speed.DEFAULT_IMAGE)
  parser.add_argument("--repeats", type=int, default=60)
  parser.add_argument("--check_bits", action="store_true",
                      help="also compare 36 refines of both shipped "
                           "decoders on Kodak images beside --image")
  args = parser.parse_args(argv)
  dec, k, source, chunk_inputs = numpy_step_profile.shipped_chunk(args.image)
  print(f"{source}, JPEG q=20, shipped JPEG decoder; OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}; load average "
        f"{os.getloadavg()[0]:.1f}")
  chunk_figures(dec, k, chunk_inputs, args.repeats)
  refine_figures(args.image, args.repeats)
  if args.check_bits:
    check_bits(os.path.dirname(os.path.abspath(args.image)))
  print(f"load average at the end {os.getloadavg()[0]:.1f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
