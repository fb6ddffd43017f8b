"""Resuming from the newest *intact* checkpoint.

`tf.train.CheckpointManager` trusts its state file (``checkpoints/
checkpoint``): when that file is garbled it silently starts from scratch (and
later overwrites the intact ``ckpt-*`` files), and a damaged data or index
file ends in a raw error; an empty one stops it with a raw error.
`set_aside_unreadable_state` moves such a state file aside (to
``checkpoint.unreadable``, saying so in one line) before a manager reads it;
`restore_newest_intact` then tries the state file's latest checkpoint, then
every ``ckpt-N`` on disk from the newest down, says which ones it skipped and
why, moves the files of each skipped one aside (``ckpt-N.index.damaged``,
...: never deleted, and a later ``ckpt-N`` is written afresh beside them),
repairs the state file, and refuses to start from scratch over checkpoint
files none of which can be read (then nothing is moved). `readable_latest`
is the newest checkpoint named by a state file for readers that must not
write (None when the file is missing or unreadable).

The warnings go to stderr (`warn`) unless the caller passes its own ``log``.
"""

import os
import re
import sys
from typing import Callable, List, Optional, Tuple

import tensorflow as tf

from tf_hbd import errors

__all__ = ["CheckpointError", "restore_newest_intact", "checkpoints_on_disk",
           "set_aside_unreadable_state", "set_aside_damaged",
           "readable_latest", "warn"]

_STATE_FILE = "checkpoint"
_SET_ASIDE_SUFFIX = ".unreadable"
_DAMAGED_SUFFIX = ".damaged"


def warn(line: str) -> None:
  """The default ``log``: one line on stderr."""
  print(line, file=sys.stderr, flush=True)


class CheckpointError(errors.HbdError):
  """Checkpoint files exist but none of them can be restored."""


def checkpoints_on_disk(directory: str, name: str = "ckpt") -> List[str]:
  """Prefixes ``<directory>/<name>-N`` that have an index file, oldest first."""
  if not os.path.isdir(directory):
    return []
  pattern = re.compile(re.escape(name) + r"-(\d+)\.index$")
  found = []
  for entry in os.listdir(directory):
    m = pattern.match(entry)
    if m:
      found.append((int(m.group(1)), os.path.join(directory, entry[:-6])))
  return [p for _, p in sorted(found)]


def _state_readable(directory: str) -> bool:
  """Whether the state file of `directory` parses and names a checkpoint."""
  try:
    state = tf.train.get_checkpoint_state(directory)
  # Empty: ValueError; garbled: None (TF logs a parse error); unreadable
  # bytes: an OpError or UnicodeDecodeError.
  except Exception:  # pylint: disable=broad-except
    return False
  return state is not None and bool(state.model_checkpoint_path)


def readable_latest(directory: str) -> Optional[str]:
  """The newest checkpoint the state file of `directory` names; None when
  it is missing, empty or garbled (never raises, writes nothing)."""
  if not _state_readable(directory):
    return None
  return tf.train.latest_checkpoint(directory)


def set_aside_unreadable_state(directory: str,
                               log: Callable[[str], None] = warn
                               ) -> Optional[str]:
  """Moves an empty or garbled state file of `directory` aside.

  A `tf.train.CheckpointManager` built over such a file either fails with a
  raw error (empty) or starts from scratch and later overwrites the intact
  ``ckpt-*`` files (garbled). The file is renamed to ``checkpoint.unreadable``
  (``.unreadable.1``, ... when taken) and `log` gets one line.

  Args:
    directory: the checkpoint folder.
    log: where the one line goes.

  Returns:
    The new path of the set-aside file, or None when there was nothing to do.
  """
  path = os.path.join(directory, _STATE_FILE)
  if not tf.io.gfile.exists(path) or _state_readable(directory):
    return None
  target = _free_name(path + _SET_ASIDE_SUFFIX)
  tf.io.gfile.rename(path, target)
  intact = len(checkpoints_on_disk(directory))
  log(f"warning: the checkpoint state file {path} is empty or garbled; moved "
      f"it to {target} and looking for the newest intact one of {intact} "
      "checkpoints")
  return target


def _free_name(target: str) -> str:
  """`target`, or ``target.1``, ``target.2``, ... when it is taken."""
  name, n = target, 0
  while tf.io.gfile.exists(name):
    n += 1
    name = f"{target}.{n}"
  return name


def set_aside_damaged(prefix: str) -> List[str]:
  """Renames every file of checkpoint `prefix` (``.index``, ``.data-*``)
  to ``<file>.damaged`` (``.damaged.1``, ... when taken); deletes nothing.

  Afterwards the checkpoint is no longer on disk for `checkpoints_on_disk`
  or a `tf.train.CheckpointManager`, and a new checkpoint of the same number
  does not overwrite the damaged files.

  Returns:
    The new paths, sorted.
  """
  moved = []
  for path in tf.io.gfile.glob(prefix + ".*"):
    if _DAMAGED_SUFFIX in path[len(prefix):]:
      continue  # set aside before
    target = _free_name(path + _DAMAGED_SUFFIX)
    tf.io.gfile.rename(path, target)
    moved.append(target)
  return sorted(moved)


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:300] if text else ""


