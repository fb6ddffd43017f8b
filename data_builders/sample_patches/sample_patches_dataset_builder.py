"""sample_patches: the embedded default training data of tf_hbd.

The real photographs that scikit-image ships inside its wheel (no download),
split as fixed in `tf_hbd.data.sample_images.SPLITS`, turned into patch blocks by
`tf_hbd.data.blocks_dataset` (the same code as the Places365 and folder builders).
"""

import tensorflow as tf

from tf_hbd.data import blocks_dataset
from tf_hbd.data import sample_images


class Builder(blocks_dataset.PatchBlocksBuilder):
  """Patch blocks of scikit-image's bundled photographs."""

  HOMEPAGE = "https://scikit-image.org/docs/stable/api/skimage.data.html"

  def _image_path(self, name: str) -> str:
    return sample_images.sample_path(name)

  def _split_items(self, dl_manager):
    del dl_manager  # the images are installed with scikit-image
    split_items = {}
    for split in sample_images.SPLITS:
      items = []
      for name in sample_images.sample_names(split):
        path = self._image_path(name)
        if not tf.io.gfile.exists(path):
          raise blocks_dataset.ManualDataError(
              f"sample image {name!r} not found at {path}; reinstall "
              "scikit-image==0.26.0")
        items.append(blocks_dataset.ImageItem(name, path, -1, -1, 0))
      split_items[split] = items
    return split_items
