"""Every console script of setup.cfg, and ``python -m`` of the packages that
have a ``__main__``, answers ``--help`` with its flags (each in its own
process, as an installed wheel's wrapper calls it)."""

import configparser
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

from tf_hbd import testing

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def console_scripts(root=_ROOT):
  """{name: (module, function)} of setup.cfg's console_scripts."""
  cfg = configparser.ConfigParser()
  cfg.read(os.path.join(root, "setup.cfg"))
  out = {}
  for line in cfg["options.entry_points"]["console_scripts"].splitlines():
    if line.strip():
      name, target = (s.strip() for s in line.split("=", 1))
      module, function = target.split(":")
      out[name] = (module, function)
  return out


def _env():
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _check_help(test, proc, flag):
  # absl's --help exits 1 (argparse's 0); either way no traceback and the
  # program's own flags listed.
  test.assertIn(proc.returncode, (0, 1), proc.stderr[-2000:])
  test.assertNotIn("Traceback", proc.stderr)
  test.assertIn(flag, proc.stdout + proc.stderr)


def _run(args):
  # Outside the checkout, so that only PYTHONPATH finds the package.
  return subprocess.run([sys.executable, *args], env=_env(), cwd="/",
                        capture_output=True, text=True, timeout=600,
                        check=False)


# (entry point, a flag its --help lists)
_SCRIPT_FLAGS = {"hbd": "enhance", "hbd-train": "--model_dir",
                 "hbd-train-baseline": "--family",
                 "hbd-evaluate": "--datasets", "hbd-quickstart": "--minutes",
                 "hbd-reproduce": "--scale"}
_MODULES = {"tf_hbd.evaluation": "--datasets",
            "tf_hbd.baselines": "--family",
            "tf_hbd.workflows.reproduce": "--scale"}


# (entry point, arguments that reach `import tensorflow`, its Ctrl-C line's
# start). The folder "{tmp}" holds one small JPEG, "x.jpg".
_TF_ARGS = {
    "hbd": (["enhance", "{tmp}/x.jpg", "-o", "{tmp}/out", "--runtime=tf"],
            "hbd: interrupted"),
    "hbd-train": (["--model_dir={tmp}/run"], "train.py: interrupted"),
    "hbd-train-baseline": (["--family=goog", "--train_dir={tmp}",
                            "--checkpoint_dir={tmp}/ckpt",
                            "--export_dir={tmp}/export"],
                           "train_baseline: interrupted"),
    "hbd-evaluate": (["--datasets={tmp}", "--systems=jpeg",
                      "--out_dir={tmp}/eval"], "evaluate: interrupted"),
    "hbd-quickstart": (["--out={tmp}/quick"], "quickstart: interrupted"),
    "hbd-reproduce": (["--out_dir={tmp}/results", "--work_dir={tmp}/runs"],
                      "reproduce: interrupted"),
}
# The absl entry points and the program name of their messages.
_ABSL_PROGRAMS = {"hbd-train": "train.py", "hbd-evaluate": "evaluate",
                  "hbd-train-baseline": "train_baseline"}
# The argparse programs (console scripts and scripts/*.py): the program name
# of their messages and the arguments before an unknown one.
_ARGPARSE_PROGRAMS = {"hbd": ("hbd", ["info", "x.jpg"]),
                      "hbd-quickstart": ("hbd-quickstart", []),
                      "hbd-reproduce": ("hbd-reproduce", []),
                      "scripts/golden.py": ("golden.py", []),
                      "scripts/export_numpy.py": ("export_numpy.py", []),
                      "scripts/study.py": ("study.py", [])}
# Delivers SIGINT exactly while `import tensorflow` starts, wherever the
# program imports it (at the console script's own import line, or later).
_CTRL_C_AT_TF_IMPORT = (
    "import os, signal, sys\n"
    "class CtrlC:\n"
    "  def find_spec(self, name, path=None, target=None):\n"
    "    if name == 'tensorflow':\n"
    "      os.kill(os.getpid(), signal.SIGINT)\n"
    "sys.meta_path.insert(0, CtrlC())\n")


class EntryPointsTest(parameterized.TestCase):

  def test_setup_cfg_lists_the_known_scripts(self):
    self.assertCountEqual(console_scripts(), _SCRIPT_FLAGS)

  @parameterized.parameters(*sorted(_SCRIPT_FLAGS.items()))
  def test_console_script_help(self, name, flag):
    module, function = console_scripts()[name]
    # What pip's generated wrapper does: argv[0] is the script's name.
    code = (f"import sys; sys.argv = [{name!r}, '--help']; "
            f"from {module} import {function} as f; sys.exit(f())")
    _check_help(self, _run(["-c", code]), flag)

  @parameterized.parameters(*sorted(_TF_ARGS))
  def test_ctrl_c_while_tensorflow_loads_is_one_line_exit_130(self, name):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    Image.new("L", (32, 24), 128).save(os.path.join(tmp, "x.jpg"))
    args, line = _TF_ARGS[name]
    module, function = console_scripts()[name]
    code = (_CTRL_C_AT_TF_IMPORT +
            f"sys.argv = [{name!r}, *{[a.format(tmp=tmp) for a in args]!r}]"
            f"\nfrom {module} import {function} as f\nsys.exit(f())\n")
    proc = testing.run_with_terminal_sigint(  # as a terminal delivers it
        [sys.executable, "-c", code], env=_env(), cwd=tmp,
        capture_output=True, text=True, timeout=600, check=False)
    self.assertEqual(proc.returncode, 130, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1, proc.stderr[-2000:])
    self.assertStartsWith(lines[0], line)

  @parameterized.parameters(*sorted(_ABSL_PROGRAMS.items()))
  def test_absl_flag_errors_are_one_line_exit_2(self, name, program):
    module, function = console_scripts()[name]
    code = (f"import sys; sys.argv = [{name!r}, '--no_such_flag=1']; "
            f"from {module} import {function} as f; sys.exit(f())")
    proc = _run(["-c", code])
    self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
    self.assertEqual(proc.stderr.strip().splitlines(), [
        f"{program}: error: Unknown command line flag 'no_such_flag' "
        "(--help lists the flags)"])

  @parameterized.parameters(*sorted(_ARGPARSE_PROGRAMS))
  def test_argparse_errors_are_one_line_exit_2(self, name):
    # tf_hbd.arguments.ArgumentParser: no usage block before the line.
    program, args = _ARGPARSE_PROGRAMS[name]
    args = [*args, "--bogus"]
    if name.endswith(".py"):
      argv = [os.path.join(_ROOT, name), *args]
    else:
      module, function = console_scripts()[name]
      argv = ["-c", f"import sys; sys.argv = [{name!r}, *{args!r}]; "
              f"from {module} import {function} as f; sys.exit(f())"]
    proc = _run(argv)
    self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
    self.assertEqual(proc.stdout, "")
    self.assertEqual(proc.stderr.strip().splitlines(), [
        f"{program}: error: unrecognized arguments: --bogus (--help lists "
        "the arguments)"])

  @parameterized.parameters(*sorted(_MODULES.items()))
  def test_python_m_help(self, module, flag):
    _check_help(self, _run(["-m", module, "--help"]), flag)


if __name__ == "__main__":
  absltest.main()
