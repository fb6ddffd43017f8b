"""Tests of tf_hbd.errors: the one Ctrl-C handler of every command."""

import ast
import contextlib
import io
import pathlib
import signal

from absl.testing import absltest

from tf_hbd import errors

_ROOT = pathlib.Path(__file__).resolve().parent.parent
# Every command line: its Ctrl-C goes through `errors.exit_on_interrupt`.
_ENTRY_POINTS = (
    "tf_hbd/inference/cli.py",  # hbd
    "tf_hbd/training/flag_checks.py",  # train.py / hbd-train (guarded_main)
    "tf_hbd/evaluation/main.py",  # hbd-evaluate, scripts/evaluate.py
    "tf_hbd/baselines/main.py",  # hbd-train-baseline
    "scripts/baseline_campaign.py",
    "scripts/neural_codec.py",
    "scripts/rd_baselines.py",
    "scripts/ship_baselines.py",
    "tf_hbd/workflows/quickstart.py",  # hbd-quickstart, make quickstart
    "tf_hbd/workflows/reproduce.py",  # hbd-reproduce, scripts/reproduce.py
    "tf_hbd/workflows/study_runner.py",  # scripts/study.py
)


def _catches_keyboard_interrupt(path):
  """Line numbers of the ``except`` clauses of `path` naming
  KeyboardInterrupt (alone or in a tuple)."""
  lines = []
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.ExceptHandler) and node.type is not None:
      names = [n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)]
      if "KeyboardInterrupt" in names:
        lines.append(node.lineno)
  return lines


class InterruptedTest(absltest.TestCase):

  def _run(self, fn, hint=""):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      code = errors.exit_on_interrupt(fn, "prog", hint)
    return code, err.getvalue()

  def test_one_line_and_exit_130(self):
    def ctrl_c():
      raise KeyboardInterrupt

    def stopped():
      raise KeyboardInterrupt("SIGTERM after step 3, checkpoint /c/ckpt-3 "
                              "saved")

    self.assertEqual(self._run(ctrl_c), (130, "prog: interrupted\n"))
    self.assertEqual(self._run(ctrl_c, "rerun to resume"),
                     (130, "prog: interrupted; rerun to resume\n"))
    self.assertEqual(self._run(stopped, "rerun to resume"), (
        130, "prog: interrupted (SIGTERM after step 3, checkpoint "
        "/c/ckpt-3 saved); rerun to resume\n"))
    self.assertEqual(errors.EXIT_INTERRUPTED, 130)

  def test_other_outcomes_pass_through(self):
    self.assertEqual(self._run(lambda: 2), (2, ""))

    def bug():
      raise RuntimeError("bug")

    with self.assertRaises(RuntimeError):  # bugs are not hidden
      self._run(bug)

  def test_interrupt_while_importing_installs_and_releases(self):
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
      self.skipTest("SIGINT is not Python's default here")
    release = errors.interrupt_exits_while_importing("prog")
    try:
      handler = signal.getsignal(signal.SIGINT)
      self.assertIsNot(handler, signal.default_int_handler)
      err = io.StringIO()
      with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as e:
        handler(signal.SIGINT, None)
      self.assertEqual(e.exception.code, 130)
      self.assertEqual(err.getvalue(), "prog: interrupted\n")
    finally:
      release()
    self.assertIs(signal.getsignal(signal.SIGINT), signal.default_int_handler)

  def test_interrupt_while_importing_keeps_an_ignored_sigint(self):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
      errors.interrupt_exits_while_importing("prog")()
      self.assertIs(signal.getsignal(signal.SIGINT), signal.SIG_IGN)
    finally:
      signal.signal(signal.SIGINT, previous)

  def test_every_command_uses_the_one_handler(self):
    for rel in _ENTRY_POINTS:
      text = (_ROOT / rel).read_text()
      self.assertIn("exit_on_interrupt(", text, rel)
    files = sorted([*_ROOT.glob("tf_hbd/**/*.py"), *_ROOT.glob("scripts/*.py"),
                    *_ROOT.glob("benchmarks/*.py")])
    own = {}
    for path in files:
      if path.name.endswith("_test.py") or path.name == "errors.py":
        continue
      lines = _catches_keyboard_interrupt(path)
      if lines:
        own[path.relative_to(_ROOT).as_posix()] = lines
    self.assertEqual(own, {}, "catch KeyboardInterrupt only in "
                              "errors.exit_on_interrupt")


if __name__ == "__main__":
  absltest.main()
