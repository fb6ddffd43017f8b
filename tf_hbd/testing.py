"""Starting a child process as a terminal would: SIGINT at its default.

The suite checks what a command prints when Ctrl-C reaches it, so the child
must take SIGINT as a terminal delivers it. A shell that starts the suite in
the background (``make test &``, CI) leaves SIGINT ignored, and a child
inherits that. Resetting it with ``preexec_fn`` makes `subprocess` fork the
test process itself and run every library's fork handlers in it: grpcio
(loaded by the Apache Beam build tests) then restarts its poller in the child
before ``exec``, and that poller can print ``epoll_wait error: Bad file
descriptor`` into the child's stderr once `subprocess` closes the inherited
descriptors. `popen_with_terminal_sigint` instead catches SIGINT in the
parent for the moment of the start: ``exec`` resets a caught signal to its
default, and `subprocess` starts the child with ``vfork`` (no fork handlers;
CPython 3.10+ on Linux, when no ``preexec_fn``, ``user``, ``group`` or
``extra_groups`` is given).
"""

import contextlib
import signal
import subprocess
import threading

__all__ = ["terminal_sigint", "popen_with_terminal_sigint",
           "run_with_terminal_sigint"]

# One start at a time changes the parent's handler; reentrant, so a start
# inside an open `terminal_sigint` does not wait for itself.
_LOCK = threading.RLock()


@contextlib.contextmanager
def terminal_sigint():
  """While open, children started by `subprocess` (without ``preexec_fn``)
  take SIGINT at its default. Main thread only (Python's `signal` rule)."""
  with _LOCK:
    before = signal.getsignal(signal.SIGINT)
    changed = before is signal.SIG_IGN
    if changed:
      signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
      yield
    finally:
      if changed:
        signal.signal(signal.SIGINT, before)


def popen_with_terminal_sigint(args, **kwargs) -> subprocess.Popen:
  """`subprocess.Popen(args, **kwargs)` with SIGINT at its default in the
  child."""
  if "preexec_fn" in kwargs:
    raise ValueError("preexec_fn forks the parent; see the module docstring")
  with terminal_sigint():
    return subprocess.Popen(args, **kwargs)


def run_with_terminal_sigint(args, **kwargs) -> subprocess.CompletedProcess:
  """`subprocess.run(args, **kwargs)` with SIGINT at its default in the
  child (the parent's handler is restored once the child has started)."""
  timeout = kwargs.pop("timeout", None)
  check = kwargs.pop("check", False)
  data = kwargs.pop("input", None)
  if data is not None:
    if "stdin" in kwargs:
      raise ValueError("stdin and input arguments may not both be used.")
    kwargs["stdin"] = subprocess.PIPE
  if kwargs.pop("capture_output", False):
    if "stdout" in kwargs or "stderr" in kwargs:
      raise ValueError("stdout and stderr arguments may not be used "
                       "with capture_output.")
    kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
  with popen_with_terminal_sigint(args, **kwargs) as child:
    try:
      out, err = child.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
      child.kill()
      child.wait()
      raise
    except BaseException:  # as subprocess.run: no child outlives the call
      child.kill()
      raise
  result = subprocess.CompletedProcess(args, child.returncode, out, err)
  if check:
    result.check_returncode()
  return result
