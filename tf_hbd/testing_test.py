"""Tests of tf_hbd.testing: the child takes SIGINT at its default, the parent
keeps its own handler and runs no fork handlers."""

import os
import signal
import subprocess
import sys

from absl.testing import absltest

from tf_hbd import testing

# The child prints the SIGINT disposition it started with.
_REPORT = ("import signal; h = signal.getsignal(signal.SIGINT); "
           "print('ignored' if h is signal.SIG_IGN else 'default' "
           "if h is signal.default_int_handler else repr(h))")

_FORKS = []
os.register_at_fork(before=lambda: _FORKS.append(1))


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
    del _FORKS[:]
    child = testing.run_with_terminal_sigint(
        [sys.executable, "-c", _REPORT], capture_output=True, text=True,
        check=True, timeout=120)
    self.assertEqual(child.stdout.strip(), "default")
    self.assertIs(signal.getsignal(signal.SIGINT), signal.SIG_IGN)
    self.assertEqual(_FORKS, [], "the test process itself was forked")

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


if __name__ == "__main__":
  absltest.main()
