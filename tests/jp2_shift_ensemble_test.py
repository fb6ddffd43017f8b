"""benchmarks/jp2_shift_ensemble.py: cached model passes are never reused
for other weights, guards or runtime code."""

import importlib.util
import os
import shutil

from absl.testing import absltest
import numpy as np

from tf_hbd.inference import numpy_serving

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SPEC = importlib.util.spec_from_file_location(
    "jp2_shift_ensemble",
    os.path.join(_ROOT, "benchmarks", "jp2_shift_ensemble.py"))
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


class _Model:
  """What PassCache touches of a NumpyModel: its block pass and metadata."""

  def __init__(self, value):
    self.metadata = {"flat_guard": True}
    self.calls = 0
    self.value = value

  def _refine_blocks(self, gray, k, setting):
    del k, setting
    self.calls += 1  # counts the passes not served from the cache
    return np.full(gray.shape, self.value, np.float32)


class PassCacheTest(absltest.TestCase):

  def test_identity_follows_the_weights_not_the_card_or_guards(self):
    src = numpy_serving.pretrained_dir("jp2")
    copy = os.path.join(self.create_tempdir().full_path, "m")
    shutil.copytree(src, copy)
    first = bench.model_identity(copy)
    with open(os.path.join(copy, "MODEL.md"), "a") as f:
      f.write("\nanother line\n")
    self.assertEqual(bench.model_identity(copy), first)
    with open(os.path.join(copy, "hbd_model.json"), "a") as f:
      f.write(" ")  # e.g. other guard thresholds: applied after the pass
    self.assertEqual(bench.model_identity(copy), first)
    weights = os.path.join(copy, "variables",
                           "variables.data-00000-of-00001")
    with open(weights, "r+b") as f:  # other weights
      byte = f.read(1)
      f.seek(0)
      f.write(bytes([byte[0] ^ 1]))
    self.assertNotEqual(bench.model_identity(copy), first)

  def test_a_pass_is_reused_only_for_the_same_model(self):
    folder = self.create_tempdir().full_path
    gray = np.zeros((16, 16), np.uint8)
    a = _Model(1.0)
    bench.PassCache(a, folder, "a" * 40)
    a._refine_blocks(gray, 4, None)
    a._refine_blocks(gray, 4, None)
    self.assertEqual(a.calls, 1)  # the second came from the cache
    b = _Model(2.0)
    bench.PassCache(b, folder, "b" * 40)
    out = b._refine_blocks(gray, 4, None)
    self.assertEqual(b.calls, 1)
    self.assertEqual(float(out[0, 0]), 2.0)  # not model a's cached pass


if __name__ == "__main__":
  absltest.main()
