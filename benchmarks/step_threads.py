"""The bfloat16 LSTM's elementwise step work on 1 or 2 threads, per chunk.

The shipped JPEG decoder refines the first chunk (`numpy_serving.CHUNK`
blocks) of the 768 x 512 gray JPEG of `benchmarks/enhance_speed.py`
(kodim01, quality 20) with `numpy_serving.STEP_THREADS` = 1 and = 2 (the
elementwise work between two products on that many threads, each on its
own rows) and runs the chunk's bare products (x W, K - 1 times s V, s U, as
`enhance_speed.py`), alternating, --repeats times. Prints each setting's
wall and CPU time over the products' (medians, median of back-to-back
pairs, CPU time, fastest run over fastest run) and checks that both give
the same bits. `refine_threads.py` times the whole refine under these and
other thread settings.

Usage:
  .venv/bin/python benchmarks/step_threads.py [--image PNG] [--repeats 200]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=g-import-not-at-top,wrong-import-position
import enhance_speed
import numpy_step_profile
from tf_hbd.inference import numpy_serving as ns
# pylint: enable=g-import-not-at-top,wrong-import-position


def runners(dec, x, pos, setting_row, k):
  """{name: fn}: the chunk with 1 and 2 step threads, and its products."""
  w, v, u, n = dec.W, dec.w["cell.V"], dec.U, dec.n

  def products():
    s = x @ w
    for _ in range(k - 1):
      s = (s @ v)[:, :n]  # a data dependency, no nonlinearity
    return s @ u

  def threads(count):
    def run():
      ns.STEP_THREADS = count
      return dec.predict_last(x, pos, k, setting_row)
    return run
  return {"1 thread": threads(1), "2 threads": threads(2),
          "products": products}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=enhance_speed.DEFAULT_IMAGE)
  parser.add_argument("--repeats", type=int, default=200)
  args = parser.parse_args(argv)
  dec, k, source, (x, pos, setting_row) = numpy_step_profile.shipped_chunk(
      args.image)
  fns = runners(dec, x, pos, setting_row, k)
  bits = [fns[name]().view(np.uint32).copy() for name in fns
          if name != "products"]
  assert np.array_equal(bits[0], bits[1]), "the thread count changed bits"
  wall = {name: [] for name in fns}
  cpu = {name: [] for name in fns}
  for _ in range(args.repeats):
    for name, fn in fns.items():
      t, c = time.perf_counter(), time.process_time()
      fn()
      wall[name].append(time.perf_counter() - t)
      cpu[name].append(time.process_time() - c)
  med = {name: statistics.median(t) for name, t in wall.items()}
  print(f"{source}, JPEG q=20; one chunk of {x.shape[0]} blocks, K={k}; "
        f"{args.repeats} alternating repeats; OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', '-')}; load average "
        f"{os.getloadavg()[0]:.1f}; products {med['products'] * 1e3:.1f} ms")
  base_cpu = statistics.median(cpu["products"])
  for name in ("1 thread", "2 threads"):
    pairs = statistics.median(a / b for a, b in zip(wall[name],
                                                    wall["products"]))
    print(f"  {name:<9} {med[name] * 1e3:7.1f} ms: / products "
          f"{med[name] / med['products']:.3f} (medians), {pairs:.3f} (pairs)"
          f", {statistics.median(cpu[name]) / base_cpu:.3f} (CPU), "
          f"{min(wall[name]) / min(wall['products']):.3f} (fastest)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
