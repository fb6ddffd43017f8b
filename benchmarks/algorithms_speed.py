"""Step time and peak memory of each learning algorithm relative to BPTT.

  python benchmarks/algorithms_speed.py --units=32,64,128,512 --batch_size=256

One training step = ``algo.train_step`` on one batch with an SGD update (so
online RTRL/UORO make their K updates), compiled with `tf.function`, same
cell (LSTM), batch, K and data for every algorithm; the time is the median of
``--steps`` steps after two warm-up steps.

Peak memory:
* GPU: ``tf.config.experimental.get_memory_info`` peak during the timed
  steps minus the memory in use before them (weights, optimizer, batch);
* CPU (no allocator statistics): every configuration runs in its own
  subprocess; a thread samples the process RSS every millisecond during the
  timed steps and the peak above the RSS measured just before them is
  reported (tracing memory excluded, freed large buffers returned to the OS
  by the allocator, so the figure is the step's working set).

RTRL runs only where its own estimate (`tf_hbd.algorithms.rtrl`) fits
``--rtrl_max_gb``; otherwise the row gives the estimate. Results also go to
``--out`` (JSON).
"""

import json
import os
import statistics
import subprocess
import sys
import threading
import time

from absl import app
from absl import flags
import numpy as np

_UNITS = flags.DEFINE_list("units", ["32", "64", "128", "512"],
                           "State sizes to measure.")
_ALGOS = flags.DEFINE_list("algos", ["bptt", "sab", "uoro",
                                     "uoro_per_example", "rtrl"],
                           "Algorithms (uoro_per_example: UORO with one "
                           "estimate per example).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Blocks per batch.")
_K = flags.DEFINE_integer("K", 4, "Refinement steps.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per configuration.")
_RTRL_MAX_GB = flags.DEFINE_float("rtrl_max_gb", 4.0,
                                  "Skip RTRL above this estimated peak.")
_OUT = flags.DEFINE_string("out", "", "Write the results as JSON here.")
_ONE = flags.DEFINE_string("one", "", "Internal: measure one 'algo:units' "
                           "and print its JSON.")


def _make(name, units):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_hbd import decoder  # pylint: disable=g-import-not-at-top
  from tf_hbd.algorithms import base  # pylint: disable=g-import-not-at-top
  import tf_hbd.algorithms  # pylint: disable=g-import-not-at-top,unused-import
  model = decoder.build_decoder("lstm", units=units, patch_size=8, K=_K.value,
                                seed=0)
  options = {"per_example": True} if name == "uoro_per_example" else {}
  algo = base.make_algorithm(name.split("_")[0], model, **options)
  rng = np.random.default_rng(0)
  b = _BATCH_SIZE.value
  batch = {"context": tf.constant(rng.uniform(size=(b, 9, 8, 8)), tf.float32),
           "position": tf.constant(rng.integers(0, 9, b), tf.int32),
           "target": tf.constant(rng.uniform(size=(b, 8, 8)), tf.float32)}
  return tf, algo, batch


def measure(name, units):
  """{'ms', 'peak_mib', ...} of one algorithm at one size (this process)."""
  tf, algo, batch = _make(name, units)
  if name == "rtrl":
    est = algo.estimate(_BATCH_SIZE.value)
    if est["peak_bytes"] > _RTRL_MAX_GB.value * 2**30:
      return {"algo": name, "units": units, "skipped": True,
              "estimate_gib": est["peak_bytes"] / 2**30}
  opt = tf.keras.optimizers.SGD(1e-4)
  opt.build(algo.variables)

  def apply(grads):
    opt.apply_gradients(zip(grads, algo.variables))

  step = tf.function(lambda b: algo.train_step(b, apply)["loss"])
  for _ in range(2):
    step(batch).numpy()
  gpu = bool(tf.config.list_logical_devices("GPU"))
  times = []
  if gpu:
    tf.config.experimental.reset_memory_stats("GPU:0")
    before = tf.config.experimental.get_memory_info("GPU:0")["current"]
  else:
    import psutil  # pylint: disable=g-import-not-at-top
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample():
      while not done.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
  for _ in range(_STEPS.value):
    t0 = time.perf_counter()
    step(batch).numpy()
    times.append(time.perf_counter() - t0)
  if gpu:
    used = tf.config.experimental.get_memory_info("GPU:0")["peak"] - before
  else:
    done.set()
    thread.join()
    used = peak[0] - before
  out = {"algo": name, "units": units, "ms": 1e3 * statistics.median(times),
         "peak_mib": used / 2**20, "device": "GPU" if gpu else "CPU"}
  if name == "rtrl":
    out["estimate_gib"] = algo.estimate(_BATCH_SIZE.value)["peak_bytes"] / 2**30
  return out


def _isolated(name, units):
  cmd = [sys.executable, os.path.abspath(__file__), f"--one={name}:{units}",
         f"--batch_size={_BATCH_SIZE.value}", f"--K={_K.value}",
         f"--steps={_STEPS.value}", f"--rtrl_max_gb={_RTRL_MAX_GB.value}"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
  env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                        check=False)
  for line in proc.stdout.splitlines()[::-1]:
    if line.startswith("{"):
      return json.loads(line)
  return {"algo": name, "units": units, "error": proc.stderr[-500:]}


def main(argv):
  del argv
  if _ONE.value:
    name, units = _ONE.value.split(":")
    print(json.dumps(measure(name, int(units))))
    return 0
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  gpu = bool(tf.config.list_physical_devices("GPU"))
  rows = []
  for units in (int(u) for u in _UNITS.value):
    for name in _ALGOS.value:
      row = measure(name, units) if gpu else _isolated(name, units)
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
