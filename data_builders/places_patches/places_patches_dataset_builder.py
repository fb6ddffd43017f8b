"""places_patches: the paper's training data as patch-block records.

Section 3.1 of the paper: a random sample of 178k Places365 training images
downsampled to 512 x 512, combined with 7168 RAISE raw images downsampled to
1600 x 1600, gray, each compressed once at a rate uniform in 0.35-1.02 bpp and
cut into 3 x 3 patch blocks (8 x 8 patches for JPEG, 64 x 64 tiles for JP2).
Validation: 20k Places365 validation images plus 1k held-out RAISE images.

"Downsampled to S x S" is implemented as a centre crop to a square followed by
a Lanczos downsample to S x S (no aspect distortion); smaller images are kept
at their size (never upsampled). The samples are reproducible random draws: the
images are ordered by a seeded hash of their id (`hash_order`), so the same
images are chosen from the extracted folders or from the archives, on any
machine.
"""

import dataclasses

import tensorflow as tf
import tensorflow_datasets as tfds

from tf_hbd.data import blocks_dataset

_TRAIN_DIRS = ("data_large", "data_256")
_TRAIN_TARS = ("train_large_places365standard.tar",
               "train_large_places365challenge.tar",
               "train_256_places365standard.tar",
               "train_256_places365challenge.tar")
_VAL_DIRS = ("val_large", "val_256")
_VAL_TARS = ("val_large.tar", "val_256.tar")

_INSTRUCTIONS = """\
Download Places365 from http://places2.csail.mit.edu/download.html (the
high-resolution "train_large_places365standard.tar" (105 GB) and
"val_large.tar" (2.1 GB); the 256x256 versions also work) and, optionally,
RAISE from http://loki.disi.unitn.it/RAISE/ (the TIFF files of RAISE-ALL; NEF
raw files cannot be read). Put them under the directory given as --manual_dir:

  MANUAL_DIR/places365/train_large_places365standard.tar
                       (or the extracted folder MANUAL_DIR/places365/data_large/)
  MANUAL_DIR/places365/val_large.tar
                       (or the extracted folder MANUAL_DIR/places365/val_large/)
  MANUAL_DIR/raise/*.tif                (optional; any sub-folders)

Archives are read in place (uncompressed tar, no extraction needed); extracted
folders are preferred when both exist. Then run, e.g.
  tfds build data_builders/places_patches --config jpeg --manual_dir MANUAL_DIR
"""


@dataclasses.dataclass(eq=False)
class PlacesConfig(blocks_dataset.BlocksConfig):
  """Config of places_patches: `BlocksConfig` plus the sample sizes.

  Attributes:
    places_size: side of the square Places365 images (paper: 512).
    raise_size: side of the square RAISE images (paper: 1600).
    places_train_images: Places365 training images sampled (paper: 178000).
    places_validation_images: Places365 validation images (paper: 20000).
    raise_train_images: RAISE training images (paper: 7168).
    raise_validation_images: held-out RAISE images (paper: 1000).
  """
  places_size: int = 512
  raise_size: int = 1600
  places_train_images: int = 178_000
  places_validation_images: int = 20_000
  raise_train_images: int = 7168
  raise_validation_images: int = 1000


def _first(root, names, kind):
  for name in names:
    path = f"{root}/{name}"
    if (tf.io.gfile.isdir(path) if kind == "dir" else
        tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path)):
      return path
  return None


def _places_items(root, dirs, tars, square):
  """Items of the first extracted folder or archive found, ids alike."""
  folder = _first(f"{root}/places365", dirs, "dir")
  if folder is not None:
    name = folder.rsplit("/", 1)[-1]
    return blocks_dataset.list_folder_items(
        folder, id_prefix=f"places365/{name}/", square=square), folder
  tar = _first(f"{root}/places365", tars, "file")
  if tar is not None:
    return blocks_dataset.list_tar_items(
        tar, id_prefix="places365/", square=square), tar
  return None, None


def split_raise(items, n_train, n_validation, seed):
  """Hash-ordered RAISE items -> (train, validation) with the paper's ratio.

  The validation share is n_validation / (n_train + n_validation) of the
  images found (at least one when there are two or more), capped at
  n_validation; train takes up to n_train of the rest.
  """
  ordered = blocks_dataset.hash_order([it.image_id for it in items], seed,
                                      "raise")
  by_id = {it.image_id: it for it in items}
  n = len(ordered)
  share = n_validation / float(n_train + n_validation)
  n_val = min(n_validation, int(round(n * share)))
  if n >= 2:
    n_val = max(n_val, 1)
  val = [by_id[i] for i in ordered[:n_val]]
  train = [by_id[i] for i in ordered[n_val:n_val + n_train]]
  return train, val


def sample(items, n, seed, salt):
  """A reproducible uniform sample of n items (all of them if fewer)."""
  by_id = {it.image_id: it for it in items}
  ordered = blocks_dataset.hash_order(list(by_id), seed, salt)
  return [by_id[i] for i in ordered[:n]]


class Builder(blocks_dataset.PatchBlocksBuilder):
  """Places365 (+ RAISE) patch blocks, as in section 3.1 of the paper."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
  BUILDER_CONFIGS = blocks_dataset.default_configs(PlacesConfig)
  HOMEPAGE = "http://places2.csail.mit.edu/"

  def _split_items(self, dl_manager):
    cfg = self.builder_config
    root = str(blocks_dataset.manual_root(dl_manager, _INSTRUCTIONS)).rstrip(
        "/")
    train, train_src = _places_items(root, _TRAIN_DIRS, _TRAIN_TARS,
                                     cfg.places_size)
    val, val_src = _places_items(root, _VAL_DIRS, _VAL_TARS, cfg.places_size)
    missing = []
    if train is None:
      missing.append("training images: one of " + ", ".join(
          f"{root}/places365/{n}" for n in _TRAIN_DIRS + _TRAIN_TARS))
    if val is None:
      missing.append("validation images: one of " + ", ".join(
          f"{root}/places365/{n}" for n in _VAL_DIRS + _VAL_TARS))
    if missing:
      raise blocks_dataset.ManualDataError(
          "Places365 not found. Missing " + "; ".join(missing) +
          f"\n\n{_INSTRUCTIONS}")
    for items, src in ((train, train_src), (val, val_src)):
      if not items:
        raise blocks_dataset.ManualDataError(
            f"{src}: no images in it; put the Places365 images there (or "
            f"its archive beside it) as laid out below\n\n{_INSTRUCTIONS}")
    train = sample(train, cfg.places_train_images, cfg.seed, "places_train")
    val = sample(val, cfg.places_validation_images, cfg.seed, "places_val")

    raise_dir = f"{root}/raise"
    raise_train, raise_val = [], []
    if tf.io.gfile.isdir(raise_dir):
      raise_items = blocks_dataset.list_folder_items(
          raise_dir, id_prefix="raise/", square=cfg.raise_size)
      raise_train, raise_val = split_raise(
          raise_items, cfg.raise_train_images, cfg.raise_validation_images,
          cfg.seed)
    self.info.metadata["sources"] = {
        "places365_train": train_src.rsplit("/", 1)[-1],
        "places365_validation": val_src.rsplit("/", 1)[-1],
        "raise": len(raise_train) + len(raise_val),
    }
    self.info.metadata["images"] = {
        "places365_train": len(train), "raise_train": len(raise_train),
        "places365_validation": len(val), "raise_validation": len(raise_val)}
    return {tfds.Split.TRAIN: train + raise_train,
            tfds.Split.VALIDATION: val + raise_val}
