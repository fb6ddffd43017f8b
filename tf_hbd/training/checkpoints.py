"""Resuming from the newest *intact* checkpoint.

`tf.train.CheckpointManager` trusts its state file (``checkpoints/
checkpoint``): when that file is garbled it silently starts from scratch (and
later overwrites the intact ``ckpt-*`` files), and a damaged data or index
file ends in a raw error; an empty one stops it with a raw error.
`set_aside_unreadable_state` moves such a state file aside (to
``checkpoint.unreadable``, saying so in one line) before a manager reads it;
`restore_newest_intact` then tries the state file's latest checkpoint, then
every ``ckpt-N`` on disk from the newest down, says which ones it skipped and
why, repairs the state file, and refuses to start from scratch over
checkpoint files none of which can be read. `readable_latest` is the newest
checkpoint named by a state file for readers that must not write (None when
the file is missing or unreadable).
"""

import os
import re
from typing import Callable, List, Optional, Tuple

import tensorflow as tf

from tf_hbd import errors

__all__ = ["CheckpointError", "restore_newest_intact", "checkpoints_on_disk",
           "set_aside_unreadable_state", "readable_latest"]

_STATE_FILE = "checkpoint"
_SET_ASIDE_SUFFIX = ".unreadable"


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
                               log: Callable[[str], None] = print
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
  target, n = path + _SET_ASIDE_SUFFIX, 0
  while tf.io.gfile.exists(target):
    n += 1
    target = f"{path}{_SET_ASIDE_SUFFIX}.{n}"
  tf.io.gfile.rename(path, target)
  intact = len(checkpoints_on_disk(directory))
  log(f"warning: the checkpoint state file {path} is empty or garbled; moved "
      f"it to {target} and looking for the newest intact one of {intact} "
      "checkpoints")
  return target


def _first_line(e: BaseException) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:300] if text else ""


def restore_newest_intact(checkpoint: tf.train.Checkpoint, directory: str,
                          latest: Optional[str],
                          log: Callable[[str], None] = print,
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
    log: where the one-line notes go.
    name: the manager's checkpoint name.
    repair_state: rewrite the state file to list only the intact
      checkpoints up to the restored one, when it was unreadable or named a
      damaged checkpoint (the caller should then rebuild its manager).
    expect_partial: `checkpoint` restores only part of what the files hold
      (e.g. the model of a training checkpoint); no warnings about the rest.
    written: the files were written by `tf.train.Checkpoint.write` (no save
      counter): read them with ``read`` instead of ``restore``.

  Returns:
    (restored prefix or None when the folder holds no checkpoint, whether the
    state file was rewritten).

  Raises:
    CheckpointError: checkpoint files exist, but none can be restored.
  """
  on_disk = checkpoints_on_disk(directory, name)
  state_path = os.path.join(directory, _STATE_FILE)
  if latest is None and on_disk and os.path.exists(state_path):
    log(f"warning: the checkpoint state file {state_path} is unreadable; "
        f"looking for the newest intact one of {len(on_disk)} checkpoints")
  order = ([latest] if latest else []) + [
      p for p in reversed(on_disk) if not latest or
      os.path.abspath(p) != os.path.abspath(latest)]
  skipped = []
  for prefix in order:
    try:
      load = checkpoint.read if written else checkpoint.restore
      status = load(prefix).assert_existing_objects_matched()
      if expect_partial:
        status.expect_partial()
    # Any failure means "not intact": TF reports damage as OpErrors, but
    # also as IndexError, ValueError or AssertionError (object mismatch).
    except Exception as e:  # pylint: disable=broad-except
      skipped.append(prefix)
      log(f"warning: checkpoint {prefix} is damaged or incomplete "
          f"({type(e).__name__}: {_first_line(e)}); trying an older one")
      continue
    repaired = False
    if skipped or latest is None:
      if skipped:
        log(f"falling back to {prefix}, the newest intact checkpoint")
      if repair_state:
        keep = [p for p in on_disk if p not in skipped and
                _number(p) <= _number(prefix)]
        if prefix not in keep:
          keep.append(prefix)
        tf.compat.v1.train.update_checkpoint_state(
            directory, prefix, all_model_checkpoint_paths=keep)
        repaired = True
    return prefix, repaired
  if order:
    raise CheckpointError(
        f"none of the {len(order)} checkpoints in {directory} can be read "
        f"(newest: {order[0]}); move that folder away to start again from "
        "batch 0, or restore it from a backup")
  return None, False


def _number(prefix: str) -> int:
  m = re.search(r"-(\d+)$", prefix)
  return int(m.group(1)) if m else -1
