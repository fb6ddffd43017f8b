"""Two-worker training over loopback (MultiWorkerMirroredStrategy, TF_CONFIG)
equals one process over the same global batches.

Each run is `scripts/train.py --strategy=multi_worker` as a user starts it:
two worker processes on 127.0.0.1 (free ports, ring collectives, a collective
timeout), and, as the reference, one process with no TF_CONFIG (a one-worker
cluster: the same global batch of 32 and data order on one replica). The
chief's final checkpoint must equal the single process's to float tolerance.
BPTT is interrupted after 2 of 4 batches (--max_steps) and resumed by both
workers from the chief's checkpoint; UORO (online, batched estimate) runs
straight through, and so does SnAp-1. Every process is killed in `finally` if still running.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
_SCRIPT = os.path.join(_ROOT, "scripts", "train.py")
_ARGS = ["--units=4", "--K=2", "--batch_size=32", "--train_limit=1",
         "--train_max_side=96", "--val_max_side=48", "--val_max_images=1",
         "--steps_per_epoch=4", "--epochs=1", "--log_every=1",
         "--checkpoint_every=1", "--optimizer=momentum", "--lr=0.05",
         "--export=false", "--strategy=multi_worker", "--communication=ring",
         "--collective_timeout=300"]
_TIMEOUT_S = 480  # per phase (processes start together, under load)
_TOLERANCE = 1e-6


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  try:
    for s in socks:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()


def _env(tmp, tf_config=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
             TMPDIR=tmp)
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  env.pop("TF_CONFIG", None)
  if tf_config is not None:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return env


def _weights(model_dir):
  reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints"))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.startswith("model/")}


class MultiWorkerTest(tf.test.TestCase):

  def _start(self, args, model_dir, workers, tmp, logs):
    """Starts `workers` processes (1: no TF_CONFIG); returns the Popens."""
    ports = _free_ports(workers) if workers > 1 else []
    procs = []
    for i in range(workers):
      config = None
      if workers > 1:
        config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                  "task": {"type": "worker", "index": i}}
      path = os.path.join(logs, f"{os.path.basename(model_dir)}_w{i}_"
                          f"{len(os.listdir(logs))}.log")
      with open(path, "w") as out:
        procs.append(subprocess.Popen(
            [sys.executable, _SCRIPT, f"--model_dir={model_dir}", *args],
            cwd=_ROOT, env=_env(tmp, config), stdout=out,
            stderr=subprocess.STDOUT))
      procs[-1].log_path = path
    return procs

  def _run_phase(self, runs):
    """Runs [(args, model_dir, workers)] together; returns their outputs."""
    tmp = self.create_tempdir().full_path
    logs = self.create_tempdir().full_path
    groups = []
    try:
      for args, model_dir, workers in runs:
        groups.append(self._start(args, model_dir, workers, tmp, logs))
      deadline = time.time() + _TIMEOUT_S
      for procs in groups:
        for p in procs:
          p.wait(timeout=max(1, deadline - time.time()))
    finally:
      for procs in groups:
        for p in procs:
          if p.poll() is None:
            p.kill()
            p.wait()
    outputs = []
    for procs in groups:
      texts = []
      for p in procs:
        with open(p.log_path) as f:
          texts.append(f.read())
        self.assertEqual(p.returncode, 0, msg=texts[-1][-4000:])
      outputs.append(texts)
    # Non-chief workers kept their checkpoints in TMPDIR and removed them.
    self.assertEmpty(os.listdir(tmp))
    return outputs

  def _compare(self, single_dir, two_dir, label):
    one, two = _weights(single_dir), _weights(two_dir)
    self.assertNotEmpty(one)
    self.assertEqual(set(one), set(two))
    diff = max(float(np.max(np.abs(one[n] - two[n]))) for n in one)
    print(f"{label}: 2 workers vs 1 process, max |weight difference| = "
          f"{diff:.3g} over {len(one)} tensors")
    self.assertLess(diff, _TOLERANCE)
    logs = []
    for d in (single_dir, two_dir):
      with open(os.path.join(d, "log.json")) as f:
        logs.append(json.load(f))
    self.assertEqual(logs[1]["status"], "finished")
    self.assertAllClose(logs[1]["epochs"][0]["train_loss"],
                        logs[0]["epochs"][0]["train_loss"], rtol=1e-6)
    return diff

  @pytest.mark.slow
  def test_bptt_two_workers_with_resume_equal_one_process(self):
    args = ["--algo=bptt", *_ARGS]
    single = self.create_tempdir().full_path
    two = self.create_tempdir().full_path
    (ref,), first = self._run_phase([(args, single, 1),
                                     (args + ["--max_steps=2"], two, 2)])
    self.assertIn("1 replicas", ref)
    self.assertIn("2 replicas, task worker:0 (chief)", first[0])
    self.assertIn("stopping at batch 2", first[1])
    self.assertEqual(sorted(os.listdir(two)),
                     ["checkpoints", "log.json", "metrics.csv",
                      "tensorboard"])
    (second,) = self._run_phase([(args, two, 2)])
    self.assertIn("resumed from", second[0])
    self.assertIn("resumed from the chief's", second[1])
    self.assertRegex(second[0], r"from batch 2\n")
    self._compare(single, two, "bptt")

  @pytest.mark.slow
  def test_uoro_two_workers_equal_one_process(self):
    args = ["--algo=uoro", *_ARGS]
    single = self.create_tempdir().full_path
    two = self.create_tempdir().full_path
    self._run_phase([(args, single, 1), (args, two, 2)])
    self._compare(single, two, "uoro")

  @pytest.mark.slow
  def test_snap1_two_workers_equal_one_process(self):
    args = ["--algo=snap1", *_ARGS]
    single = self.create_tempdir().full_path
    two = self.create_tempdir().full_path
    self._run_phase([(args, single, 1), (args, two, 2)])
    self._compare(single, two, "snap1")


if __name__ == "__main__":
  tf.test.main()
