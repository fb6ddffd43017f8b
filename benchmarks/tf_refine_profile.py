"""What the TensorFlow runtime's `refine` adds around its bfloat16 products.

Issue 16's last speed target is `refine` <= 1.25x the bare matrix products
it needs (`benchmarks/enhance_speed.py`). The TensorFlow runtime (the
shipped JPEG decoder's SavedModel, `hbd enhance --runtime tf`) is at ~2.5x
on a CPU with AVX512-BF16, where oneDNN's bfloat16 products are fast. This
script, on the 768 x 512 gray JPEG of `enhance_speed.py` (kodim01, q=20):

1. profiles the export's warm ``refine`` signature (`tf.profiler`, three
   calls) and sums the kernels' time over TensorFlow's inter-op threads
   into: the bfloat16
   products of the K steps; the steps' elementwise work (casts, the tiling
   and split of the tied input, the gates in float32); per batch of blocks
   the embedding's and readout's products and the rest (casts, gathers,
   guard); and the image-level work (patching, JPEG projection, uint8
   conversion);
2. times, alternating, warm refines against the bare needed bfloat16
   products in TensorFlow (x W once, s V K - 1 times, s U once, in
   batches of 4096 blocks, as `enhance_speed.py`) of the SavedModel and of
   a trial runtime that is not shipped: the NumPy runtime's pipeline with its
   decoder replaced by a `tf.function` (oneDNN bfloat16 products, each
   step's elementwise work fused by XLA into one kernel, `jit_compile`;
   4096 blocks per call, as the export), which is what a TensorFlow
   runtime without the SavedModel's unfused graph could reach. Pixel
   differences between these two and the NumPy runtime are printed (the
   tests' bound for NumPy vs TF: 1 level, 0.2 % of pixels; NumPy's own
   ratio is `enhance_speed.py`'s, in a process without TensorFlow, whose
   threads slow OpenBLAS down);
3. times the trial's fused gate kernels alone against the products s V
   they sit between (one batch): the elementwise floor of any fused step;
   also with the gates' arithmetic in bfloat16 instead of float32.

Usage:
  .venv/bin/python benchmarks/tf_refine_profile.py [--image PNG] [--repeats 9]
"""

import argparse
import collections
import glob
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enhance_speed
import matmul_floor
from tf_hbd.codecs import legacy as codecs
from tf_hbd.inference import numpy_serving as ns
from tf_hbd.inference import serving
# pylint: enable=g-import-not-at-top,wrong-import-position

TF_BATCH = 4096  # the export's blocks per model call
CATEGORIES = ("K steps: bf16 products", "K steps: elementwise",
              "per batch: embedding and readout products",
              "per batch: other (casts, gathers, guard)",
              "per image: patching, projection, uint8")


def _category(op_name):
  """The `CATEGORIES` entry of a kernel event ("scope/.../name:Type")."""
  scope, kind = op_name.rsplit(":", 1)
  if scope.count("while/") >= 3:  # the K-step loop inside the batch loop
    return CATEGORIES[0] if "MatMul" in kind else CATEGORIES[1]
  if "while/" in scope:
    return CATEGORIES[2] if "MatMul" in kind else CATEGORIES[3]
  return CATEGORIES[4]


def profile_refine(model, gray, jpg, calls=3):
  """Kernel ms per call of the export's `refine` (summed over the
  inter-op threads a kernel runs on), by `CATEGORIES`."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  for _ in range(2):
    model.refine(gray, source=jpg)
  with tempfile.TemporaryDirectory() as logdir:
    tf.profiler.experimental.start(logdir)
    for _ in range(calls):
      model.refine(gray, source=jpg)
    tf.profiler.experimental.stop()
    path = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"),
                     recursive=True)[0]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
      space.ParseFromString(f.read())
  ms = collections.Counter()
  for plane in space.planes:
    names = {k: v.name for k, v in plane.event_metadata.items()}
    for line in plane.lines:
      if not line.name.startswith("tf_Compute"):
        continue
      for event in line.events:
        name = names.get(event.metadata_id, "")
        if ":" in name and "/" in name:  # a kernel, not executor bookkeeping
          ms[_category(name)] += event.duration_ps / 1e9 / calls
  return ms


def _bf16_weights(dec):
  """The NumPy decoder's bfloat16-valued weights as TF bfloat16 tensors."""
  bf16 = tf.bfloat16
  return (tf.constant(dec.W, bf16), tf.constant(dec.w["cell.V"], bf16),
          tf.constant(dec.U, bf16))


