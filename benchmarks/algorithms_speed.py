"""Step time and peak memory of each learning algorithm relative to BPTT.

  python benchmarks/algorithms_speed.py --units=32,64,128,512 --batch_size=256

One training step = ``algo.train_step`` on one batch with an SGD update (so
online RTRL/UORO/SnAp-1 make their K updates), compiled with `tf.function`, same
cell (LSTM), batch, K and data for every algorithm; the time is the median of
``--steps`` steps after two warm-up steps, taken round-robin over the
algorithms (one step of each in turn) so that a change of machine load hits
them alike.

Peak memory: TensorFlow's allocator statistics
(``tf.config.experimental.get_memory_info``): the peak of the bytes in use
during one step (measured for each algorithm alone) minus the bytes in use
before it (weights, optimizer
slots, the batch), i.e. the step's working set of tensors. On a CPU the
script turns on TF's BFC allocator (``TF_CPU_ALLOCATOR_USE_BFC=true``), which
keeps these statistics; Python objects and traced graphs are not counted.

RTRL runs only where its own estimate (`tf_hbd.training.algorithms.rtrl`) fits
``--rtrl_max_gb``; otherwise the row gives the estimate. Results also go to
``--out`` (JSON).
"""

import json
import os
import statistics
import time

# Allocator statistics on the CPU too (must be set before TF starts).
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_UNITS = flags.DEFINE_list("units", ["32", "64", "128", "512"],
                           "State sizes to measure.")
_ALGOS = flags.DEFINE_list("algos", ["bptt", "sab", "uoro",
                                     "uoro_per_example", "snap1", "rtrl"],
                           "Algorithms (uoro_per_example: UORO with one "
                           "estimate per example; uoro_post_update: UORO's "
                           "post_update gradient form).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Blocks per batch.")
_K = flags.DEFINE_integer("K", 4, "Refinement steps.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per configuration.")
_RTRL_MAX_GB = flags.DEFINE_float("rtrl_max_gb", 4.0,
                                  "Skip RTRL above this estimated peak.")
_OUT = flags.DEFINE_string("out", "", "Write the results as JSON here.")


def _make(name, units):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_hbd.model import decoder  # pylint: disable=g-import-not-at-top
  from tf_hbd.training.algorithms import base  # pylint: disable=g-import-not-at-top
  import tf_hbd.training.algorithms  # pylint: disable=g-import-not-at-top,unused-import
  model = decoder.build_decoder("lstm", units=units, patch_size=8, K=_K.value,
                                seed=0)
  options = {"uoro_per_example": {"per_example": True},
             "uoro_post_update": {"form": "post_update"}}.get(name, {})
  algo = base.make_algorithm(name.split("_")[0], model, **options)
  opt = tf.keras.optimizers.SGD(1e-4)
  opt.build(algo.variables)

  def apply(grads):
    opt.apply_gradients(zip(grads, algo.variables))

  return algo, tf.function(lambda b: algo.train_step(b, apply)["loss"])


def _batch():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  b = _BATCH_SIZE.value
  return {"context": tf.constant(rng.uniform(size=(b, 9, 8, 8)), tf.float32),
          "position": tf.constant(rng.integers(0, 9, b), tf.int32),
          "target": tf.constant(rng.uniform(size=(b, 8, 8)), tf.float32)}


def measure_units(units, names):
  """Rows {'algo', 'units', 'ms', 'peak_mib', ...} for one state size.

  Peak memory is measured for each algorithm alone; the step times are
  taken round-robin (one step of each algorithm in turn, `--steps` rounds)
  so that a change of machine load affects every algorithm alike.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
  batch = _batch()
  rows, steps = {}, {}
  for name in names:
    algo, step = _make(name, units)
    row = {"algo": name, "units": units, "device": device}
    if name == "rtrl":
      est = algo.estimate(_BATCH_SIZE.value)["peak_bytes"] / 2**30
      row["estimate_gib"] = est
      if est > _RTRL_MAX_GB.value:
        rows[name] = dict(row, skipped=True)
        continue
    try:
      for _ in range(2):  # trace and warm up
        step(batch).numpy()
      tf.config.experimental.reset_memory_stats(device)
      before = tf.config.experimental.get_memory_info(device)["current"]
      step(batch).numpy()
      used = tf.config.experimental.get_memory_info(device)["peak"] - before
    except (tf.errors.ResourceExhaustedError, MemoryError) as e:
      rows[name] = dict(row, error=str(e)[:200])
      continue
    rows[name] = dict(row, peak_mib=used / 2**20, times=[])
    steps[name] = step
  for _ in range(_STEPS.value):
    for name, step in steps.items():
      t0 = time.perf_counter()
      step(batch).numpy()
      rows[name]["times"].append(time.perf_counter() - t0)
  for name in steps:
    rows[name]["ms"] = 1e3 * statistics.median(rows[name].pop("times"))
  return [rows[n] for n in names]


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpu = bool(tf.config.list_physical_devices("GPU"))
  rows = []
  for units in (int(u) for u in _UNITS.value):
    for row in measure_units(units, _ALGOS.value):
      rows.append(row)
      print(json.dumps(row), flush=True)
  print(f"\nbatch {_BATCH_SIZE.value}, LSTM, K={_K.value}, device "
        f"{'GPU' if gpu else 'CPU'}; ratios are vs BPTT at the same units\n")
  print("| units | algorithm | step (ms) | x BPTT | peak memory (MiB) | "
        "x BPTT |")
  print("|---|---|---|---|---|---|")
  for units in (int(u) for u in _UNITS.value):
    ref = next((r for r in rows if r["units"] == units and
                r["algo"] == "bptt" and "ms" in r), None)
    for r in (r for r in rows if r["units"] == units):
      if "ms" not in r:
        why = (f"skipped: estimated {r['estimate_gib']:.1f} GiB > "
               f"{_RTRL_MAX_GB.value:g} GiB" if r.get("skipped")
               else "error: " + r.get("error", "")[-80:].replace("\n", " "))
        print(f"| {units} | {r['algo']} | {why} | | | |")
        continue
      t = r["ms"] / ref["ms"] if ref else float("nan")
      m = (r["peak_mib"] / ref["peak_mib"] if ref and ref["peak_mib"] > 0
           else float("nan"))
      print(f"| {units} | {r['algo']} | {r['ms']:.1f} | {t:.2f} | "
            f"{r['peak_mib']:.0f} | {m:.2f} |")
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump(rows, f, indent=1)
  return 0


if __name__ == "__main__":
  app.run(main)
