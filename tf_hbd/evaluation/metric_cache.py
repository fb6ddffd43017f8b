"""Metrics of image pairs kept on disk, shared by the runs of a study.

Every run of the study scores the codec's own reconstructions of the same
test images at the same rates: the same (original, reconstruction) pairs,
run after run. SSIM and MS-SSIM of a Kodak image cost seconds each
(``benchmarks/study_eval_profile.py``), so `MetricCache` keeps each pair's
metrics in one small JSON file and computes only what is missing.

An entry is addressed by its content, never by what produced it: the key is
the SHA-256 of a version tag (this module's `VERSION` and TensorFlow's
version, whose kernels compute SSIM / MS-SSIM), the metric convention's
8-bit rounding of both images (`tf_hbd.evaluation.metrics.to_uint8`), their
shapes and their bytes. A cached value is therefore the value the metric
function returns on that pair, bit for bit (JSON keeps a float exactly), and
a codec whose output changed simply misses.

Files are ``<directory>/<key[:2]>/<key>.json`` holding ``{"key", "tag",
"metrics": {name: float}}``; they are written through a temporary file of a
unique name renamed over the entry, so concurrent runs (several study
processes) never read a half-written file: at worst two processes both
compute a value and the last rename wins. A file that does not parse, names
another key or tag, or holds a non-float value is ignored and rewritten. A
cache that cannot be written (read-only, full) costs time, never a result.

The default directory is outside the repository: ``$TF_HBD_METRIC_CACHE``,
else ``$XDG_CACHE_HOME/tf_hbd/metrics``, else ``~/.cache/tf_hbd/metrics``
(`tf_hbd.evaluation.disk_cache`, shared with the codec cache). Deleting it is
always safe.
"""

import collections
import hashlib
import json
import os

import numpy as np

from tf_hbd.evaluation import disk_cache
from tf_hbd.evaluation import metrics

__all__ = ["MetricCache", "default_directory", "ENV_VAR", "VERSION"]

ENV_VAR = "TF_HBD_METRIC_CACHE"
# Part of every key: bump it when `tf_hbd.evaluation.metrics` changes what
# a metric computes, so that older entries are no longer found.
VERSION = 1


def default_directory() -> str:
  """``$TF_HBD_METRIC_CACHE``, else the user's cache folder + tf_hbd/metrics."""
  return disk_cache.default_directory("metrics", ENV_VAR)


def _tag() -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return f"tf_hbd metric cache v{VERSION}; TensorFlow {tf.__version__}"


class MetricCache:
  """`tf_hbd.evaluation.metrics.subset` measures backed by a directory.

  Attributes:
    directory: where the entries are.
    hits: {metric name: values read from the cache}.
    computed: {metric name: values computed (and written)}.
    write_errors: entries that could not be written.
  """

  def __init__(self, directory: str):
    self.directory = os.fspath(directory)
    self.hits = collections.Counter()
    self.computed = collections.Counter()
    self.write_errors = 0
    self._tag = _tag()

  def key(self, reference, image) -> str:
    """The content key of the pair (see the module docstring)."""
    h = hashlib.sha256(self._tag.encode())
    for x in (reference, image):
      x = np.ascontiguousarray(metrics.to_uint8(x))
      h.update(f"|{x.dtype.str}{x.shape}|".encode())
      h.update(x.tobytes())
    return h.hexdigest()

  def path(self, key: str) -> str:
    return disk_cache.entry_path(self.directory, key, ".json")

  def subset(self, *names: str):
    """A measure computing `names` like `metrics.subset(*names)`, reading
    each value from the cache when there and writing what it computes."""
    metrics.subset(*names)  # validates the names

    def measure(reference, image) -> dict:
      key = self.key(reference, image)
      got = self._read(key)
      missing = tuple(n for n in names if n not in got)
      for n in names:
        (self.computed if n in missing else self.hits)[n] += 1
      if missing:
        got.update(metrics.subset(*missing)(reference, image))
        self._write(key, got)
      return {n: got[n] for n in names}

    measure.names = tuple(names)
    return measure

  def _read(self, key: str) -> dict:
    """{name: value} of a valid entry, else {}."""
    try:
      with open(self.path(key)) as f:
        doc = json.load(f)
      values = doc["metrics"]
      if (doc["key"] != key or doc["tag"] != self._tag
          or not isinstance(values, dict)
          or not set(values) <= set(metrics.METRIC_NAMES)
          or not all(type(v) is float for v in values.values())):
        return {}
      return dict(values)
    except (OSError, ValueError, KeyError, TypeError):
      return {}

  def _write(self, key: str, values: dict):
    doc = {"key": key, "tag": self._tag,
           "metrics": dict(sorted(values.items()))}
    if not disk_cache.write_atomic(self.path(key),
                                   lambda f: json.dump(doc, f)):
      self.write_errors += 1
