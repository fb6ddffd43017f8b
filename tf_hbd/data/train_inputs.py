"""What `scripts/train.py` trains and validates on, from its flag values.

Training data (``--dataset``), always an endless, seeded, resumable stream of
batches (`tf_hbd.data.pipelines`), plus its number of blocks and patch size:

* ``sample`` (default): the embedded scikit-image photographs, split
  ``train`` of `tf_hbd.data.sample_images`, made into blocks in memory exactly as
  the ``sample_patches`` TFDS builder makes them (no build step needed);
* ``folder:<path>``: every image of a folder (e.g.
  ``folder:$TF_HBD_DATA/train400``), blocks made in memory (the
  ``folder_patches`` builder's code);
* any prepared TFDS patch-block dataset, by name (``sample_patches/jpeg``,
  ``folder_patches/...``, ``places_patches/jpeg``) with ``--data_dir``;
* ``recompress:<sources>``: whole images compressed afresh every epoch at
  random settings, with synthetic and tone-mapped content
  (`tf_hbd.data.recompress`); <sources> is a comma-separated list of folders and
  ``sample`` (the sample photographs' train split), e.g.
  ``recompress:$TF_HBD_DATA/train400,sample``.

Validation images (``--val_images``): a folder or glob of whole images (e.g.
``$TF_HBD_DATA/bsd68``), or, when empty, the ``validation`` split of the
sample photographs; each is compressed once with the training codec at a
fixed quality or target rate.
"""

import dataclasses
import sys
from typing import Callable, List, Optional

import numpy as np

from tf_hbd import errors
from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import pipelines as data_lib
from tf_hbd.codecs import images as images_lib
from tf_hbd.data import sample_images
from tf_hbd.training import trainer as training

__all__ = ["Stream", "DEFAULT_PATCH_SIZE", "training_stream",
           "validation_images", "source_images"]

# The paper's patch sizes: 8 x 8 for JPEG, 64 x 64 tiles for JPEG 2000.
DEFAULT_PATCH_SIZE = {"jpeg": 8, "jp2": 64}


@dataclasses.dataclass
class Stream:
  """A resumable stream of training batches.

  Attributes:
    batches: ``batches(start_batch) -> tf.data.Dataset`` (endless).
    num_blocks: blocks in one pass over the training set.
    patch_size: d.
    description: for the log.
  """
  batches: Callable
  num_blocks: int
  patch_size: int
  description: str
  setting_size: int = 0


def _in_memory(arrays, batch_size, seed, description):
  def batches(start_batch):
    return arrays.to_dataset(batch_size, shuffle=True, seed=seed, repeat=True,
                             start_batch=int(start_batch))
  return Stream(batches, len(arrays), int(arrays.context.shape[-1]),
                description)


def source_images(sources: str, max_side: Optional[int] = None,
                  limit: Optional[int] = None) -> List[np.ndarray]:
  """Gray uint8 images of a comma-separated list of folders and ``sample``.

  An unreadable image is skipped with a one-line warning on stderr (after
  the others are read); none readable raises `ImageReadError` (one line).
  """
  out, skipped = [], []
  for src in [x for x in sources.split(",") if x]:
    if src == "sample":
      out += [images_lib.maybe_resize_max(sample_images.load_sample(n),
                                          max_side)
              for n in sample_images.sample_names("train")]
      continue
    for f in images_lib.list_images(src):
      try:
        out.append(images_lib.maybe_resize_max(images_lib.load_image(f).gray,
                                               max_side))
      except errors.ImageReadError as e:
        skipped.append((f, e.reason))
  if not out:
    raise data_lib.none_readable(sources, skipped or [(sources, "no files")])
  for f, why in skipped:
    print(data_lib.skipped_line(f, why), file=sys.stderr, flush=True)
  return out[:limit] if limit else out


