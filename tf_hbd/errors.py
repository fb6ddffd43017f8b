"""Exception types raised by tf_hbd.

Every error that comes from bad *input* (a file, a bitstream, an image, a flag)
is a subclass of `HbdError`, which itself subclasses `ValueError`, so callers can
catch either. Errors always name the offending file when there is one.
"""

__all__ = [
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
