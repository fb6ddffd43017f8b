"""CPU cost of AutoGraph in one tiny training run, and whether it changes
anything.

  python benchmarks/autograph_cost.py             # the reproduce tiny run
  python benchmarks/autograph_cost.py --algo=bptt --codec=jpeg --patch_size=8

Runs ``python -m tf_hbd.training`` (the flags of one ``reproduce.py
--scale=tiny`` run: 2 epochs x 3 batches, LSTM-8, validation, the serving
export) twice, side by side so that machine load hits both alike: as
shipped, and with every ``tf.function`` built with ``autograph=False`` (a
wrapper installed before tf_hbd is imported). Prints each process's CPU time
(user + system) and wall time, whether the per-epoch training losses are
equal, and whether the two serving exports hold the same functions with the
same operations (op types and counts per function). Many test-suite tests
start such a process (reproduce, study, train/export scripts): the
difference is what AutoGraph's source conversion costs each of them.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NO_AUTOGRAPH = """
import sys
import tensorflow as tf
_function = tf.function
def _no_autograph(func=None, **kwargs):
  kwargs.setdefault("autograph", False)
  return _function(func, **kwargs) if func is not None else _function(**kwargs)
tf.function = _no_autograph
from tf_hbd.training import main
sys.argv = ["tf_hbd.training"] + sys.argv[1:]
main.run()
"""


def _start(argv, model_dir, autograph, log_path):
  """Starts one training process; returns (Popen, start time)."""
  head = (["-m", "tf_hbd.training"] if autograph else ["-c", _NO_AUTOGRAPH])
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  with open(log_path, "w") as log:
    proc = subprocess.Popen(
        [sys.executable, *head, f"--model_dir={model_dir}", *argv], cwd=_ROOT,
        env=env, stdout=log, stderr=subprocess.STDOUT)
  return proc, time.time()


def _wait_all(started):
  """{name: (exit code, CPU seconds, wall seconds)} as each process ends.

  Args:
    started: {name: (Popen, start time)}.
  """
  by_pid = {proc.pid: (name, proc, t0) for name, (proc, t0) in
            started.items()}
  out = {}
  while by_pid:
    pid, status, usage = os.wait4(-1, 0)
    if pid not in by_pid:
      continue
    name, proc, t0 = by_pid.pop(pid)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out[name] = (proc.returncode, usage.ru_utime + usage.ru_stime,
                 time.time() - t0)
  return out


def _graph_ops(export_dir):
  """{(function name without its number, ((op, count), ...)): count}."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  model = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
    model.ParseFromString(f.read())
  out = collections.Counter()
  for fn in model.meta_graphs[0].graph_def.library.function:
    ops = collections.Counter(node.op for node in fn.node_def)
    out[(re.sub(r"_\d+$", "", fn.signature.name),
         tuple(sorted(ops.items())))] += 1
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--algo", default="uoro")
  p.add_argument("--codec", default="jp2")
  p.add_argument("--patch_size", type=int, default=16)
  args = p.parse_args(argv)
  flags = ["--K=2", f"--algo={args.algo}", "--batch_size=16",
           f"--codec={args.codec}", "--epochs=2", "--log_every=1",
           "--lr=0.001", "--optimizer=adam",
           f"--patch_size={args.patch_size}", "--sne=false",
           "--steps_per_epoch=3", "--train_limit=2", "--train_max_side=96",
           "--units=8", "--val_max_images=1", "--val_max_side=64"]
  tmp = tempfile.mkdtemp()
  runs = {}
  for name, autograph in (("autograph", True), ("no autograph", False)):
    d = os.path.join(tmp, name.replace(" ", "_"))
    runs[name] = (d, _start(flags, d, autograph, d + ".log"))
  ended = _wait_all({name: started for name, (_, started) in runs.items()})
  results = {name: (d, ended[name]) for name, (d, _) in runs.items()}
  for name, (d, (code, cpu, wall)) in results.items():
    print(f"{name:>13}: exit {code}, CPU {cpu:.1f} s, wall {wall:.0f} s "
          f"(log {d}.log)")
  (a, _), (b, _) = results.values()
  losses = []
  for d in (a, b):
    with open(os.path.join(d, "log.json")) as f:
      losses.append([e["train_loss"] for e in json.load(f)["epochs"]])
  print(f"training losses equal: {losses[0] == losses[1]} {losses[0]}")
  ops_a, ops_b = (_graph_ops(os.path.join(d, "serving")) for d in (a, b))
  print(f"serving exports: {sum(ops_a.values())} / {sum(ops_b.values())} "
        f"functions, same operations: {ops_a == ops_b}")


if __name__ == "__main__":
  main()
