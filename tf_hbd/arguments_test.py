"""Tests of tf_hbd.arguments: one-line argument errors, exit 2."""

import contextlib
import io

from absl.testing import absltest

from tf_hbd import arguments


def _parser():
  p = arguments.ArgumentParser(prog="tool")
  p.add_argument("--n", type=int, default=1)
  sub = p.add_subparsers(dest="command", required=True)
  run = sub.add_parser("run")
  run.add_argument("inputs", nargs="+")
  return p


def _parse(argv):
  """(exit code or None, stdout, stderr) of parsing `argv`."""
  out, err = io.StringIO(), io.StringIO()
  code = None
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      _parser().parse_args(argv)
    except SystemExit as e:
      code = e.code
  return code, out.getvalue(), err.getvalue()


class ArgumentParserTest(absltest.TestCase):

  def test_bad_arguments_are_one_line_and_exit_2(self):
    for argv, message in (
        (["--n=x", "run", "a"], "tool: error: argument --n: invalid int "
         "value: 'x'"),
        (["run", "a", "--bogus"], "tool: error: unrecognized arguments: "
         "--bogus"),
        (["run"], "tool run: error: the following arguments are required: "
         "inputs"),
        (["walk"], "tool: error: argument command: invalid choice: 'walk'"),
        ([], "tool: error: the following arguments are required: command")):
      code, out, err = _parse(argv)
      self.assertEqual(code, 2, msg=argv)
      self.assertEqual(out, "", msg=argv)
      lines = err.splitlines()
      self.assertLen(lines, 1, msg=err)  # no usage block
      self.assertStartsWith(lines[0], message)
      self.assertEndsWith(lines[0], " (--help lists the arguments)")

  def test_good_arguments_and_help_are_unchanged(self):
    args = _parser().parse_args(["--n=3", "run", "a", "b"])
    self.assertEqual((args.n, args.inputs), (3, ["a", "b"]))
    code, out, err = _parse(["--help"])
    self.assertEqual(code, 0)
    self.assertStartsWith(out, "usage: tool")
    self.assertEqual(err, "")


if __name__ == "__main__":
  absltest.main()
