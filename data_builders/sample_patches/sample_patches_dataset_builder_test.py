"""Builder tests of sample_patches on dummy data (one class per config).

The dummy images are the sample photographs downsampled to a longer side of
36 pixels, under the same names, so every config builds in seconds; each is
one tile record (SPLITS: the images of each split), and the blocks are the
number of d x d patches of each split.
"""

from unittest import mock

import tensorflow_datasets as tfds

from data_builders import testing
from data_builders.sample_patches import sample_patches_dataset_builder

_IMAGES = {"train": 10, "validation": 2, "test": 3}


class _DummyImages(testing.BlocksBuilderTestCase):
  """Redirects the builder from scikit-image's files to dummy_data/."""

  DATASET_CLASS = sample_patches_dataset_builder.Builder

  def setUp(self):
    super().setUp()
    dummy = self.dummy_data
    patcher = mock.patch.object(
        sample_patches_dataset_builder.Builder, "_image_path",
        lambda self, name: str(dummy / f"{name}.png"))
    patcher.start()
    self.addCleanup(patcher.stop)


class JpegTest(_DummyImages):
  BUILDER_CONFIG_NAMES_TO_TEST = ["jpeg"]
  SPLITS = _IMAGES
  BLOCKS = {"train": 210, "validation": 30, "test": 65}


class Jp2Test(_DummyImages):
  BUILDER_CONFIG_NAMES_TO_TEST = ["jp2"]
  SPLITS = _IMAGES
  BLOCKS = {"train": 10, "validation": 2, "test": 3}


class Jp2SmallTest(_DummyImages):
  BUILDER_CONFIG_NAMES_TO_TEST = ["jp2_16"]
  SPLITS = _IMAGES
  BLOCKS = {"train": 75, "validation": 12, "test": 24}


del _DummyImages  # only the concrete classes are test cases

if __name__ == "__main__":
  tfds.testing.test_main()
