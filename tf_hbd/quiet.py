"""Quiet by default: TensorFlow's, absl's and TFDS's log lines off.

Loading TensorFlow prints about nine lines (oneDNN, CUDA, cuDNN/cuFFT/cuBLAS
factories, CPU features, TensorRT) that users read as failures; exporting and
TFDS add more through Python's `logging` / absl. Entry points (`hbd`,
`scripts/*.py`, `tf_hbd.workflows.quickstart`) call `quiet_tensorflow` *before*
TensorFlow is imported; with ``verbose=True`` (their ``--verbose`` flag)
nothing is changed. A ``TF_CPP_MIN_LOG_LEVEL`` set by the user wins.
Progress lines are printed with `print` and are not affected.
"""

import logging
import os
import sys
import warnings

__all__ = ["quiet_tensorflow", "verbose_in_argv"]

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
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  for name in _NOISY_LOGGERS:
    logging.getLogger(name).setLevel(logging.ERROR)
  warnings.filterwarnings("ignore", module=r"(tensorflow|keras|"
                          r"tensorflow_datasets|absl)(\.|$)")
  if "absl.logging" in sys.modules:
    sys.modules["absl.logging"].set_verbosity("error")
