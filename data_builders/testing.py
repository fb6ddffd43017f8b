"""A `DatasetBuilderTestCase` for the patch-block builders.

Records are tiles of many blocks, so `SPLITS` (what TFDS checks) counts
records; `BLOCKS` gives the blocks per split, checked against the
``blocks_per_split`` the build stores in its metadata.
"""

import tensorflow_datasets as tfds

__all__ = ["BlocksBuilderTestCase"]


class BlocksBuilderTestCase(tfds.testing.DatasetBuilderTestCase):
  """`DatasetBuilderTestCase` that also checks the blocks per split."""

  BLOCKS = None  # {split: blocks}

  def _download_and_prepare_as_dataset(self, builder):
    super()._download_and_prepare_as_dataset(builder)
    if self.BLOCKS is not None:
      self.assertEqual(builder.info.metadata["blocks_per_split"], self.BLOCKS)
