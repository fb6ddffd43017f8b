"""Tests of the places_patches builder on dummy data.

dummy_data/ mirrors the documented layout: places365/data_large/ (extracted,
two JPEGs of 40x56 and 48x40 -> 40x40 after the square crop), places365/
val_large.tar (the archive, two JPEGs -> 40x40), raise/ (three TIFFs that
crop to 48x48; one is held out for validation). Images smaller than the
configured side are not upsampled, so the blocks per image are
ceil(40/d)^2 (Places) and ceil(48/d)^2 (RAISE), each image one tile record.
"""

import collections
import os
import shutil
import tarfile

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_builders import testing
from data_builders.places_patches import places_patches_dataset_builder
from tf_hbd.data import blocks_dataset

Builder = places_patches_dataset_builder.Builder
PlacesConfig = places_patches_dataset_builder.PlacesConfig
_DUMMY = os.path.join(os.path.dirname(__file__), "dummy_data")


_IMAGES = {"train": 4, "validation": 3}


class JpegTest(testing.BlocksBuilderTestCase):
  DATASET_CLASS = Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["jpeg"]
  SPLITS = _IMAGES
  BLOCKS = {"train": 2 * 25 + 2 * 36, "validation": 2 * 25 + 36}


class Jp2Test(testing.BlocksBuilderTestCase):
  DATASET_CLASS = Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["jp2"]
  SPLITS = _IMAGES
  BLOCKS = {"train": 4, "validation": 3}


class Jp2SmallTest(testing.BlocksBuilderTestCase):
  DATASET_CLASS = Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["jp2_16"]
  SPLITS = _IMAGES
  BLOCKS = {"train": 2 * 9 + 2 * 9, "validation": 3 * 9}


def _build(data_dir, manual_dir, config="jpeg"):
  builder = Builder(data_dir=data_dir, config=config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir))
  return builder


def _examples(builder, split):
  return sorted(tfds.as_numpy(builder.as_dataset(split=split)),
                key=lambda e: (e["image_id"], tuple(e["tile"])))


