"""Tests of tf_hbd.evaluation.codec_cache (and disk_cache, which it shares
with tf_hbd.evaluation.metric_cache)."""

import glob
import json
import os
from unittest import mock

from absl.testing import absltest
import numpy as np

from tf_hbd.codecs import legacy
from tf_hbd.evaluation import codec_cache
from tf_hbd.evaluation import disk_cache
from tf_hbd.evaluation import metric_cache


def _image(seed, shape=(48, 40)):
  """A smooth gradient plus noise (codes to a few hundred bytes)."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:shape[0], :shape[1]]
  return np.clip(2 * x + 3 * y + rng.normal(0, 8, shape), 0,
                 255).astype(np.uint8)


# (codec, setting) of the round trips the tests cache
_CASES = (("jpeg", {"bpp": 1.0}), ("jp2", {"bpp": 0.5}),
          ("jpeg", {"quality": 40}), ("jp2", {"quality": 20.0}))


class RoundTripCacheTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path

  def _assert_same(self, got, want, msg=None):
    self.assertTrue(np.array_equal(got[0], want[0]), msg)
    self.assertEqual(got[0].dtype, np.uint8, msg)
    self.assertEqual(got[1], want[1], msg)  # bytes, shape, setting, target
    self.assertEqual(type(got[1].setting), type(want[1].setting), msg)
    self.assertEqual(got[1].bpp, want[1].bpp, msg)

  def test_cached_round_trips_are_the_coded_ones(self):
    img = _image(0)
    want = [legacy.roundtrip(img, c, **s) for c, s in _CASES]
    first = codec_cache.RoundTripCache(self.dir)
    for (c, s), w in zip(_CASES, want):
      self._assert_same(first.roundtrip(img, c, **s), w, c)
    self.assertEqual((first.hits, first.computed, first.write_errors),
                     (0, 4, 0))
    self.assertLen(glob.glob(os.path.join(self.dir, "*", "*.npz")), 4)
    again = codec_cache.RoundTripCache(self.dir)
    with mock.patch.object(legacy, "roundtrip", side_effect=AssertionError):
      for (c, s), w in zip(_CASES, want):
        self._assert_same(again.roundtrip(img, c, **s), w, c)
    self.assertEqual((again.hits, again.computed), (4, 0))
    self.assertEqual(glob.glob(os.path.join(self.dir, "*", "*.tmp")), [])

  def test_the_key_is_the_content_codec_setting_and_versions(self):
    cache = codec_cache.RoundTripCache(self.dir)
    img = _image(1)
    key = cache.key(img, "jp2", bpp=0.5)
    self.assertEqual(key, cache.key(img.copy(), "jp2", bpp=0.5))
    other = img.copy()
    other[0, 0] ^= 1
    for k in (cache.key(other, "jp2", bpp=0.5),
              cache.key(img, "jpeg", bpp=0.5),
              cache.key(img, "jp2", bpp=0.25),
              cache.key(img, "jp2", quality=0.5),
              cache.key(img.reshape(40, 48), "jp2", bpp=0.5)):
      self.assertNotEqual(k, key)
    with mock.patch.object(codec_cache, "VERSION", codec_cache.VERSION + 1):
      self.assertNotEqual(
          codec_cache.RoundTripCache(self.dir).key(img, "jp2", bpp=0.5), key)
    for lib in ("Pillow", "OpenJPEG", "libjpeg", "legacy.py"):
      self.assertIn(lib, cache._tag)  # pylint: disable=protected-access

  def test_bad_entries_are_coded_again(self):
    img = _image(2)
    want = legacy.roundtrip(img, "jp2", bpp=0.5)
    cache = codec_cache.RoundTripCache(self.dir)
    cache.roundtrip(img, "jp2", bpp=0.5)
    path = cache.path(cache.key(img, "jp2", bpp=0.5))
    with open(path, "rb") as f:
      good = f.read()
    with np.load(path) as z:
      arrays = dict(z)
    meta = json.loads(str(arrays["meta"]))
    flipped = arrays["decoded"].copy()
    flipped[0, 0] ^= 1

    def npz(**changes):
      doc = {**arrays, **changes}
      if isinstance(doc["meta"], dict):
        doc["meta"] = np.array(json.dumps(doc["meta"]))
      with open(path, "wb") as f:
        np.savez(f, **doc)

    bad = {"garbage": lambda: open(path, "wb").write(b"not a zip"),
           "truncated": lambda: open(path, "wb").write(good[:len(good) // 2]),
           "empty": lambda: open(path, "wb").close(),
           "another key": lambda: npz(meta={**meta, "key": "0" * 64}),
           "another tag": lambda: npz(meta={**meta, "tag": "Pillow 1"}),
           "a changed pixel": lambda: npz(decoded=flipped),
           "a cut bitstream": lambda: npz(data=arrays["data"][:-1]),
           "a setting as text": lambda: npz(meta={**meta, "setting": "16"}),
           "no meta": lambda: npz(meta=np.array("{}"))}
    for name, damage in bad.items():
      damage()
      fresh = codec_cache.RoundTripCache(self.dir)
      self._assert_same(fresh.roundtrip(img, "jp2", bpp=0.5), want, name)
      self.assertEqual((fresh.hits, fresh.computed), (0, 1), name)
      again = codec_cache.RoundTripCache(self.dir)
      self._assert_same(again.roundtrip(img, "jp2", bpp=0.5), want, name)
      self.assertEqual(again.hits, 1, name)  # rewritten whole

  def test_an_unwritable_cache_still_gives_the_round_trip(self):
    img = _image(3)
    blocker = os.path.join(self.dir, "file")
    with open(blocker, "w") as f:
      f.write("not a folder")
    cache = codec_cache.RoundTripCache(blocker)
    self._assert_same(cache.roundtrip(img, "jpeg", bpp=1.0),
                      legacy.roundtrip(img, "jpeg", bpp=1.0))
    self.assertEqual((cache.computed, cache.write_errors), (1, 1))

  def test_default_directories_are_siblings_outside_the_repository(self):
    env = {k: v for k, v in os.environ.items()
           if k not in (codec_cache.ENV_VAR, metric_cache.ENV_VAR,
                        "XDG_CACHE_HOME")}
    with mock.patch.dict(os.environ, env, clear=True):
      self.assertEqual(codec_cache.default_directory(), os.path.join(
          os.path.expanduser("~"), ".cache", "tf_hbd", "codecs"))
      self.assertEqual(os.path.dirname(codec_cache.default_directory()),
                       os.path.dirname(metric_cache.default_directory()))
    with mock.patch.dict(os.environ, {codec_cache.ENV_VAR: "",
                                      "XDG_CACHE_HOME": "/c"}):
      self.assertEqual(codec_cache.default_directory(), "/c/tf_hbd/codecs")
    with mock.patch.dict(os.environ, {codec_cache.ENV_VAR: "/x/y"}):
      self.assertEqual(codec_cache.default_directory(), "/x/y")


class DiskCacheTest(absltest.TestCase):

  def test_write_atomic_replaces_whole_or_not_at_all(self):
    d = self.create_tempdir().full_path
    path = disk_cache.entry_path(d, "ab" + "0" * 62, ".json")
    self.assertEqual(path, os.path.join(d, "ab", "ab" + "0" * 62 + ".json"))
    self.assertTrue(disk_cache.write_atomic(path, lambda f: f.write("one")))

    def fails(f):
      f.write("half")
      raise OSError("disk full")

    self.assertFalse(disk_cache.write_atomic(path, fails))
    with open(path) as f:
      self.assertEqual(f.read(), "one")
    self.assertEqual(os.listdir(os.path.dirname(path)),
                     [os.path.basename(path)])


if __name__ == "__main__":
  absltest.main()
