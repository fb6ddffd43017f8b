"""Times `tf_hbd.inference.refine.refine` against the bare matrix products it needs.

A 768 x 512 gray image (Kodak kodim01 by default, JPEG at quality 20) is
refined by an LSTM-512 decoder with d = 8 and K = 4 (untrained: the speed does
not depend on the weights). In the same run, the bare products of the same
batches are timed in one compiled function:

* embedding  x (B, 9*64) @ W (576, 512)        -- once per block
* recurrence s (B, 512) @ V (512, 2048)        -- K times
* readout    s (B, 512) @ U (512, 64)          -- once (inference keeps step K)

The two are timed alternately (refine, matmuls, refine, ...) so that a
shared machine's changing load hits both alike. The ratio refine / matmuls is
the overhead of everything else (patching,
gathering blocks, gate nonlinearities, uint8 conversion, assembly).

TensorFlow's own log lines are off unless --verbose.

Usage:
  .venv/bin/python benchmarks/refine_speed.py [--image PATH] [--repeats 9]
"""

import argparse
import os
import statistics
import sys
import time

from tf_hbd import quiet  # pylint: disable=g-import-not-at-top

quiet.quiet_tensorflow(quiet.verbose_in_argv())  # before TensorFlow

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
from tf_hbd.model import decoder
from tf_hbd.codecs import images
from tf_hbd.inference import refine

import matmul_floor  # pylint: disable=g-bad-import-order  (this folder's)

DEFAULT_IMAGE = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                             "data", "kodak", "kodim01.png")


def load(path):
  if path and os.path.exists(path):
    gray = images.load_image(path).gray
    if gray.shape[0] > gray.shape[1]:
      gray = gray.T.copy()
    return gray[:512, :768], os.path.basename(path)
  rng = np.random.default_rng(0)  # no image available: a smooth texture
  y, x = np.mgrid[0:512, 0:768]
  img = 128 + 60 * np.sin(x / 17.0) * np.cos(y / 23.0) + rng.normal(0, 8,
                                                                     (512, 768))
  return np.clip(img, 0, 255).astype(np.uint8), "synthetic"


def interleaved(fns, repeats):
  """Times each fn `repeats` times, alternating them (fair under a shared,
  fluctuating load); returns one list of seconds per fn."""
  for fn in fns:
    fn()  # warm-up (tracing)
  out = [[] for _ in fns]
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      t = time.perf_counter()
      fn()
      out[i].append(time.perf_counter() - t)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=DEFAULT_IMAGE)
  parser.add_argument("--units", type=int, default=512)
  parser.add_argument("--K", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=4096)
  parser.add_argument("--repeats", type=int, default=9)
  parser.add_argument("--verbose", action="store_true",
                      help="show TensorFlow's own log lines")
  args = parser.parse_args(argv)

  img, name = load(args.image)
  decoded, enc = codecs.roundtrip(img, "jpeg", quality=20)
  d, n, k = 8, args.units, args.K
  model = decoder.build_decoder(cell="lstm", units=n, patch_size=d, K=k)

  targets = (-(-img.shape[0] // d)) * (-(-img.shape[1] // d))
  sizes = [min(args.batch_size, targets - s)
           for s in range(0, targets, args.batch_size)]
  rng = np.random.default_rng(0)
  xs = [tf.constant(rng.uniform(0, 1, (b, 9 * d * d)), tf.float32)
        for b in sizes]
  w = tf.constant(rng.uniform(-0.05, 0.05, (9 * d * d, n)), tf.float32)
  v = tf.constant(rng.uniform(-0.05, 0.05, (n, 4 * n)), tf.float32)
  u = tf.constant(rng.uniform(-0.05, 0.05, (n, d * d)), tf.float32)
  all_products = matmul_floor.products(xs, w, v, u, k)

  def run_refine():
    return refine.refine(decoded, model, batch_size=args.batch_size)

  refine_ts, mm_ts = interleaved([run_refine, all_products], args.repeats)
  refine_t = statistics.median(refine_ts), min(refine_ts)
  mm_t = statistics.median(mm_ts), min(mm_ts)
  pair_ratio = statistics.median(a / b for a, b in zip(refine_ts, mm_ts))
  flops = 2 * targets * (9 * d * d * n + k * n * 4 * n + n * d * d)
  device = ("GPU " + tf.config.experimental.get_device_details(
      tf.config.list_physical_devices("GPU")[0]).get("device_name", "")
            if tf.config.list_physical_devices("GPU") else
            f"CPU ({os.cpu_count()} cores visible)")
  print(f"image {name} {img.shape[1]}x{img.shape[0]}, JPEG q=20 "
        f"({enc.bpp:.3f} bpp), LSTM-{n}, d={d}, K={k}, "
        f"batch {args.batch_size}, {targets} blocks, device: {device}")
  print(f"refine (median/min of {args.repeats}): {refine_t[0]*1e3:9.1f} ms /"
        f" {refine_t[1]*1e3:9.1f} ms")
  print(f"bare matmuls (same batches):  {mm_t[0]*1e3:9.1f} ms /"
        f" {mm_t[1]*1e3:9.1f} ms  ({flops/1e9:.1f} GFLOP, "
        f"{flops/mm_t[0]/1e9:.1f} GFLOP/s)")
  print(f"ratio refine / matmuls: {refine_t[0]/mm_t[0]:.2f} (medians), "
        f"{refine_t[1]/mm_t[1]:.2f} (minima), {pair_ratio:.2f} (median of "
        "back-to-back pairs)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