def _fused_gates(n, b, dtype=tf.float32):
  """One LSTM step's elementwise work as one XLA kernel: (bfloat16 s V or
  None at the first step, e, c) -> (bfloat16 s, float32 c); b and the tied
  e are broadcast to the four gates inside the kernel (a tiled (rows, 4n)
  e + b read from memory costs about as much again). `dtype`: the gates'
  arithmetic (the model's is float32)."""

  @tf.function(autograph=False, jit_compile=True)
  def gates(prod, e, c):
    pre = tf.cast(b, dtype)
    if prod is not None:
      pre = tf.cast(prod, dtype) + pre
    pre = tf.reshape(pre, [-1, 4, n]) + tf.cast(e, dtype)[:, None, :]
    zf, zi, zc, zo = tf.unstack(pre, axis=1)
    i, c_tilde = tf.sigmoid(zi), tf.tanh(zc)
    c = (i * c_tilde if prod is None
         else tf.sigmoid(zf) * tf.cast(c, dtype) + i * c_tilde)
    return (tf.cast(tf.sigmoid(zo) * tf.tanh(c), tf.bfloat16),
            tf.cast(c, tf.float32))
  return gates


class FusedTFDecoder:
  """`numpy_serving._Decoder.predict_last` of a tied bfloat16 LSTM decoder
  (centred input, position and setting embedding, residual readout: the
  shipped decoders) as a `tf.function` per K with a fixed input signature:
  bfloat16 products by oneDNN, each step's gates by `_fused_gates`."""

  def __init__(self, dec):
    self.S, self.n, self._dd = dec.S, dec.n, dec.d * dec.d
    self._w, self._v, self._u = _bf16_weights(dec)
    self._b, self._p, self._c = (tf.constant(dec.w["cell.b"]),
                                 tf.constant(dec.P), tf.constant(dec.c))
    self._gates, self._fns = _fused_gates(self.n, self._b), {}
    self.cpu = 0.0  # CPU seconds spent in predict_last

  def _make(self, k):
    spec = [tf.TensorSpec([None, 9 * self._dd], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([1, self.n], tf.float32)]

    @tf.function(autograph=False, input_signature=spec)
    def predict_last(x, position, setting_row):
      e = tf.cast(tf.matmul(tf.cast(x - 0.5, tf.bfloat16), self._w),
                  tf.float32) + tf.gather(self._p, position) + setting_row
      s, c = self._gates(None, e, None)
      for _ in range(k - 1):
        s, c = self._gates(tf.matmul(s, self._v), e, c)
      p = tf.cast(tf.matmul(s, self._u), tf.float32) + self._c
      return p + tf.gather(tf.reshape(x, [-1, 9, self._dd]), position,
                           axis=1, batch_dims=1)
    return predict_last

  def predict_last(self, x, position, k, setting_row):
    if k not in self._fns:
      self._fns[k] = self._make(k)
    start = time.process_time()
    try:
      return self._fns[k](x, position.astype(np.int32),
                          np.asarray(setting_row, np.float32)).numpy()
    finally:
      self.cpu += time.process_time() - start


def tf_products(dec, blocks, k):
  """`enhance_speed.child_ratio_tf`'s bare needed bfloat16 products."""
  w, v, u = _bf16_weights(dec)
  rng = np.random.default_rng(0)
  xs = [tf.cast(rng.uniform(0, 1, (min(TF_BATCH, blocks - s),
                                   w.shape[0])), tf.bfloat16)
        for s in range(0, blocks, TF_BATCH)]
  return matmul_floor.products(xs, w, v, u, k - 1)


def _alternate(fns, repeats):
  """{name: ([wall s], [CPU s])} of `fns`, warm, alternating."""
  for fn in fns.values():
    fn()
  out = {name: ([], []) for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t, c = time.perf_counter(), time.process_time()
      fn()
      out[name][0].append(time.perf_counter() - t)
      out[name][1].append(time.process_time() - c)
  return out


def gates_floor(dec, k, repeats):
  """Prints, for one batch of `TF_BATCH` blocks, the K fused gate kernels
  alone (float32 as the model, and in bfloat16) against the K - 1
  bfloat16 products s V they sit between."""
  _, v, _ = _bf16_weights(dec)
  b = tf.constant(dec.w["cell.b"])
  gates = {"float32": _fused_gates(dec.n, b),
           "bfloat16": _fused_gates(dec.n, b, tf.bfloat16)}
  rng = np.random.default_rng(0)
  s = tf.cast(rng.uniform(-1, 1, (TF_BATCH, dec.n)), tf.bfloat16)
  prod = tf.matmul(s, v)
  e = tf.constant(rng.normal(0, 1, (TF_BATCH, dec.n)), tf.float32)

  def all_gates(fn):
    out = fn(None, e, None)
    for _ in range(k - 1):
      out = fn(prod, e, out[1])
    return out[0].numpy()

  def products():
    return [tf.matmul(s, v) for _ in range(k - 1)][-1].numpy()

  got = {name: all_gates(fn) for name, fn in gates.items()}
  times = _alternate({"float32": lambda: all_gates(gates["float32"]),
                      "bfloat16": lambda: all_gates(gates["bfloat16"]),
                      "products": products}, repeats)
  pw, pc = (statistics.median(t) for t in times["products"])
  print(f"3. one batch of {TF_BATCH} blocks, {k - 1} products s V "
        f"{pw * 1e3:.0f} ms; {k} fused gate kernels:")
  for name in gates:
    gw, gc = (statistics.median(t) for t in times[name])
    print(f"  {name:<8} gates {gw * 1e3:4.0f} ms: {gw / pw:.2f} (wall), "
          f"{gc / pc:.2f} (CPU) of the products")
  print(f"  bfloat16 gates change {100 * np.mean(got['float32'] != got['bfloat16']):.1f}"
        f" % of the state's entries after K steps")


def _diff(a, b):
  d = np.abs(a.astype(np.int32) - b.astype(np.int32))
  return f"max {d.max()} level(s), {100 * np.mean(d > 0):.3f} % of pixels"


def runtimes(gray, jpg, tf_model, repeats):
  """Prints warm refines against their runtime's bare needed products."""
  np_model = ns.load_pretrained("jpeg", "numpy")
  dec, k = np_model._decoder, int(np_model.spec["K"])  # pylint: disable=protected-access
  blocks = (-(-gray.shape[0] // dec.d)) * (-(-gray.shape[1] // dec.d))
  fused = ns.load_pretrained("jpeg", "numpy")
  fused._decoder = FusedTFDecoder(dec)  # pylint: disable=protected-access

  def fused_refine():
    chunk, ns.CHUNK = ns.CHUNK, TF_BATCH
    try:
      return fused.refine(gray, source=jpg)
    finally:
      ns.CHUNK = chunk

  t = time.perf_counter()
  outs = {"fused": fused_refine()}
  print(f"  trial runtime's first refine (tracing, XLA compilation): "
        f"{time.perf_counter() - t:.2f} s")
  outs["tf"] = tf_model.refine(gray, source=jpg)
  outs["numpy"] = np_model.refine(gray, source=jpg)
  for a, b in (("tf", "numpy"), ("fused", "tf"), ("fused", "numpy")):
    print(f"  pixels, {a} vs {b}: {_diff(outs[a], outs[b])}")
  times = _alternate({
      "tf": lambda: tf_model.refine(gray, source=jpg),
      "fused": fused_refine,
      "tf products": tf_products(dec, blocks, k)}, repeats)
  _print_ratios(times, blocks, k)
  decoder = fused._decoder  # pylint: disable=protected-access
  decoder.cpu, cpu = 0.0, time.process_time()
  for _ in range(repeats):
    fused_refine()
  cpu = (time.process_time() - cpu) / repeats
  products = statistics.median(times["tf products"][1])
  print(f"  trial's CPU time per refine {cpu * 1e3:.0f} ms: in the TF "
        f"decoder {decoder.cpu / repeats * 1e3:.0f} ms, around it (NumPy "
        f"pipeline) {(cpu - decoder.cpu / repeats) * 1e3:.0f} ms = "
        f"{(cpu - decoder.cpu / repeats) / products:.2f}x the products' "
        f"CPU time")
  gates_floor(dec, k, repeats)


def _print_ratios(times, blocks, k):
  labels = {"tf": "SavedModel (--runtime tf)",
            "fused": "trial: NumPy pipeline + fused TF decoder"}
  for name, base in (("tf", "tf products"), ("fused", "tf products")):
    (wall, cpu), (bwall, bcpu) = times[name], times[base]
    pairs = statistics.median(a / b for a, b in zip(wall, bwall))
    print(f"  {labels[name]:<42} refine {statistics.median(wall) * 1e3:6.0f}"
          f" ms vs {base} {statistics.median(bwall) * 1e3:4.0f} ms: "
          f"{statistics.median(wall) / statistics.median(bwall):.2f} "
          f"(medians), {pairs:.2f} (pairs), "
          f"{statistics.median(cpu) / statistics.median(bcpu):.2f} (CPU)")
  print(f"  ({blocks} blocks, K = {k}: x W, {k - 1} x s V, s U)")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=enhance_speed.DEFAULT_IMAGE)
  parser.add_argument("--repeats", type=int, default=9)
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as tmp:
    jpg, source = enhance_speed.make_input(args.image, tmp)
    with open(jpg, "rb") as f:
      gray = codecs.decode(f.read())
    tf_model = serving.load_pretrained("jpeg")
    print(f"{source}, 768x512 gray JPEG q=20, shipped JPEG decoder; load "
          f"average {os.getloadavg()[0]:.1f}")
    ms = profile_refine(tf_model, gray, jpg)
    total = sum(ms.values())
    print(f"1. SavedModel refine, kernel time per call summed over "
          f"TensorFlow's inter-op threads (tf.profiler): {total:.0f} ms")
    for name in CATEGORIES:
      print(f"  {name:<40} {ms[name]:6.1f} ms  {100 * ms[name] / total:5.1f}"
            f" %  {ms[name] / ms[CATEGORIES[0]]:.2f}x the step products")
    print("2. warm refine / bare needed products of its runtime, alternating")
    runtimes(gray, jpg, tf_model, args.repeats)
  print(f"load average at the end {os.getloadavg()[0]:.1f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
