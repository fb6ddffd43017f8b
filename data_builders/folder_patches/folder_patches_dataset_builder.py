"""folder_patches: any folder of images -> patch-block records.

`--manual_dir` is either

* a folder with split subfolders ``train/``, ``validation/``, ``test/`` (any
  subset; images found recursively in each), or
* a flat folder of images (recursively), which becomes the single split named
  by the config's ``split`` field (``train`` for the registered configs).

Two different folders must not share one ``<data_dir>/folder_patches/<config>``
(TFDS would otherwise silently reuse the first build): give each its own
``--data_dir`` (or its own config name). The source folder is recorded in the
dataset metadata, and building into a data dir that holds a build of another
folder is refused with an error naming both.
"""

import json

import tensorflow as tf
import tensorflow_datasets as tfds

from tf_hbd.data import blocks_dataset
from tf_hbd.codecs import images

_SPLIT_DIRS = ("train", "validation", "test")

_INSTRUCTIONS = """\
Pass a folder of images with `--manual_dir`:

  DIR/<any>/<files>.png|jpg|tif|pgm|...     -> one split, the config's `split`
                                               (default "train")
or
  DIR/train/...   DIR/validation/...   DIR/test/...   -> those splits

Images are read as 8-bit gray (16-bit files are divided by 257). Give every
folder its own --data_dir, e.g.
  tfds build data_builders/folder_patches --config jpeg \\
      --manual_dir ../shared/data/train400 \\
      --data_dir ~/tensorflow_datasets/train400
"""


def _source_key(path) -> str:
  return str(path).rstrip("/")


class Builder(blocks_dataset.PatchBlocksBuilder):
  """Patch blocks of the images of any folder."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

  def download_and_prepare(self, *, download_dir=None, download_config=None,
                           **kwargs):
    """Refuses to reuse a data dir that holds a build of another folder."""
    manual = getattr(download_config, "manual_dir", None)
    reuse = getattr(download_config, "download_mode",
                    tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    metadata_path = self.data_path / "metadata.json"
    if (manual and reuse == tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
        and metadata_path.exists()):
      requested = _source_key(manual)
      stored = json.loads(metadata_path.read_text()).get("source")
      if stored is not None and _abspath(stored) != _abspath(requested):
        raise blocks_dataset.ManualDataError(
            f"{self.data_path} already holds {self.name}/"
            f"{self.builder_config.name} built from {stored!r}, not from "
            f"{requested!r}. Use another --data_dir for this folder (or "
            "--overwrite to replace that build).")
    return super().download_and_prepare(
        download_dir=download_dir, download_config=download_config, **kwargs)

  def _split_items(self, dl_manager):
    root = blocks_dataset.manual_root(dl_manager, _INSTRUCTIONS)
    root_str = _source_key(root)
    self.info.metadata["source"] = _abspath(root_str)
    subdirs = [s for s in _SPLIT_DIRS
               if tf.io.gfile.isdir(f"{root_str}/{s}")]
    if subdirs:
      loose = [f for f in tf.io.gfile.listdir(root_str)
               if not tf.io.gfile.isdir(f"{root_str}/{f}")
               and f.lower().endswith(images.IMAGE_EXTENSIONS)]
      if loose:
        raise blocks_dataset.ManualDataError(
            f"{root_str} has split folders {subdirs} and also loose images "
            f"({loose[:3]}...); put every image under train/, validation/ or "
            f"test/.\n{_INSTRUCTIONS}")
      split_items = {s: blocks_dataset.list_folder_items(
          f"{root_str}/{s}", id_prefix=f"{s}/") for s in subdirs}
    else:
      split_items = {self.builder_config.split:
                     blocks_dataset.list_folder_items(root_str)}
    for split, items in split_items.items():
      if not items:
        folder = f"{root_str}/{split}" if subdirs else root_str
        raise blocks_dataset.ManualDataError(
            f"{folder}: no image files for split {split!r} (extensions: "
            f"{', '.join(images.IMAGE_EXTENSIONS)}); put the images there "
            f"or pass the folder that holds them with --manual_dir DIR"
            f"\n{_INSTRUCTIONS}")
    return split_items


def _abspath(path: str) -> str:
  if "://" in path:
    return path
  return str(tfds.core.Path(path).expanduser().resolve())
