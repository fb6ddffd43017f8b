"""Where the data sets live: the data root, and ``[LABEL=]PATH`` specs.

The library never guesses a folder from the repository's layout or the
working directory. The *data root*, the folder that holds ``train400``,
``bsd68``, ``kodak``, ..., comes from a ``--data_root`` flag or, without one,
from ``$TF_HBD_DATA`` (`data_root`); a setting names a folder below it as
``{data}/kodak`` (`fill`). Scripts run from a checkout may default their flag
to this project's ``../shared/data`` (`with_default`); an installed package
has no default.

  root = roots.data_root(args.data_root)        # flag, else $TF_HBD_DATA
  roots.fill("{data}/kodak", root)              # "/data/kodak"
  roots.split_label("KODAK=/data/kodak")        # ("KODAK", "/data/kodak")
"""

import os
from typing import List, Optional, Sequence, Tuple

from tf_hbd import errors

__all__ = ["ENV", "PLACEHOLDER", "data_root", "fill", "split_label",
           "with_default"]

ENV = "TF_HBD_DATA"
PLACEHOLDER = "{data}"


def data_root(flag_value: Optional[str] = None) -> Optional[str]:
  """The data root: `flag_value` when given, else ``$TF_HBD_DATA``, else
  None (`fill` then refuses a setting that needs one)."""
  return flag_value or os.environ.get(ENV) or None


def fill(text: str, root: Optional[str]) -> str:
  """`text` with ``{data}`` replaced by `root`.

  Raises:
    errors.UsageError: `text` needs a data root and `root` is None.
  """
  if PLACEHOLDER not in text:
    return text
  if not root:
    raise errors.UsageError(
        f"{text!r} is below the data root, and none was given: pass "
        f"--data_root=DIR (the folder of train400, bsd68, kodak) or set "
        f"${ENV}")
  return text.replace(PLACEHOLDER, root)


def with_default(argv: Sequence[str], root: str) -> List[str]:
  """`argv` with ``--data_root=root`` added when it names no data root and
  ``$TF_HBD_DATA`` is unset (a checkout's scripts: their default)."""
  argv = list(argv)
  if os.environ.get(ENV) or any(
      a == "--data_root" or a.startswith("--data_root=") for a in argv):
    return argv
  return argv + [f"--data_root={root}"]


def split_label(spec: str) -> Tuple[str, str]:
  """``[LABEL=]PATH`` -> (LABEL or "", PATH); the last "=" separates them."""
  label, _, path = spec.rpartition("=")
  return label, path
