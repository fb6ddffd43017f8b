"""Tests of the folder_patches builder (any folder of images)."""

import os
import shutil

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data_builders import testing
from data_builders.folder_patches import folder_patches_dataset_builder
from tf_hbd.data import blocks_dataset
from tf_hbd.codecs import images

Builder = folder_patches_dataset_builder.Builder
_DUMMY = os.path.join(os.path.dirname(__file__), "dummy_data")


class JpegTest(testing.BlocksBuilderTestCase):
  """dummy_data: train/{a.png 30x40, c.jpg 33x17 RGB, sub/b.png 20x28 16-bit},
  validation/d.png 24x24; each image is one tile record."""
  DATASET_CLASS = Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["jpeg"]
  SPLITS = {"train": 3, "validation": 1}
  BLOCKS = {"train": 20 + 15 + 12, "validation": 9}


class Jp2Test(testing.BlocksBuilderTestCase):
  DATASET_CLASS = Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["jp2"]
  SPLITS = {"train": 3, "validation": 1}
  BLOCKS = {"train": 3, "validation": 1}


class Jp2SmallTest(testing.BlocksBuilderTestCase):
  DATASET_CLASS = Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["jp2_16"]
  SPLITS = {"train": 3, "validation": 1}
  BLOCKS = {"train": 6 + 6 + 4, "validation": 4}


class TiledJpegTest(testing.BlocksBuilderTestCase):
  """A custom config with tiles of at most 2 x 2 patches: many records."""
  DATASET_CLASS = Builder
  BUILDER_CONFIG_NAMES_TO_TEST = [blocks_dataset.BlocksConfig(name="jpeg_t2",
                                                              tile=2)]
  # a 4x5 grid -> 2 x 3 tiles, 5x3 -> 3 x 2, 3x4 -> 2 x 2; 3x3 -> 2 x 2
  SPLITS = {"train": 6 + 6 + 4, "validation": 4}
  BLOCKS = {"train": 20 + 15 + 12, "validation": 9}


def _build(data_dir, manual_dir, config="jpeg", **kwargs):
  builder = Builder(data_dir=data_dir, config=config)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, **kwargs))
  return builder


class FolderLayoutTest(tf.test.TestCase):

  def test_flat_folder_is_one_split_with_relative_ids(self):
    builder = _build(self.get_temp_dir(), os.path.join(_DUMMY, "train"))
    self.assertEqual(set(builder.info.splits.keys()), {"train"})
    ids = {ex["image_id"].decode() for ex in
           tfds.as_numpy(builder.as_dataset(split="train"))}
    self.assertEqual(ids, {"a.png", "c.jpg", "sub/b.png"})

  def test_custom_config_names_the_split(self):
    config = blocks_dataset.BlocksConfig(name="val_jpeg", split="validation")
    builder = _build(self.get_temp_dir(), os.path.join(_DUMMY, "validation"),
                     config=config)
    self.assertEqual(dict(builder.info.splits.items()).keys(), {"validation"})
    self.assertEqual(builder.info.metadata["blocks_per_split"],
                     {"validation": 9})

  def test_records_reassemble_to_their_images(self):
    builder = _build(self.get_temp_dir(), _DUMMY)
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    rebuilt = blocks_dataset.reassemble(examples)
    self.assertLen(rebuilt, 3)
    for image_id, (original, decoded) in rebuilt.items():
      source = images.load_image(os.path.join(_DUMMY, image_id))
      # Targets are the original pixels (16-bit: round(v / 257)).
      np.testing.assert_array_equal(original, source.gray)
      # The context holds the codec's output: lossy but close, at the
      # achieved rate that every example of the image records.
      self.assertEqual(decoded.shape, source.gray.shape)
      self.assertFalse(np.array_equal(decoded, source.gray))
      bpps = {float(e["bpp"]) for e in examples
              if e["image_id"].decode() == image_id}
      self.assertLen(bpps, 1)
    self.assertEqual(rebuilt["train/sub/b.png"][0].dtype, np.uint8)

  def test_missing_manual_dir_names_expected_layout(self):
    missing = os.path.join(self.get_temp_dir(), "nowhere")
    with self.assertRaisesRegex(blocks_dataset.ManualDataError,
                                "nowhere(.|\n)*DIR/train/") as caught:
      _build(self.get_temp_dir(), missing)
    self.assertEqual(str(caught.exception).splitlines()[0], (
        f"{missing}: the --manual_dir folder does not exist or is empty; put "
        "the data there as laid out below, or pass the folder that holds it "
        "with --manual_dir DIR"))

  def test_folder_without_images_is_an_error(self):
    empty = os.path.join(self.get_temp_dir(), "empty")
    os.makedirs(os.path.join(empty, "train"))
    with open(os.path.join(empty, "train", "notes.txt"), "w") as f:
      f.write("no images here")
    with self.assertRaisesRegex(blocks_dataset.ManualDataError,
                                f"^{empty}/train: no image files for split "
                                "'train' .*; put the images there or pass "
                                "the folder that holds them with "
                                "--manual_dir DIR\n"):
      _build(self.get_temp_dir(), empty)

  def test_loose_images_beside_split_folders_are_an_error(self):
    mixed = os.path.join(self.get_temp_dir(), "mixed")
    shutil.copytree(_DUMMY, mixed)
    shutil.copy(os.path.join(_DUMMY, "train", "a.png"), mixed)
    with self.assertRaisesRegex(blocks_dataset.ManualDataError, "loose"):
      _build(self.get_temp_dir(), mixed)

  def test_second_folder_cannot_reuse_a_data_dir(self):
    data_dir = self.get_temp_dir()
    _build(data_dir, os.path.join(_DUMMY, "train"))
    _build(data_dir, os.path.join(_DUMMY, "train") + "/")  # same folder: reuse
    with self.assertRaisesRegex(blocks_dataset.ManualDataError,
                                "already holds(.|\n)*another --data_dir"):
      _build(data_dir, os.path.join(_DUMMY, "validation"))
    other = _build(os.path.join(data_dir, "other"),
                   os.path.join(_DUMMY, "validation"))
    self.assertEqual(other.info.metadata["blocks_per_split"], {"train": 9})


if __name__ == "__main__":
  tfds.testing.test_main()
