"""Command-line argument errors as one line: `ArgumentParser`.

`argparse.ArgumentParser` answers a bad argument with its whole usage block
and then ``<prog>: error: <message>``; a user reads the block and misses the
line that says what is wrong. The parser here prints only that line (plus
where the arguments are listed) on stderr and exits with 2, the exit code of
a usage error in every tf_hbd command (``hbd``, ``scripts/*.py``, the
workflows); ``--help`` still prints the full usage. Sub-command parsers made
with ``add_subparsers`` are of the same class, so they answer the same way.
Standard library only: ``hbd`` parses its arguments before (and often
without) importing TensorFlow.
"""

import argparse
import sys
from typing import NoReturn

__all__ = ["ArgumentParser", "EXIT_USAGE"]

EXIT_USAGE = 2  # as argparse's own, and the absl entry points' (quiet.run_app)


class ArgumentParser(argparse.ArgumentParser):
  """`argparse.ArgumentParser` whose errors are one line (module docstring)."""

  def error(self, message: str) -> NoReturn:
    """Prints ``<prog>: error: <message> (--help lists the arguments)`` on
    stderr and exits with `EXIT_USAGE`."""
    print(f"{self.prog}: error: {message} (--help lists the arguments)",
          file=sys.stderr, flush=True)
    sys.exit(EXIT_USAGE)
