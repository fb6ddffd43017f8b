"""The workflows' training runs as child processes that stop cleanly.

`run(args, log=None)` starts a training command (``python -m
tf_hbd.training ...``) in its own process group, so a Ctrl-C in the terminal
reaches only the workflow, which forwards it to the child, once per signal it
gets; SIGTERM is forwarded too, and SIGHUP (a closed terminal) as SIGTERM.
The child finishes its batch, saves a checkpoint and exits
(`tf_hbd.training.loop.StopSignals`); `run` waits for it and then raises
`ChildStopped`, a `KeyboardInterrupt` that the workflow's one handler
(`tf_hbd.errors.exit_on_interrupt`) turns into exit code 130 and one line
that carries the child's account, e.g. ``quickstart: interrupted (training:
SIGINT after batch N, checkpoint .../ckpt-N saved); rerun ...``. The child's
own "interrupted" line is not repeated. A second signal reaches the child as
a second one: it stops at once. A signal ignored on entry (a job started with
``&``, nohup) stays ignored. The child's stdout goes to `log` (or this
process's stdout), its stderr, line by line, to `log` (or this process's
stderr); bytes that are not text there become U+FFFD.
"""

import re
import signal
import subprocess
import sys
import threading
from typing import Optional, Sequence, TextIO

__all__ = ["ChildStopped", "run", "FORWARDED"]

# Signals forwarded to the child -> the signal it gets.
FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM,
             signal.SIGHUP: signal.SIGTERM}

# The child's line of `tf_hbd.errors.interrupted_line`; group 1: its detail.
_INTERRUPTED = re.compile(r"^\S+: interrupted(?: \((.*)\))?(?:; .*)?$")


class ChildStopped(KeyboardInterrupt):
  """The child stopped after a forwarded signal; the message says what it
  saved (its own words, when it said them)."""


class _Forwarder:
  """Within: the `FORWARDED` signals go to the child (once it exists)."""

  def __init__(self):
    self.proc = None
    self.received = []
    self._early = []  # received while `proc` was None: not sent yet
    self._previous = {}

  def _handle(self, signum, frame):
    # Runs in the main thread between two of its bytecodes, so in `start`
    # before or after the one that publishes `proc`: each signal
    # either finds no child (and waits in `_early`) or is sent here.
    del frame
    self.received.append(signum)
    if self.proc is None:
      self._early.append(signum)
    else:
      self._send(signum)

  def _send(self, signum):
    if self.proc.poll() is None:
      self.proc.send_signal(FORWARDED[signum])

  def start(self, proc):
    """Publishes `proc` and sends it the signals that came before it, each
    once: after `self.proc = proc` the handler sends and `_early` no longer
    grows."""
    self.proc = proc
    for signum in self._early:
      self._send(signum)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in FORWARDED:
        if signal.getsignal(signum) in (signal.SIG_IGN, None):
          continue  # ignored on entry (nohup, `&`): stays ignored
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)


def _relay(proc, out: TextIO, forwarder: _Forwarder, said: list,
           keep_own_line: bool):
  """Copies the child's stderr to `out`; after a forwarded signal, keeps its
  "interrupted" line's detail in `said` (and drops the line unless
  `keep_own_line`). Keeps reading whatever happens to a line (`out` closed,
  unencodable there): an undrained pipe would block the child for good."""
  for line in proc.stderr:
    try:
      match = _INTERRUPTED.match(line.rstrip("\n"))
      if match and forwarder.received:
        said.append(match.group(1) or "")
        if not keep_own_line:
          continue
      out.write(line)
      out.flush()
    except Exception:  # pylint: disable=broad-except
      pass


def run(args: Sequence[str], log: Optional[TextIO] = None) -> int:
  """Runs `args` as a child that stops cleanly with this process.

  Args:
    args: the command (a training run that saves on SIGINT / SIGTERM).
    log: an open file for the child's stdout and stderr (its lines are
      kept there, "interrupted" line included); None: this process's stdout
      and stderr.

  Returns:
    The child's exit code.

  Raises:
    ChildStopped: a signal was forwarded; the child has exited.
  """
  said = []
  with _Forwarder() as forwarder:
    proc = subprocess.Popen(list(args), stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.PIPE, text=True,
                            errors="replace", process_group=0)
    forwarder.start(proc)
    relay = threading.Thread(target=_relay, daemon=True, args=(
        proc, sys.stderr if log is None else log, forwarder, said,
        log is not None))
    relay.start()
    try:
      code = proc.wait()
    finally:
      if proc.poll() is None:  # this process is failing: stop the child too
        proc.terminate()
        proc.wait()
      relay.join()
  if forwarder.received:
    raise ChildStopped(f"training: {said[-1]}" if said and said[-1] else
                       f"training stopped, exit code {code}")
  return code
