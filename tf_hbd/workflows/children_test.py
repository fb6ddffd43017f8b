"""Tests of tf_hbd.workflows.children: a workflow stopped by SIGINT or
SIGTERM forwards it to its training child, waits for the child's
checkpoint, and exits 130 with one line."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

from absl.testing import absltest
from absl.testing import parameterized

from tf_hbd import testing

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_HINT = "rerun to resume"

# A stand-in for a training run: says "ready", then on SIGINT / SIGTERM
# writes its "checkpoint" (the names of all the signals it got, one a line,
# a second one given time to come) and says so the way train.py does.
_FAKE_CHILD = textwrap.dedent("""
    import signal, sys, time
    stop = []
    for s in (signal.SIGINT, signal.SIGTERM):
      signal.signal(s, lambda n, f: stop.append(signal.Signals(n).name))
    print("ready", flush=True)
    while not stop:
      time.sleep(0.01)
    time.sleep(0.3)
    open(sys.argv[1], "w").write("\\n".join(stop))
    print(f"train.py: interrupted ({stop[0]} after batch 7, checkpoint "
          f"{sys.argv[1]} saved); rerun the same command", file=sys.stderr)
    sys.exit(130)
""")

# The workflow: one training child through `children.run`, under the one
# Ctrl-C handler; argv: the child's command as JSON, the log file or "".
_PARENT = textwrap.dedent("""
    import json, sys
    from tf_hbd import errors
    from tf_hbd.workflows import children
    def work():
      if not sys.argv[2]:
        return children.run(json.loads(sys.argv[1]))
      with open(sys.argv[2], "a") as log:
        return children.run(json.loads(sys.argv[1]), log=log)
    sys.exit(errors.exit_on_interrupt(work, "workflow", "rerun to resume"))
""")


def _env():
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _start_parent(child_args, log=""):
  """The workflow process, SIGINT at its default (as in a terminal, also
  when the suite itself runs in the background)."""
  return testing.popen_with_terminal_sigint(
      [sys.executable, "-c", _PARENT, json.dumps(child_args), log],
      cwd=_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def _stop(parent, signum):
  parent.send_signal(signum)
  try:
    out, err = parent.communicate(timeout=600)  # saving under load is slow
  except subprocess.TimeoutExpired:
    parent.kill()
    raise
  return out, err


class ChildrenTest(parameterized.TestCase):

  @parameterized.parameters(signal.SIGINT, signal.SIGTERM)
  def test_forwarded_once_checkpoint_then_one_line(self, signum):
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    parent = _start_parent([sys.executable, "-c", _FAKE_CHILD, ckpt])
    self.assertEqual(parent.stdout.readline(), "ready\n")
    _, err = _stop(parent, signum)
    self.assertEqual(parent.returncode, 130, msg=err)
    name = signal.Signals(signum).name
    self.assertEqual(err.splitlines(), [
        f"workflow: interrupted (training: {name} after batch 7, checkpoint "
        f"{ckpt} saved); {_HINT}"])
    with open(ckpt) as f:  # the child got the signal exactly once, and saved
      self.assertEqual(f.read().splitlines(), [name])

  def test_a_finished_child_returns_its_code(self):
    parent = _start_parent([sys.executable, "-c", "import sys; "
                            "print('failed', file=sys.stderr); sys.exit(3)"])
    _, err = parent.communicate(timeout=300)
    self.assertEqual((parent.returncode, err), (3, "failed\n"))

  def test_undecodable_bytes_and_much_stderr_do_not_block_the_child(self):
    # Bytes that are not UTF-8, then more than a pipe holds (~64 KB): the
    # parent keeps draining the child's stderr, so the child can finish.
    parent = _start_parent([sys.executable, "-c", "import sys; "
                            "sys.stderr.buffer.write(b'bad \\xff\\xfe\\n' "
                            "+ 2500 * (99 * b'x' + b'\\n'))"])
    _, err = parent.communicate(timeout=300)
    self.assertEqual(parent.returncode, 0, msg=err[-2000:])
    lines = err.splitlines()
    self.assertTrue(lines[0].startswith("bad "), msg=lines[0])
    self.assertEqual(lines[1:], 2500 * [99 * "x"])

  def test_a_training_run_checkpoints_and_its_log_keeps_its_line(self):
    # A real training child (tiny, endless), its output in a log file as
    # in `reproduce` and `study_runner`.
    model_dir = tempfile.mkdtemp()
    log = os.path.join(model_dir, "train.log")
    parent = _start_parent(
        [sys.executable, "-m", "tf_hbd.training", f"--model_dir={model_dir}",
         "--units=4", "--K=2", "--batch_size=32", "--train_limit=1",
         "--train_max_side=96", "--val_max_side=64", "--epochs=1",
         "--steps_per_epoch=1000000", "--log_every=1", "--export=false"],
        log)
    deadline = time.time() + 600
    while parent.poll() is None and time.time() < deadline:
      with open(log) if os.path.exists(log) else open(os.devnull) as f:
        if "step 2/1000000" in f.read():  # training is under way
          break
      time.sleep(0.2)
    _, err = _stop(parent, signal.SIGTERM)
    self.assertEqual(parent.returncode, 130, msg=err)
    self.assertRegex(err, r"^workflow: interrupted \(training: SIGTERM after "
                          r"batch (\d+), checkpoint .*/ckpt-\1 saved\); "
                          + _HINT + "\n$")
    batch = int(err.split("after batch ")[1].split(",")[0])
    self.assertGreaterEqual(batch, 2)
    ckpt = os.path.join(model_dir, "checkpoints", f"ckpt-{batch}.index")
    self.assertTrue(os.path.isfile(ckpt), msg=err)
    with open(log) as f:
      self.assertIn("train.py: interrupted (SIGTERM after batch", f.read())


if __name__ == "__main__":
  absltest.main()
