"""Exception types raised by tf_hbd, and the one handler of Ctrl-C.

Every error that comes from bad *input* (a file, a bitstream, an image, a flag)
is a subclass of `HbdError`, which itself subclasses `ValueError`, so callers can
catch either. Errors always name the offending file when there is one.

Ctrl-C (SIGINT), or SIGTERM where a training loop catches it, ends every
command (``hbd``, ``train.py`` / ``hbd-train``, ``hbd-evaluate``,
``hbd-train-baseline``, ``scripts/baseline_campaign.py``, the workflows
``hbd-quickstart``, ``hbd-reproduce``, ``scripts/study.py``) through
`exit_on_interrupt`: no traceback, exit code `EXIT_INTERRUPTED` (130) and one
line on stderr::

  <program>: interrupted[ (<what the run saved>)][; <what to do>]

The part in parentheses is the `KeyboardInterrupt`'s message when it has one
(a training loop's `tf_hbd.training.loop.Stopped`: the signal, the step and
the checkpoint saved).

An entry point's module imports TensorFlow before its ``main`` (and so its
`exit_on_interrupt`) runs, inside a console script's own ``import`` line:
`interrupt_exits_while_importing` makes a Ctrl-C there the same one line and
exit code (it raises `SystemExit`, which the import passes up without a
traceback) until the module releases it at the end of its imports.
"""

import signal
import sys
import threading
from typing import Callable

__all__ = [
    "EXIT_INTERRUPTED",
    "interrupted_line",
    "exit_on_interrupt",
    "interrupt_exits_while_importing",
    "HbdError",
    "ImageReadError",
    "CodecError",
    "BitstreamError",
    "ResourceLimitError",
    "UsageError",
]


class HbdError(ValueError):
  """Base class of all input errors raised by tf_hbd."""


class ImageReadError(HbdError):
  """An image file is missing, empty, truncated, corrupt or not an image."""

  def __init__(self, path, reason):
    self.path = str(path)
    self.reason = str(reason)
    super().__init__(f"cannot read image {self.path!r}: {self.reason}")


class CodecError(HbdError):
  """A codec could not encode or decode (bad parameters or bad bytes)."""


class BitstreamError(CodecError):
  """A compressed bitstream is truncated, corrupt or of the wrong format."""


class ResourceLimitError(HbdError):
  """A request would exceed a memory/size budget; the message has the estimate."""


class UsageError(HbdError):
  """A command-line flag or argument is invalid (exit code 2)."""


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


def interrupted_line(program: str, exc: BaseException = None,
                     hint: str = "") -> str:
  """The one line a command prints when interrupted (module docstring).

  Args:
    program: the command's name, e.g. "hbd" or "train.py".
    exc: the `KeyboardInterrupt`; its message, if any, goes in parentheses.
    hint: what the user can do next (e.g. rerun to resume); may be empty.

  Returns:
    The line, without a newline.
  """
  detail = str(exc) if exc is not None and exc.args else ""
  return (f"{program}: interrupted" + (f" ({detail})" if detail else "")
          + (f"; {hint}" if hint else ""))


def exit_on_interrupt(fn: Callable[[], int], program: str,
                      hint: str = "") -> int:
  """``fn()``'s exit code; on `KeyboardInterrupt`, `interrupted_line` on
  stderr and `EXIT_INTERRUPTED`.

  Args:
    fn: the command's work; returns its exit code.
    program: the command's name for the message.
    hint: what to do next, for the message.

  Returns:
    ``fn()``'s return value, or 130 when interrupted.
  """
  try:
    return fn()
  except KeyboardInterrupt as e:
    print(interrupted_line(program, e, hint), file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def interrupt_exits_while_importing(program: str) -> Callable[[], None]:
  """Until the returned function is called, Ctrl-C prints `interrupted_line`
  and exits with `EXIT_INTERRUPTED` (module docstring).

  Only where SIGINT has Python's default handler, in the main thread: an
  ignored SIGINT (a command started in the background) stays ignored.

  Args:
    program: the command's name for the message.

  Returns:
    The release: restores the default handler (call it once the module's
    imports are done; it does nothing when the handler was not installed).
  """
  if (threading.current_thread() is not threading.main_thread()
      or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
    return lambda: None

  def handler(signum, frame):
    del signum, frame
    print(interrupted_line(program), file=sys.stderr, flush=True)
    raise SystemExit(EXIT_INTERRUPTED)

  signal.signal(signal.SIGINT, handler)

  def release():
    if signal.getsignal(signal.SIGINT) is handler:
      signal.signal(signal.SIGINT, signal.default_int_handler)

  return release
