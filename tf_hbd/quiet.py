"""Quiet by default: TensorFlow's, absl's and TFDS's log lines off.

Loading TensorFlow prints about nine lines (oneDNN, CUDA, cuDNN/cuFFT/cuBLAS
factories, CPU features, TensorRT) that users read as failures; exporting and
TFDS add more through Python's `logging` / absl. Entry points (`hbd`,
`scripts/*.py`, `tf_hbd.workflows.quickstart`) call `quiet_tensorflow` *before*
TensorFlow is imported; with ``verbose=True`` (their ``--verbose`` flag)
nothing is changed. A ``TF_CPP_MIN_LOG_LEVEL`` set by the user wins.
Progress lines are printed with `print` and are not affected.

TFDS prints its own lines with `print` ("Downloading and preparing dataset
...", "Dataset ... prepared") and progress bars: `tfds_build_output` hides them
around a build in a process made quiet.

`run_app` starts the absl entry points (``hbd-train``, ``hbd-evaluate``,
``hbd-train-baseline``) with their flags listed by ``--help``.
"""

import contextlib
import io
import logging
import os
import sys
import warnings

__all__ = ["quiet_tensorflow", "verbose_in_argv", "tfds_build_output",
           "run_app"]

_STATE = {"quiet": False}  # set by quiet_tensorflow

_NOISY_LOGGERS = ("tensorflow", "absl", "tensorflow_datasets", "h5py",
                  "apache_beam", "jax")


def verbose_in_argv(argv=None) -> bool:
  """True when ``--verbose`` (or ``--verbose=true``) is among the args."""
  argv = sys.argv[1:] if argv is None else argv
  for arg in argv:
    if arg == "--":
      break
    if arg in ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1"):
      return True
  return False


def quiet_tensorflow(verbose: bool = False) -> None:
  """Silences TF's C++ logs (effective only before TF is imported) and the
  Python loggers of TF, absl and TFDS (effective any time).

  Args:
    verbose: if True, do nothing (the user asked for the log lines).
  """
  if verbose:
    _STATE["quiet"] = False
    return
  _STATE["quiet"] = True
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  for name in _NOISY_LOGGERS:
    logging.getLogger(name).setLevel(logging.ERROR)
  warnings.filterwarnings("ignore", module=r"(tensorflow|keras|"
                          r"tensorflow_datasets|absl)(\.|$)")
  if "absl.logging" in sys.modules:
    sys.modules["absl.logging"].set_verbosity("error")


@contextlib.contextmanager
def tfds_build_output():
  """Around a TFDS ``download_and_prepare``: in a process that
  `quiet_tensorflow` made quiet, TFDS's printed lines and progress bars are
  hidden (the caller prints its own progress line); else nothing changes.
  On exit the progress bars are as they were before (off stays off)."""
  if not _STATE["quiet"]:
    yield
    return
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core.utils import tqdm_utils  # pylint: disable=g-import-not-at-top
  # TFDS has no public getter of the setting; its module flag is read.
  before = bool(getattr(tqdm_utils, "_active", True))
  tfds.disable_progress_bar()
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    tfds.display_progress_bar(before)


def run_app(main, module_name: str, argv=None, program: str = "") -> None:
  """`absl.app.run(main, argv)` for an entry point whose flags are defined
  in the module `module_name`: ``--help`` lists them under the program's
  name (a console script's or ``python -m``'s ``sys.argv[0]``). A flag
  error (unknown flag, bad value, missing required flag) is one line on
  stderr and exit 2 (absl prints two and exits 1); a Ctrl-C before ``main``
  takes over is `tf_hbd.errors.interrupted_line` and exit 130. Exits.

  Args:
    main: the absl main.
    module_name: the module defining the flags.
    argv: the arguments (default: `sys.argv`).
    program: the name in the messages (default: ``sys.argv[0]``'s base name).
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tf_hbd import errors  # pylint: disable=g-import-not-at-top
  program = program or os.path.basename(sys.argv[0])
  for flag in flags.FLAGS.get_key_flags_for_module(module_name):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

  def parse(args):
    try:
      return flags.FLAGS(args)
    except flags.Error as e:
      print(f"{program}: error: {e} (--help lists the flags)",
            file=sys.stderr)
      sys.exit(2)

  # app.run exits (main's code); a Ctrl-C before main's own handler: 130.
  sys.exit(errors.exit_on_interrupt(
      lambda: app.run(main, argv, flags_parser=parse), program))