def training_stream(dataset: str, *, batch_size: int, seed: int,
                    codec: str = "jpeg", patch_size: Optional[int] = None,
                    split: str = "train", data_dir: Optional[str] = None,
                    max_side: Optional[int] = None,
                    limit: Optional[int] = None,
                    recompress_config: Optional[dict] = None) -> Stream:
  """The training stream named by `dataset` (see module docstring).

  Args:
    dataset: "sample", "folder:<path>" or a prepared TFDS dataset name.
    batch_size: blocks per batch.
    seed: seeds the order of the blocks (each epoch reshuffled).
    codec, patch_size, max_side, limit: how in-memory blocks are made
      (codec at a rate uniform in 0.35-1.02 bpp per image, as the builders).
    split, data_dir: for TFDS datasets.
    recompress_config: `tf_hbd.data.recompress.RecompressConfig` fields for
      ``recompress:`` datasets (codec and patch size come from the above).
  """
  d = int(patch_size or DEFAULT_PATCH_SIZE[codec])
  if dataset.startswith("recompress:"):
    from tf_hbd.data import recompress  # pylint: disable=g-import-not-at-top
    sources = dataset[len("recompress:"):]
    config = recompress.RecompressConfig(codec=codec, patch_size=d,
                                         **(recompress_config or {}))
    stream = recompress.RecompressStream(
        source_images(sources, max_side, limit), config, batch_size, seed)
    return Stream(stream.batches, stream.blocks_per_epoch, d,
                  stream.describe(sources), stream.setting_size)
  if dataset == "sample":
    names = sample_images.sample_names("train")
    if limit:
      names = names[:limit]
    arrays = data_lib.blocks_from_images(
        ((n, sample_images.load_sample(n)) for n in names), codec,
        patch_size=d, max_side=max_side)
    return _in_memory(arrays, batch_size, seed,
                      f"sample photographs ({len(names)} images, {codec}, "
                      f"d={d}): {len(arrays)} blocks")
  if dataset.startswith("folder:"):
    folder = dataset[len("folder:"):]
    arrays = data_lib.blocks_from_folder(folder, codec, patch_size=d,
                                         max_side=max_side, limit=limit)
    return _in_memory(arrays, batch_size, seed,
                      f"{folder} ({len(arrays.image_ids)} images, {codec}, "
                      f"d={d}): {len(arrays)} blocks")
  builder = data_lib.load_builder(dataset, data_dir)
  spec = data_lib.stored_spec(builder)
  size = data_lib.dataset_size(builder, split)

  def batches(start_batch):
    return data_lib.training_dataset(builder, split, batch_size, seed=seed,
                                     deterministic=True, repeat=True,
                                     start_batch=int(start_batch))

  return Stream(batches, size["blocks"], int(spec["patch_size"]),
                f"{dataset} [{split}] ({spec['codec']}, "
                f"d={spec['patch_size']}): {size['blocks']} blocks")


def validation_images(val_images: str = "", *, codec: str = "jpeg",
                      quality: Optional[float] = None,
                      bpp: Optional[float] = None,
                      max_images: Optional[int] = None,
                      max_side: Optional[int] = None,
                      settings: Optional[List[float]] = None
                      ) -> List[training.ValImage]:
  """Whole validation images with the codec's reconstruction.

  Args:
    val_images: folder or glob; "" = the sample photographs' validation split.
    codec: "jpeg" or "jp2".
    quality / bpp: the codec setting (exactly one).
    max_images: use at most this many (sorted by name).
    max_side: downsample so the longer side is at most this.
    settings: several JPEG qualities / JP2 target bpps instead of one (each
      image once per value, named ``name@value``); overrides quality/bpp.
  """
  if settings:
    out = []
    for value in settings:
      kw = {"quality": value} if codec == "jpeg" else {"bpp": value}
      for im in validation_images(val_images, codec=codec,
                                  max_images=max_images, max_side=max_side,
                                  **kw):
        im.name = f"{im.name}@{value:g}"
        out.append(im)
    return out
  if (quality is None) == (bpp is None):
    raise ValueError("give exactly one of quality= or bpp=")
  if val_images:
    return [training.ValImage(im.name, im.gray, im.decoded,
                              codec_setting.features(im.encoded.data, codec,
                                                     im.gray.shape))
            for im in data_lib.load_images(val_images, codec=codec, bpp=bpp,
                                           quality=quality,
                                           max_side=max_side,
                                           limit=max_images)]
  out = []
  names = sample_images.sample_names("validation")
  for name in names[:max_images] if max_images else names:
    gray = images_lib.maybe_resize_max(sample_images.load_sample(name),
                                       max_side)
    decoded, enc = codecs.roundtrip(gray, codec, bpp=bpp, quality=quality)
    out.append(training.ValImage(name, gray, decoded, codec_setting.features(
        enc.data, codec, gray.shape)))
  return out
