"""What the on-disk caches of the evaluation share: where they live, how an
entry is named and how it is written.

`tf_hbd.evaluation.metric_cache` (metrics of image pairs) and
`tf_hbd.evaluation.codec_cache` (codec round trips) keep one file per entry,
addressed by a SHA-256 content key, as ``<directory>/<key[:2]>/<key><ext>``.
An entry is written to a temporary file of a unique name in the same folder
and renamed over the entry (`write_atomic`), so a reader never sees a
half-written entry, concurrent writers never interleave, and the last rename
wins. Each cache validates what it reads and recomputes anything that does
not check out.

By default the caches are sibling folders of the user's cache folder, outside
the repository: ``$XDG_CACHE_HOME/tf_hbd/<name>``, else
``~/.cache/tf_hbd/<name>``, unless the cache's own environment variable names
a folder. Deleting them is always safe.
"""

import os
import uuid
from typing import Callable

__all__ = ["default_directory", "entry_path", "write_atomic"]


def default_directory(name: str, env_var: str) -> str:
  """``$<env_var>``, else the user's cache folder + ``tf_hbd/<name>``."""
  if os.environ.get(env_var):
    return os.environ[env_var]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "tf_hbd", name)


def entry_path(directory: str, key: str, ext: str) -> str:
  """``<directory>/<key[:2]>/<key><ext>``."""
  return os.path.join(directory, key[:2], key + ext)


def write_atomic(path: str, write: Callable, binary: bool = False) -> bool:
  """Calls ``write(file)`` on a temporary file renamed to `path`.

  Args:
    path: the entry.
    write: fills the open file.
    binary: open the temporary file in binary mode.

  Returns:
    False (and nothing at `path` changed) if the folder or the file could
    not be written (read-only, full): a cache that cannot be written costs
    time, never a result.
  """
  tmp = f"{path}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(tmp, "wb" if binary else "w") as f:
      write(f)
    os.replace(tmp, path)
    return True
  except OSError:
    if os.path.exists(tmp):
      os.remove(tmp)
    return False
