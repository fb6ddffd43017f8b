"""Tests of tf_hbd.evaluation.metric_cache."""

import glob
import json
import os
import tempfile
from unittest import mock

from absl.testing import absltest
import numpy as np

from tf_hbd.evaluation import metric_cache
from tf_hbd.evaluation import metrics


def _pair(seed, shape=(48, 40)):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 256, shape, dtype=np.uint8)
  return a, np.clip(a + rng.normal(0, 15, shape), 0, 255).astype(np.uint8)


class MetricCacheTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path

  def test_cached_values_are_the_computed_ones_bit_for_bit(self):
    pairs = [_pair(0), _pair(1), (_pair(2)[0], _pair(2)[0])]  # PSNR inf
    want = [metrics.all_metrics(a, b) for a, b in pairs]
    first = metric_cache.MetricCache(self.dir)
    got = [first.subset(*metrics.METRIC_NAMES)(a, b) for a, b in pairs]
    self.assertEqual(json.dumps(got), json.dumps(want))
    self.assertEqual(dict(first.computed), {n: 3 for n in metrics.METRIC_NAMES})
    self.assertEqual(sum(first.hits.values()), 0)
    self.assertLen(glob.glob(os.path.join(self.dir, "*", "*.json")), 3)
    again = metric_cache.MetricCache(self.dir)
    with mock.patch.object(metrics, "ssim", side_effect=AssertionError), \
        mock.patch.object(metrics, "ms_ssim", side_effect=AssertionError):
      got = [again.subset(*metrics.METRIC_NAMES)(a, b) for a, b in pairs]
    self.assertEqual(json.dumps(got), json.dumps(want))
    self.assertEqual(dict(again.hits), {n: 3 for n in metrics.METRIC_NAMES})
    self.assertEqual(sum(again.computed.values()), 0)
    self.assertEqual(glob.glob(os.path.join(self.dir, "*", "*.tmp")), [])

  def test_a_subset_then_more_metrics_of_the_same_pair(self):
    a, b = _pair(3)
    cache = metric_cache.MetricCache(self.dir)
    self.assertEqual(cache.subset("psnr")(a, b), {"psnr": metrics.psnr(a, b)})
    got = cache.subset("ms-ssim", "psnr")(a, b)
    self.assertEqual(got, {"ms-ssim": metrics.ms_ssim(a, b),
                           "psnr": metrics.psnr(a, b)})
    self.assertEqual(list(got), ["ms-ssim", "psnr"])
    self.assertEqual((dict(cache.hits), dict(cache.computed)),
                     ({"psnr": 1}, {"psnr": 1, "ms-ssim": 1}))
    with open(cache.path(cache.key(a, b))) as f:
      self.assertEqual(set(json.load(f)["metrics"]), {"psnr", "ms-ssim"})

  def test_the_key_is_the_content(self):
    cache = metric_cache.MetricCache(self.dir)
    a, b = _pair(4)
    self.assertEqual(cache.key(a, b), cache.key(a.copy(), b.astype(float)))
    self.assertNotEqual(cache.key(a, b), cache.key(b, a))
    c = b.copy()
    c[0, 0] ^= 1
    self.assertNotEqual(cache.key(a, b), cache.key(a, c))
    self.assertNotEqual(cache.key(a, b), cache.key(a.reshape(40, 48),
                                                   b.reshape(40, 48)))
    with mock.patch.object(metric_cache, "VERSION", metric_cache.VERSION + 1):
      self.assertNotEqual(metric_cache.MetricCache(self.dir).key(a, b),
                          cache.key(a, b))

  def test_bad_entries_are_recomputed(self):
    a, b = _pair(5)
    want = metrics.all_metrics(a, b)
    cache = metric_cache.MetricCache(self.dir)
    measure = cache.subset(*metrics.METRIC_NAMES)
    measure(a, b)
    path = cache.path(cache.key(a, b))
    with open(path) as f:
      good = json.load(f)
    bad_docs = ["{not json", json.dumps({**good, "key": "0" * 64}),
                json.dumps({**good, "tag": "another TensorFlow"}),
                json.dumps({**good, "metrics": {**good["metrics"],
                                                "ssim": "0.5"}}),
                json.dumps({**good, "metrics": {"lpips": 0.5}})]
    for doc in bad_docs:
      with open(path, "w") as f:
        f.write(doc)
      fresh = metric_cache.MetricCache(self.dir)
      self.assertEqual(fresh.subset(*metrics.METRIC_NAMES)(a, b), want, doc)
      self.assertEqual(sum(fresh.computed.values()), 3, doc)
      with open(path) as f:
        self.assertEqual(json.load(f), good)

  def test_an_unwritable_cache_still_gives_the_values(self):
    a, b = _pair(6)
    blocker = os.path.join(self.dir, "file")
    with open(blocker, "w") as f:
      f.write("not a folder")
    cache = metric_cache.MetricCache(blocker)
    self.assertEqual(cache.subset("psnr", "ssim")(a, b),
                     {"psnr": metrics.psnr(a, b), "ssim": metrics.ssim(a, b)})
    self.assertEqual(cache.write_errors, 1)

  def test_default_directory_is_outside_the_repository(self):
    with mock.patch.dict(os.environ, {metric_cache.ENV_VAR: "/x/y"}):
      self.assertEqual(metric_cache.default_directory(), "/x/y")
    with mock.patch.dict(os.environ, {metric_cache.ENV_VAR: "",
                                      "XDG_CACHE_HOME": "/c"}):
      self.assertEqual(metric_cache.default_directory(), "/c/tf_hbd/metrics")
    env = {k: v for k, v in os.environ.items()
           if k not in (metric_cache.ENV_VAR, "XDG_CACHE_HOME")}
    with mock.patch.dict(os.environ, env, clear=True):
      self.assertEqual(metric_cache.default_directory(), os.path.join(
          os.path.expanduser("~"), ".cache", "tf_hbd", "metrics"))


if __name__ == "__main__":
  absltest.main()
