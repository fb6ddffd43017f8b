"""The project's train step as a fraction of the bare matrix-product roofline.

For each learning algorithm and precision, one compiled training step of the
real code (`tf_hbd.training.algorithms` + the `tf_hbd.training.trainer.Trainer` update: clip,
Adam) on a batch of real-shaped blocks is timed, and in the same process the
bare matrix products that step cannot avoid are timed in one compiled
function in the same dtype:

* forward: e = x W (B x 576 x m), K recurrences s V (B x n x 4n), K readouts
  s U (B x n x 64);
* backward: two products of the same sizes per forward product (gradient
  with respect to the input and to the weight).

fraction = bare products / step (1.0 would mean the step is nothing but its
matrix products). Timings alternate between the step and the products so a
shared machine's load hits both alike; medians are printed with the load
average at the start, because the machine is shared.

  .venv/bin/python benchmarks/train_step.py --units=512 --algos=bptt,sab,uoro
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_hbd.training import algorithms  # pylint: disable=g-import-not-at-top
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.training import trainer as training


def _batch(b, d, setting, rng):
  out = {"context": tf.constant(rng.uniform(0, 1, (b, 9, d, d)), tf.float32),
         "position": tf.constant(np.full(b, 4), tf.int32),
         "target": tf.constant(rng.uniform(0, 1, (b, d, d)), tf.float32)}
  if setting:
    out["setting"] = tf.constant(rng.uniform(0, 1, (b, setting)), tf.float32)
  return out


def _products(b, d, n, k, dtype, rng):
  """A compiled function doing the step's unavoidable matrix products."""
  m = n  # tied LSTM: e has n entries
  mats = {
      "x": (b, 9 * d * d), "w": (9 * d * d, m), "s": (b, n), "v": (n, 4 * n),
      "u": (n, d * d), "gz": (b, 4 * n), "gp": (b, d * d)}
  t = {key: tf.constant(rng.uniform(-0.1, 0.1, shape), dtype)
       for key, shape in mats.items()}

  @tf.function
  def run():
    acc = tf.zeros([], dtype)
    e = t["x"] @ t["w"]                                     # forward embed
    acc += e[0, 0]
    acc += (tf.transpose(t["x"]) @ t["s"])[0, 0]            # dW
    for _ in range(k):
      z = t["s"] @ t["v"]                                   # forward rec.
      p = t["s"] @ t["u"]                                   # forward readout
      ds = t["gz"] @ tf.transpose(t["v"])                   # d s_{k-1}
      dv = tf.transpose(t["s"]) @ t["gz"]                   # dV
      dsu = t["gp"] @ tf.transpose(t["u"])                  # d s (readout)
      du = tf.transpose(t["s"]) @ t["gp"]                   # dU
      acc += z[0, 0] + p[0, 0] + ds[0, 0] + dv[0, 0] + dsu[0, 0] + du[0, 0]
    return acc

  return run


def _step(algo_name, n, k, b, d, precision, setting, rng):
  model = decoder_lib.build_decoder(
      "lstm", units=n, patch_size=d, K=k, boundary="replicate",
      center_inputs=True, setting_size=setting,
      matmul_dtype=None if precision == "float32" else precision)
  algo = algorithms.make_algorithm(algo_name, model, K=k, alpha=1.0)
  opt = training.make_optimizer("adam", 1e-4)
  opt.build(algo.variables)

  def apply(grads):
    grads = [tf.zeros_like(v) if g is None else tf.cast(g, v.dtype)
             for g, v in zip(grads, algo.variables)]
    grads, _ = tf.clip_by_global_norm(grads, 13.0)
    opt.apply_gradients(zip(grads, algo.variables))

  step = tf.function(lambda batch: algo.train_step(batch, apply))
  batch = _batch(b, d, setting, rng)
  return lambda: step(batch)["loss"].numpy()


def interleaved_medians(fns, repeats):
  """Median seconds of each of `fns`, called in turn (two warm-up calls each)."""
  for fn in fns:
    fn()
    fn()
  out = [[] for _ in fns]
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      t0 = time.perf_counter()
      fn()
      out[i].append(time.perf_counter() - t0)
  return [statistics.median(x) for x in out]


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--units", type=int, default=512)
  p.add_argument("--K", type=int, default=4)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--algos", default="bptt,sab,uoro")
  p.add_argument("--precisions", default="float32,bfloat16")
  p.add_argument("--setting", type=int, default=64,
                 help="setting input size (0: none)")
  p.add_argument("--repeats", type=int, default=15)
  args = p.parse_args(argv)
  rng = np.random.default_rng(0)
  n, k, b, d = args.units, args.K, args.batch_size, 8
  print(f"LSTM-{n} (tied), K={k}, batch {b}, d={d}, setting {args.setting}; "
        f"load average at start {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} cores")
  print(f"{'algo':6s} {'precision':9s} {'step ms':>8s} {'products ms':>11s} "
        f"{'fraction':>8s} {'blocks/s':>9s}")
  base = {}
  for precision in args.precisions.split(","):
    dtype = tf.float32 if precision == "float32" else tf.bfloat16
    products = _products(b, d, n, k, dtype, rng)
    for algo in args.algos.split(","):
      step = _step(algo, n, k, b, d, precision, args.setting, rng)
      t_step, t_mm = interleaved_medians([step, products], args.repeats)
      base.setdefault(algo, t_step)
      print(f"{algo:6s} {precision:9s} {1e3 * t_step:8.1f} {1e3 * t_mm:11.1f} "
            f"{t_mm / t_step:8.2f} {b / t_step:9.0f}"
            f"  ({base[algo] / t_step:.2f}x the first precision)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
