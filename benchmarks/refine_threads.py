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

With --gates, also the default threads with each other LSTM gate formula
(`numpy_serving.GATES`: this CPU's default and the others, which give
other bits); with --baseline FILE, also another version of
`numpy_serving.py` (say main's before a change, from `git show`) with its
own defaults: a before / after comparison in one process. For these the
pixels that differ from the default setting's output are counted.

Prints, per setting, the warm refine's median and its ratio to the needed
products: medians, median of back-to-back pairs, CPU time (all threads of
the process), and against the K products. Only the wall-time ratios show
what threads buy, and only on an otherwise idle machine: under load the
second core is not there to use.

Usage:
  .venv/bin/python benchmarks/refine_threads.py [--image PNG] [--repeats 30]
      [--gates] [--baseline OLD_numpy_serving.py]
"""

import argparse
import functools
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from unittest import mock

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
DEFAULT = (ns.THREADS, ns.STEP_THREADS, ns.PIN_STEP_THREADS)


def _module(path):
  """Another version of numpy_serving.py, imported from `path`."""
  spec = importlib.util.spec_from_file_location("baseline_numpy_serving",
                                                path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _refine(model, decoded, setting, threads, step_threads, pin):
  def run():
    ns.THREADS, ns.STEP_THREADS, ns.PIN_STEP_THREADS = (
        threads, step_threads, pin)
    return model.refine(decoded, setting=setting)
  return run


def variants(decoded, setting, gates, baseline):
  """{name: fn}: the warm refine with the other gate formulas (default
  threads) when `gates`, and with the `baseline` module when given."""
  fns = {}
  for other in sorted(ns._GATE_FORMULAS) if gates else []:  # pylint: disable=protected-access
    if other != ns.GATES:
      with mock.patch.object(ns, "GATES", other):
        model = ns.load_pretrained("jpeg", "numpy")
      fns[f"GATES={other}"] = _refine(model, decoded, setting, *DEFAULT)
  if baseline:
    model = _module(baseline).NumpyModel(ns.pretrained_dir("jpeg"))
    fns["baseline"] = functools.partial(model.refine, decoded,
                                        setting=setting)  # its own defaults
  return fns


def runners(image, gates=False, baseline=None):
  """({name: fn}: the warm refine under each setting (and `variants`), the
  K - 1 and K products), the image's name."""
  with tempfile.TemporaryDirectory() as tmp:
    jpg, source = enhance_speed.make_input(image, tmp)
    with open(jpg, "rb") as f:
      decoded = codecs.decode(f.read())
    model = ns.load_pretrained("jpeg", "numpy")
    setting = model.setting_for(None, jpg, decoded.shape)
  dec = model._decoder  # pylint: disable=protected-access
  k = int(model.spec["K"])
  blocks = (-(-decoded.shape[0] // dec.d)) * (-(-decoded.shape[1] // dec.d))

  fns = {name: _refine(model, decoded, setting, *s)
         for name, s in SETTINGS.items()}
  fns.update(variants(decoded, setting, gates, baseline))
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
  parser.add_argument("--gates", action="store_true",
                      help="also time the other LSTM gate formulas")
  parser.add_argument("--baseline", help="also time this numpy_serving.py")
  args = parser.parse_args(argv)
  fns, what = runners(args.image, args.gates, args.baseline)
  want = fns["1 step thread"]()
  for name in SETTINGS:
    assert np.array_equal(fns[name](), want), f"{name} changed bits"
  others = [name for name in fns if name not in SETTINGS and "products"
            not in name]
  for name in others:
    diff = np.abs(fns[name]().astype(int) - want)
    print(f"{name}: {np.count_nonzero(diff)} of {diff.size} pixels differ "
          f"from the default's (max {diff.max()})")
  load = os.getloadavg()[0]
  times = measure(fns, args.repeats)
  med = {name: statistics.median(w) for name, (w, _) in times.items()}
  cpu = {name: statistics.median(c) for name, (_, c) in times.items()}
  print(f"{what}; {args.repeats} alternating repeats; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, OPENBLAS_NUM_"
        f"THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; "
        f"{os.cpu_count()} CPUs; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; GATES={ns.GATES}; bits "
        "equal in every thread setting")
  print(f"  bare needed products {med['products'] * 1e3:.0f} ms, K products "
        f"{med['K products'] * 1e3:.0f} ms")
  walls = times["products"][0]
  for name in list(SETTINGS) + others:
    pairs = statistics.median(
        a / b for a, b in zip(times[name][0], walls))
    print(f"  {name:<17} {med[name] * 1e3:6.0f} ms: / products "
          f"{med[name] / med['products']:.3f} (medians), {pairs:.3f} "
          f"(pairs), {cpu[name] / cpu['products']:.3f} (CPU); / K products "
          f"{med[name] / med['K products']:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
