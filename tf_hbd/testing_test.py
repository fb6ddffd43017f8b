"""Tests of tf_hbd.testing: the child takes SIGINT at its default, the parent
keeps its own handler and runs no fork handlers."""

import os
import signal
import subprocess
import sys
from unittest import mock

from absl.testing import absltest

from tf_hbd import testing

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The child prints the SIGINT disposition it started with.
_REPORT = ("import signal; h = signal.getsignal(signal.SIGINT); "
           "print('ignored' if h is signal.SIG_IGN else 'default' "
           "if h is signal.default_int_handler else repr(h))")

# In a process of its own (the handler stays registered): counts the C
# library's fork handlers (grpcio's kind) that starting a child runs, with
# SIGINT ignored and `terminal_sigint` open around the start, as a test
# that starts several children may hold it; prints the count and the
# child's SIGINT.
_FORK_HANDLERS = """
import ctypes, signal, sys
from tf_hbd import testing
calls = []
handler = ctypes.CFUNCTYPE(None)(lambda: calls.append(1))
assert ctypes.CDLL(None).__register_atfork(handler, None, None, None) == 0
signal.signal(signal.SIGINT, signal.SIG_IGN)
with testing.terminal_sigint():
  child = testing.run_with_terminal_sigint(
      [sys.executable, "-c", sys.argv[1]], capture_output=True, text=True,
      check=True, timeout=120)
print(len(calls), child.stdout.strip())
"""


class TerminalSigintTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self._before = signal.getsignal(signal.SIGINT)
    self.addCleanup(signal.signal, signal.SIGINT, self._before)

  def test_an_ignored_sigint_is_default_in_the_child_and_kept_in_the_parent(
      self):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background shell
    plain = subprocess.run([sys.executable, "-c", _REPORT],
                           capture_output=True, text=True, check=True)
    self.assertEqual(plain.stdout.strip(), "ignored")  # what is fixed
    child = testing.run_with_terminal_sigint(
        [sys.executable, "-c", _REPORT], capture_output=True, text=True,
        check=True, timeout=120)
    self.assertEqual(child.stdout.strip(), "default")
    self.assertIs(signal.getsignal(signal.SIGINT), signal.SIG_IGN)

  def test_no_fork_handler_runs_also_inside_an_open_terminal_sigint(self):
    env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(  # a timeout, not a hang, if the lock waits for itself
        [sys.executable, "-c", _FORK_HANDLERS, _REPORT], env=env,
        capture_output=True, text=True, timeout=60)
    self.assertEqual(out.returncode, 0, out.stderr[-2000:])
    self.assertEqual(out.stdout.split(), ["0", "default"],
                     "a fork handler ran: the test process itself was forked")

  def test_a_caught_sigint_is_left_alone(self):
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with testing.popen_with_terminal_sigint(
        [sys.executable, "-c", _REPORT], stdout=subprocess.PIPE,
        text=True) as child:
      out, _ = child.communicate(timeout=120)
    self.assertEqual(out.strip(), "default")
    self.assertIs(signal.getsignal(signal.SIGINT), signal.default_int_handler)

  def test_preexec_fn_is_refused(self):
    with self.assertRaisesRegex(ValueError, "preexec_fn forks the parent"):
      testing.popen_with_terminal_sigint(["true"], preexec_fn=lambda: None)

  def test_check_and_timeout_as_subprocess_run(self):
    with self.assertRaises(subprocess.CalledProcessError):
      testing.run_with_terminal_sigint([sys.executable, "-c", "exit(3)"],
                                       check=True, timeout=120)
    with self.assertRaises(subprocess.TimeoutExpired):
      testing.run_with_terminal_sigint(
          [sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)

  def test_input_as_subprocess_run(self):
    child = testing.run_with_terminal_sigint(
        [sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"],
        input="abc", capture_output=True, text=True, check=True, timeout=120)
    self.assertEqual(child.stdout, "cba\n")
    with self.assertRaisesRegex(ValueError, "capture_output"):
      testing.run_with_terminal_sigint(["true"], capture_output=True,
                                       stdout=subprocess.PIPE)

  def test_an_interrupted_wait_stops_the_child_as_subprocess_run(self):
    started = []

    def interrupted(child, *unused_args, **unused_kwargs):
      started.append(child)
      raise KeyboardInterrupt

    with mock.patch.object(subprocess.Popen, "communicate", autospec=True,
                           side_effect=interrupted):
      with self.assertRaises(KeyboardInterrupt):
        testing.run_with_terminal_sigint(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            timeout=120)
    self.assertLen(started, 1)
    self.assertEqual(started[0].wait(timeout=60), -signal.SIGKILL)


if __name__ == "__main__":
  absltest.main()
