"""The NumPy runtime's warm refine with its thread settings, against the
bare products, in one process.

The shipped JPEG decoder refines the 768 x 512 gray JPEG of
`benchmarks/enhance_speed.py` (kodim01, quality 20) under each setting of
`numpy_serving` below, alternating with the bare matrix products of
`enhance_speed.numpy_products` (x W, K - 1 times s V, s U per chunk; the
K-product figure too), --repeats times, after checking that every setting
gives the same bits:

* 1 step thread:     THREADS = 1, STEP_THREADS = 1 (the default until
                     2026-12-04);
* 2 step, pinned:    STEP_THREADS = 2, PIN_STEP_THREADS, the default (the
                     second row range on a worker pinned to the CPU the
                     calling thread is not on);
* 2 step, unpinned:  STEP_THREADS = 2, an unpinned worker;

(with two step threads, a range whose worker has not started when the
calling thread is done with its own runs in the calling thread);
* 2 chunk threads:   THREADS = 2 (two chunks at once, each on one thread).

Prints, per setting, the warm refine's median and its ratio to the needed
products: medians, median of back-to-back pairs, CPU time (all threads of
the process), and against the K products. Only the wall-time ratios show
what threads buy, and only on an otherwise idle machine: under load the
second core is not there to use.

Usage:
  .venv/bin/python benchmarks/refine_threads.py [--image PNG] [--repeats 30]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# pylint: disable=g-import-not-at-top,wrong-import-position
import enhance_speed
from tf_hbd.codecs import legacy as codecs
from tf_hbd.inference import numpy_serving as ns
# pylint: enable=g-import-not-at-top,wrong-import-position

# name: (THREADS, STEP_THREADS, PIN_STEP_THREADS)
SETTINGS = {"1 step thread": (1, 1, True), "2 step, pinned": (1, 2, True),
            "2 step, unpinned": (1, 2, False), "2 chunk threads": (2, 1, True)}


def runners(image):
  """({name: fn}: the warm refine under each setting, the K - 1 and K
  products), the image's name."""
  with tempfile.TemporaryDirectory() as tmp:
    jpg, source = enhance_speed.make_input(image, tmp)
    with open(jpg, "rb") as f:
      decoded = codecs.decode(f.read())
    model = ns.load_pretrained("jpeg", "numpy")
    setting = model.setting_for(None, jpg, decoded.shape)
  dec = model._decoder  # pylint: disable=protected-access
  k = int(model.spec["K"])
  blocks = (-(-decoded.shape[0] // dec.d)) * (-(-decoded.shape[1] // dec.d))

  def refine(threads, step_threads, pin):
    def run():
      ns.THREADS, ns.STEP_THREADS, ns.PIN_STEP_THREADS = (
          threads, step_threads, pin)
      return model.refine(decoded, setting=setting)
    return run
  fns = {name: refine(*s) for name, s in SETTINGS.items()}
  fns["products"] = enhance_speed.numpy_products(dec, blocks, k - 1, ns.CHUNK)
  fns["K products"] = enhance_speed.numpy_products(dec, blocks, k, ns.CHUNK)
  return fns, f"{source}, {blocks} blocks, K={k}"


def measure(fns, repeats):
  """{name: (wall times, CPU times)}, alternating, after a warm-up."""
  for fn in fns.values():
    fn()
  times = {name: ([], []) for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t, c = time.perf_counter(), time.process_time()
      fn()
      times[name][0].append(time.perf_counter() - t)
      times[name][1].append(time.process_time() - c)
  return times


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=enhance_speed.DEFAULT_IMAGE)
  parser.add_argument("--repeats", type=int, default=30)
  args = parser.parse_args(argv)
  fns, what = runners(args.image)
  want = fns["1 step thread"]()
  for name in SETTINGS:
    assert np.array_equal(fns[name](), want), f"{name} changed bits"
  load = os.getloadavg()[0]
  times = measure(fns, args.repeats)
  med = {name: statistics.median(w) for name, (w, _) in times.items()}
  cpu = {name: statistics.median(c) for name, (_, c) in times.items()}
  print(f"{what}; {args.repeats} alternating repeats; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, OPENBLAS_NUM_"
        f"THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; "
        f"{os.cpu_count()} CPUs; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; bits equal in every setting")
  print(f"  bare needed products {med['products'] * 1e3:.0f} ms, K products "
        f"{med['K products'] * 1e3:.0f} ms")
  walls = times["products"][0]
  for name in SETTINGS:
    pairs = statistics.median(
        a / b for a, b in zip(times[name][0], walls))
    print(f"  {name:<17} {med[name] * 1e3:6.0f} ms: / products "
          f"{med[name] / med['products']:.3f} (medians), {pairs:.3f} "
          f"(pairs), {cpu[name] / cpu['products']:.3f} (CPU); / K products "
          f"{med[name] / med['K products']:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