def restore_newest_intact(checkpoint: tf.train.Checkpoint, directory: str,
                          latest: Optional[str],
                          log: Callable[[str], None] = warn,
                          name: str = "ckpt",
                          repair_state: bool = True,
                          expect_partial: bool = False,
                          written: bool = False
                          ) -> Tuple[Optional[str], bool]:
  """Restores the newest checkpoint that reads back completely.

  Args:
    checkpoint: the object graph to restore into.
    directory: the checkpoint folder (a `CheckpointManager`'s directory).
    latest: the manager's ``latest_checkpoint`` (None when its state file is
      missing or unreadable).
    log: where the one-line warnings go (default: stderr).
    name: the manager's checkpoint name.
    repair_state: once an intact checkpoint is restored, move the files of
      the damaged newer ones aside (`set_aside_damaged`) and rewrite the
      state file to list only the intact checkpoints up to the restored one,
      when it was unreadable or named a damaged checkpoint (the caller
      should then rebuild its manager). False: write nothing.
    expect_partial: `checkpoint` restores only part of what the files hold
      (e.g. the model of a training checkpoint); no warnings about the rest.
    written: the files were written by `tf.train.Checkpoint.write` (no save
      counter): read them with ``read`` instead of ``restore``.

  Returns:
    (restored prefix or None when the folder holds no checkpoint, whether the
    state file was rewritten).

  Raises:
    CheckpointError: checkpoint files exist, but none can be restored (each
      is named in a warning first; nothing is moved or rewritten).
  """
  on_disk = checkpoints_on_disk(directory, name)
  state_path = os.path.join(directory, _STATE_FILE)
  if latest is None and on_disk and os.path.exists(state_path):
    log(f"warning: the checkpoint state file {state_path} is unreadable; "
        f"looking for the newest intact one of {len(on_disk)} checkpoints")
  order = ([latest] if latest else []) + [
      p for p in reversed(on_disk) if not latest or
      os.path.abspath(p) != os.path.abspath(latest)]
  skipped = []  # (prefix, why)
  for prefix in order:
    why = _unreadable(checkpoint, prefix, expect_partial, written)
    if why:
      skipped.append((prefix, why))
      continue
    _report_skipped(skipped, log, move=repair_state)
    repaired = False
    if skipped or latest is None:
      if skipped:
        log(f"falling back to {prefix}, the newest intact checkpoint")
      if repair_state:
        _rewrite_state(directory, prefix, on_disk, [p for p, _ in skipped])
        repaired = True
    return prefix, repaired
  if order:
    _report_skipped(skipped, log, move=False)
    raise CheckpointError(
        f"none of the {len(order)} checkpoints in {directory} can be read "
        f"(newest: {order[0]}); move that folder away to start again from "
        "batch 0, or restore it from a backup")
  return None, False


def _unreadable(checkpoint, prefix, expect_partial, written) -> str:
  """Why `prefix` does not restore into `checkpoint` ('' when it does)."""
  try:
    load = checkpoint.read if written else checkpoint.restore
    status = load(prefix).assert_existing_objects_matched()
    if expect_partial:
      status.expect_partial()
  # Any failure means "not intact": TF reports damage as OpErrors, but
  # also as IndexError, ValueError or AssertionError (object mismatch).
  except Exception as e:  # pylint: disable=broad-except
    return f"{type(e).__name__}: {_first_line(e)}"
  return ""


def _report_skipped(skipped, log, move: bool) -> None:
  """One warning line per damaged checkpoint; with `move`, its files are
  set aside first and the line says where."""
  for prefix, why in skipped:
    where = "trying an older one"
    if move:
      moved = set_aside_damaged(prefix)
      if moved:
        files = "file" if len(moved) == 1 else f"{len(moved)} files"
        where = (f"moved its {files} aside to "
                 f"{prefix}.*{_DAMAGED_SUFFIX} (nothing deleted)")
    log(f"warning: checkpoint {prefix} is damaged or incomplete ({why}); "
        f"{where}")


def _rewrite_state(directory, prefix, on_disk, skipped) -> None:
  """The state file lists the intact checkpoints up to `prefix`, each with
  its time: a `tf.train.CheckpointManager` built over it then keeps track of
  them (deletes them beyond ``max_to_keep``, lists them when it saves);
  without times it would treat them as preserved and forget them."""
  damaged = {os.path.abspath(p) for p in skipped}
  keep = [p for p in on_disk if os.path.abspath(p) not in damaged and
          _number(p) <= _number(prefix)]
  if prefix not in keep:
    keep.append(prefix)
  times = [tf.io.gfile.stat(p + ".index").mtime_nsec / 1e9 for p in keep]
  tf.compat.v1.train.update_checkpoint_state(
      directory, prefix, all_model_checkpoint_paths=keep,
      all_model_checkpoint_timestamps=times, last_preserved_timestamp=0.0)


def _number(prefix: str) -> int:
  m = re.search(r"-(\d+)$", prefix)
  return int(m.group(1)) if m else -1
