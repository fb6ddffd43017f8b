"""Training steps/s with 1 and 2 local workers (MultiWorkerMirroredStrategy).

  nice -n 10 .venv/bin/python benchmarks/distributed_scaling.py \
      --out=runs/distributed_scaling.json

For each algorithm, in one run: the plain one-process trainer
(``--strategy=default``), one worker (a one-worker MultiWorkerMirroredStrategy
cluster, the same code path as several), and two worker processes on this
machine talking over loopback (TF_CONFIG, ring collectives). The global batch
is the same in all three (strong scaling: two workers each train half of it).
Each process runs `tf_hbd.training.distributed.DistributedTrainer` (or the plain
`Trainer`) on the sample photographs and reports the time of every step from
its progress lines; the figure is the median step after ``--warmup`` steps
(tracing), as global batches per second, read from the chief.

**Same machine**: both workers share this machine's cores (and each process's
TensorFlow thread pools span all of them), so this measures the overhead of
the distributed engine and its collectives, not the speed-up of two machines.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

_ALGOS = flags.DEFINE_list("algos", ["bptt", "uoro"], "Algorithms to time.")
_UNITS = flags.DEFINE_integer("units", 512, "State size n.")
_K = flags.DEFINE_integer("K", 4, "Refinement steps.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Global batch size.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed first steps.")
_STEPS = flags.DEFINE_integer("steps", 12, "Timed steps.")
_TRAIN_LIMIT = flags.DEFINE_integer("train_limit", 2,
                                    "Sample photographs to train on.")
_TIMEOUT = flags.DEFINE_integer("timeout", 900, "Seconds per configuration.")
_OUT = flags.DEFINE_string("out", "", "Write the results (JSON) here.")
# Internal: one worker process of a configuration.
_WORKER = flags.DEFINE_string("worker", "", "(internal) result file.")
_ALGO = flags.DEFINE_string("algo", "bptt", "(internal) algorithm.")
_STRATEGY = flags.DEFINE_string("strategy", "multi_worker",
                                "(internal) default or multi_worker.")

_RATE = re.compile(r"step (\d+)/\d+ loss .* (\d+) blocks/s")


def _worker():
  """Trains warmup + steps batches; writes the per-step times (s)."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tf_hbd.training import algorithms
  from tf_hbd.model import decoder as decoder_lib
  from tf_hbd.training import distributed
  from tf_hbd.data import train_inputs
  from tf_hbd.training import trainer as training
  strategy = distributed.make_strategy(_STRATEGY.value,
                                       communication="ring")
  stream = train_inputs.training_stream(
      "sample", batch_size=_BATCH_SIZE.value, seed=0,
      limit=_TRAIN_LIMIT.value)
  with strategy.scope():
    model = decoder_lib.build_decoder("lstm", units=_UNITS.value,
                                      patch_size=stream.patch_size,
                                      K=_K.value, seed=0)
    algo = algorithms.make_algorithm(_ALGO.value, model)
  total = _WARMUP.value + _STEPS.value
  config = training.TrainConfig(
      model_dir=os.path.splitext(_WORKER.value)[0] + "_model", epochs=1,
      steps_per_epoch=total, batch_size=_BATCH_SIZE.value, log_every=1,
      optimizer="sgd", lr=2e-4)
  lines = []
  if _STRATEGY.value == "default":
    trainer = training.Trainer(algo, stream.batches, None, config,
                               printer=lines.append)
  else:
    trainer = distributed.DistributedTrainer(algo, stream.batches, None,
                                             config, strategy,
                                             printer=lines.append)
  trainer.run()
  times = {}
  for line in lines:
    m = _RATE.search(line)
    if m:
      times[int(m.group(1))] = _BATCH_SIZE.value / max(1, int(m.group(2)))
  result = {"step_times_s": [times[i] for i in sorted(times)],
            "replicas": int(strategy.num_replicas_in_sync),
            "chief": distributed.is_chief(strategy),
            "threads": {"intra": tf.config.threading
                                 .get_intra_op_parallelism_threads()}}
  with open(_WORKER.value, "w") as f:
    json.dump(result, f)


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def _configuration(algo, strategy, workers, tmp):
  """Runs one configuration; the chief's result dict."""
  ports = _free_ports(workers)
  procs, outs = [], []
  common = [f"--algo={algo}", f"--strategy={strategy}",
            f"--units={_UNITS.value}", f"--K={_K.value}",
            f"--batch_size={_BATCH_SIZE.value}", f"--warmup={_WARMUP.value}",
            f"--steps={_STEPS.value}", f"--train_limit={_TRAIN_LIMIT.value}"]
  try:
    for i in range(workers):
      env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                 CUDA_VISIBLE_DEVICES="")
      env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
      env.pop("TF_CONFIG", None)
      if workers > 1:
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": i}})
      outs.append(os.path.join(tmp, f"{algo}_{strategy}_{workers}_{i}.json"))
      procs.append(subprocess.Popen(
          [sys.executable, os.path.abspath(__file__), *common,
           f"--worker={outs[-1]}"], cwd=_ROOT, env=env,
          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    deadline = time.time() + _TIMEOUT.value
    for p in procs:
      _, err = p.communicate(timeout=max(1, deadline - time.time()))
      if p.returncode:
        raise RuntimeError(f"{algo}/{strategy}/{workers} failed:\n"
                           f"{err[-3000:]}")
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  results = []
  for path in outs:
    with open(path) as f:
      results.append(json.load(f))
  chief = [r for r in results if r["chief"]][0]
  timed = sorted(chief["step_times_s"][_WARMUP.value:])
  median = timed[len(timed) // 2]
  return {"algo": algo, "strategy": strategy, "workers": workers,
          "replicas": chief["replicas"], "median_step_s": median,
          "steps_per_s": 1.0 / median,
          "blocks_per_s": _BATCH_SIZE.value / median,
          "step_times_s": chief["step_times_s"]}


def main(argv):
  del argv
  if _WORKER.value:
    _worker()
    return
  tmp = tempfile.mkdtemp(prefix="hbd_scaling_")
  rows = []
  try:
    for algo in _ALGOS.value:
      for strategy, workers in (("default", 1), ("multi_worker", 1),
                                ("multi_worker", 2)):
        row = _configuration(algo, strategy, workers, tmp)
        rows.append(row)
        print(f"{algo:5s} {strategy:12s} workers={workers} "
              f"{row['steps_per_s']:.3f} steps/s "
              f"({row['blocks_per_s']:.0f} blocks/s)", flush=True)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  with open("/proc/loadavg") as f:
    load = f.read().split()[:3]
  info = {"units": _UNITS.value, "K": _K.value,
          "global_batch": _BATCH_SIZE.value, "warmup": _WARMUP.value,
          "steps": _STEPS.value, "cpus": os.cpu_count(), "loadavg": load,
          "machine": "one machine, workers over loopback (127.0.0.1)"}
  print(f"\nLSTM-{_UNITS.value}, K={_K.value}, global batch "
        f"{_BATCH_SIZE.value}, {os.cpu_count()} CPUs, same machine, "
        f"load average {' '.join(load)}\n")
  print("| algorithm | run | replicas | steps/s | blocks/s | vs 1 worker |")
  print("|---|---|---|---|---|---|")
  for row in rows:
    base = [r for r in rows if r["algo"] == row["algo"]
            and r["strategy"] == "multi_worker" and r["workers"] == 1][0]
    label = ("default (plain trainer)" if row["strategy"] == "default" else
             f"{row['workers']} worker{'s' if row['workers'] > 1 else ''}")
    print(f"| {row['algo']} | {label} | {row['replicas']} | "
          f"{row['steps_per_s']:.3f} | {row['blocks_per_s']:.0f} | "
          f"{row['steps_per_s'] / base['steps_per_s']:.2f}x |")
  if _OUT.value:
    os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
    with open(_OUT.value, "w") as f:
      json.dump({"config": info, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  app.run(main)
