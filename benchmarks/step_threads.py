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

With --trace it instead records, for --repeats chunks with two step
threads (pinned and unpinned workers, `numpy_serving.PIN_STEP_THREADS`;
and unpinned without taking ranges back, as the runtime ran before),
where and when each step's two row ranges run: how often the second ran in
the calling thread (taken back, its worker not started), how often the two
started on the same CPU, how much of the first range's time the second
overlapped (median) and how long after the first it started (median).

Usage:
  .venv/bin/python benchmarks/step_threads.py [--image PNG] [--repeats 200]
      [--trace]
"""

import argparse
import concurrent.futures
import contextlib
import os
import statistics
import sys
import threading
import time
from unittest import mock

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


def trace(dec, run, repeats, pin, take_back=True):
  """Runs `run` (one chunk) `repeats` times with two step threads and
  prints where and when each step's two row ranges ran."""
  # pylint: disable=protected-access
  real, caller, log = dec._lstm_rows_, threading.get_ident(), []

  def rows(bufs, a, b, *rest):
    t, cpu = time.perf_counter(), ns._current_cpu()
    out = real(bufs, a, b, *rest)
    log.append((a, cpu, t, time.perf_counter(),
                threading.get_ident() == caller))
    return out

  ns.STEP_THREADS, ns.PIN_STEP_THREADS = 2, pin
  dec._lstm_rows_ = rows
  keep = mock.patch.object(concurrent.futures.Future, "cancel",
                           return_value=False)
  try:
    with keep if not take_back else contextlib.nullcontext():
      for _ in range(repeats):
        run()
  finally:
    del dec._lstm_rows_  # back to the method
  first = sorted((r for r in log if r[0] == 0), key=lambda r: r[2])
  second = sorted((r for r in log if r[0] > 0), key=lambda r: r[2])
  pairs = list(zip(first, second))
  overlap = [max(0.0, min(f[3], g[3]) - max(f[2], g[2])) / (f[3] - f[2])
             for f, g in pairs]
  n = len(pairs)
  back = sum(g[4] for _, g in pairs) / n
  same = sum(f[1] == g[1] for f, g in pairs) / n
  took = statistics.median(f[3] - f[2] for f in first)
  lag = statistics.median(g[2] - f[2] for f, g in pairs)
  what = ("pinned" if pin else "unpinned") + ("" if take_back else
                                               ", nothing taken back")
  print(f"  {what}, {n} steps: second "
        f"range taken back {back:.2f}, same CPU at the start {same:.2f}, "
        f"overlap {statistics.median(overlap):.2f} of the first range's "
        f"{took * 1e3:.3f} ms, second starting {lag * 1e3:.3f} ms after the "
        "first (medians)")
  # pylint: enable=protected-access


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=enhance_speed.DEFAULT_IMAGE)
  parser.add_argument("--repeats", type=int, default=200)
  parser.add_argument("--trace", action="store_true")
  args = parser.parse_args(argv)
  dec, k, source, (x, pos, setting_row) = numpy_step_profile.shipped_chunk(
      args.image)
  if args.trace:
    print(f"{source}: one chunk of {x.shape[0]} blocks, K={k}; load average "
          f"{os.getloadavg()[0]:.1f}")
    for pin, take_back in ((True, True), (False, True), (False, False)):
      trace(dec, lambda: dec.predict_last(x, pos, k, setting_row),
            args.repeats, pin, take_back)
    return 0
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