class PlacesLayoutTest(tf.test.TestCase):

  def test_square_sizes_and_ids(self):
    config = PlacesConfig(name="small", places_size=32, raise_size=40)
    builder = _build(self.get_temp_dir(), _DUMMY, config)
    shapes = collections.defaultdict(set)
    for split in ("train", "validation"):
      for ex in tfds.as_numpy(builder.as_dataset(split=split)):
        shapes[ex["image_id"].decode().split("/")[0]].add(
            tuple(ex["image_shape"]))
    self.assertEqual(shapes, {"places365": {(32, 32)}, "raise": {(40, 40)}})
    self.assertEqual(builder.info.metadata["images"], {
        "places365_train": 2, "raise_train": 2, "places365_validation": 2,
        "raise_validation": 1})

  def test_archive_and_extracted_folder_give_the_same_examples(self):
    # Swap the layouts: train as an archive, validation extracted.
    manual = os.path.join(self.get_temp_dir(), "manual")
    shutil.copytree(os.path.join(_DUMMY, "raise"),
                    os.path.join(manual, "raise"))
    places = os.path.join(manual, "places365")
    os.makedirs(places)
    with tarfile.open(os.path.join(places,
                                   "train_large_places365standard.tar"),
                      "w") as tar:
      tar.add(os.path.join(_DUMMY, "places365", "data_large"), "data_large")
    with tarfile.open(os.path.join(_DUMMY, "places365", "val_large.tar")) as t:
      t.extractall(places)
    swapped = _build(os.path.join(self.get_temp_dir(), "a"), manual)
    reference = _build(os.path.join(self.get_temp_dir(), "b"), _DUMMY)
    for split in ("train", "validation"):
      got, want = _examples(swapped, split), _examples(reference, split)
      self.assertLen(got, len(want))
      for g, w in zip(got, want):
        self.assertEqual(g.keys(), w.keys())
        for k in g:
          np.testing.assert_array_equal(g[k], w[k], err_msg=k)

  def test_sample_sizes_are_respected(self):
    config = PlacesConfig(name="capped", places_train_images=1,
                          places_validation_images=1, raise_train_images=1,
                          raise_validation_images=1)
    builder = _build(self.get_temp_dir(), _DUMMY, config)
    self.assertEqual(builder.info.metadata["images"], {
        "places365_train": 1, "raise_train": 1, "places365_validation": 1,
        "raise_validation": 1})
    ids = {ex["image_id"] for ex in
           tfds.as_numpy(builder.as_dataset(split="train"))}
    self.assertLen(ids, 2)

  def test_raise_is_optional(self):
    manual = os.path.join(self.get_temp_dir(), "manual")
    shutil.copytree(os.path.join(_DUMMY, "places365"),
                    os.path.join(manual, "places365"))
    builder = _build(self.get_temp_dir(), manual)
    self.assertEqual(builder.info.metadata["blocks_per_split"],
                     {"train": 2 * 25, "validation": 2 * 25})
    self.assertEqual(builder.info.metadata["sources"]["raise"], 0)

  def test_missing_manual_dir_names_expected_layout(self):
    missing = os.path.join(self.get_temp_dir(), "nowhere")
    with self.assertRaisesRegex(
        blocks_dataset.ManualDataError,
        "nowhere(.|\n)*MANUAL_DIR/places365/train_large_places365standard"
    ) as caught:
      _build(self.get_temp_dir(), missing)
    message = str(caught.exception)
    self.assertEqual(message.count("MANUAL_DIR/places365/val_large.tar"), 1,
                     message)  # the instructions once, not twice
    self.assertIsNone(caught.exception.__cause__)
    self.assertTrue(caught.exception.__suppress_context__)

  def test_wrong_layout_names_the_expected_paths(self):
    manual = os.path.join(self.get_temp_dir(), "manual")
    shutil.copytree(os.path.join(_DUMMY, "raise"),
                    os.path.join(manual, "raise"))
    os.makedirs(os.path.join(manual, "places365", "val_large"))
    with self.assertRaisesRegex(
        blocks_dataset.ManualDataError,
        f"training images: one of {manual}/places365/data_large"):
      _build(self.get_temp_dir(), manual)


  def test_empty_places_folder_names_it_and_what_to_do(self):
    manual = os.path.join(self.get_temp_dir(), "manual")
    shutil.copytree(os.path.join(_DUMMY, "places365"),
                    os.path.join(manual, "places365"))
    shutil.rmtree(os.path.join(manual, "places365", "data_large"))
    os.makedirs(os.path.join(manual, "places365", "data_large"))
    with self.assertRaises(blocks_dataset.ManualDataError) as caught:
      _build(self.get_temp_dir(), manual)
    self.assertEqual(str(caught.exception).splitlines()[0], (
        f"{manual}/places365/data_large: no images in it; put the Places365 "
        "images there (or its archive beside it) as laid out below"))


class SamplingTest(tf.test.TestCase):

  def _items(self, n):
    return [blocks_dataset.ImageItem(f"raise/r{i:05d}.tif", "", -1, -1, 0)
            for i in range(n)]

  def test_raise_split_follows_paper_ratio(self):
    items = self._items(8168)
    train, val = places_patches_dataset_builder.split_raise(items, 7168, 1000,
                                                            seed=0)
    self.assertLen(train, 7168)
    self.assertLen(val, 1000)
    self.assertEmpty({i.image_id for i in train} & {i.image_id for i in val})

  def test_raise_split_small_and_seeded(self):
    items = self._items(10)
    train, val = places_patches_dataset_builder.split_raise(items, 7168, 1000,
                                                            seed=0)
    self.assertLen(val, 1)
    self.assertLen(train, 9)
    again = places_patches_dataset_builder.split_raise(items[::-1], 7168,
                                                       1000, seed=0)
    self.assertEqual(val, again[1])
    vals = {places_patches_dataset_builder.split_raise(items, 7168, 1000,
                                                       seed=s)[1][0]
            for s in range(20)}
    self.assertGreater(len(vals), 3)

  def test_sample_is_order_independent(self):
    items = self._items(100)
    a = places_patches_dataset_builder.sample(items, 10, 3, "x")
    b = places_patches_dataset_builder.sample(items[::-1], 10, 3, "x")
    self.assertEqual(a, b)
    self.assertLen(a, 10)
    self.assertNotEqual(a, places_patches_dataset_builder.sample(items, 10, 4,
                                                                 "x"))


if __name__ == "__main__":
  tfds.testing.test_main()
