"""Every console script of setup.cfg, and ``python -m`` of the packages that
have a ``__main__``, answers ``--help`` with its flags (each in its own
process, as an installed wheel's wrapper calls it)."""

import configparser
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

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

  @parameterized.parameters(*sorted(_MODULES.items()))
  def test_python_m_help(self, module, flag):
    _check_help(self, _run(["-m", module, "--help"]), flag)


if __name__ == "__main__":
  absltest.main()
