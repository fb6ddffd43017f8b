"""Shared logic of the patch-block datasets (paper, section 3.1).

Every TFDS builder in `data_builders/` (`sample_patches`, `folder_patches`,
`places_patches`) and the in-memory path `tf_hbd.data.blocks_from_folder` turn
an image into training examples the same way, with the functions here:

1. the image is read as 8-bit gray (`tf_hbd.images`), optionally centre-cropped
   to a square and downsampled to a fixed side (Places365: 512, RAISE: 1600)
   and/or downsampled so its longer side is at most `max_side`;
2. it is compressed **once** with the config's codec, at a bit rate drawn
   uniformly from `bpp_range` (default 0.35-1.02 bpp, the paper's range) or at
   a fixed `quality`, and decoded (`tf_hbd.codecs`);
3. the decoded image is cut into d x d patches and every patch becomes the
   target of one 3 x 3 block (`tf_hbd.patches`); the target is the patch of the
   *original* image.

The rate of an image is a pure function of ``(seed, image_id)`` (`rate_for`),
so a plain build, a Beam build on any number of workers, and a rerun all
produce the same examples.

Stored features (see docs/CONTRACTS.md): ``context`` (9, d, d) uint8, ``target``
(d, d) uint8, ``position`` int32, ``bpp`` float32, ``codec_setting`` float32
(JPEG quality or JP2 compression ratio), ``image_id`` text, ``coords`` (2,)
int32 (row, col of the target in the patch grid), ``grid_shape`` (2,) int32,
``image_shape`` (2,) int32. Pixel tensors are stored as raw bytes.

Boundary strategy. The registered configs store ``paper`` blocks. A
``replicate`` block is a fixed gather of the ``paper`` block of the same
target (every clamped neighbour of a target lies inside its paper block), so
`paper_to_replicate` derives it exactly at read time and one stored dataset
serves both strategies; `BlocksConfig.strategy` can still store ``replicate``
blocks directly for a custom config.
"""

import abc
import collections
import dataclasses
import hashlib
import logging
import tarfile
from typing import Iterable, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_hbd import codecs
from tf_hbd import errors
from tf_hbd import images
from tf_hbd import patches

__all__ = [
    "BlockSpec",
    "BlocksConfig",
    "DEFAULT_BPP_RANGE",
    "ImageItem",
    "ManualDataError",
    "PatchBlocksBuilder",
    "REPLICATE_GATHER",
    "default_configs",
    "examples_for_image",
    "examples_for_item",
    "features",
    "hash_order",
    "image_blocks",
    "list_folder_items",
    "list_tar_items",
    "manual_root",
    "paper_to_replicate",
    "prepare_image",
    "rate_for",
    "read_item_bytes",
    "reassemble",
]

DEFAULT_BPP_RANGE = (0.35, 1.02)


class ManualDataError(errors.HbdError):
  """The manually provided data is missing or not laid out as documented."""


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """How an image becomes blocks (picklable; shipped to Beam workers).

  Attributes:
    codec: "jpeg" or "jp2".
    patch_size: d, the side of a patch.
    strategy: boundary strategy of the stored blocks, "paper" or "replicate".
    bpp_range: (low, high) of the uniform per-image target rate.
    quality: a fixed codec setting (JPEG quality, JP2 ratio) instead of a rate.
    seed: seeds the per-image rate draw.
    max_side: if set, images are downsampled so the longer side is at most
      this (after any square crop/resize of the item).
  """
  codec: str = "jpeg"
  patch_size: int = 8
  strategy: str = "paper"
  bpp_range: Tuple[float, float] = DEFAULT_BPP_RANGE
  quality: Optional[float] = None
  seed: int = 0
  max_side: Optional[int] = None

  def __post_init__(self):
    if self.codec not in codecs.CODECS:
      raise ValueError(f"unknown codec {self.codec!r}; choose from "
                       f"{codecs.CODECS}")
    if self.strategy not in patches.BOUNDARY_STRATEGIES:
      raise ValueError(f"unknown boundary strategy {self.strategy!r}; choose "
                       f"from {patches.BOUNDARY_STRATEGIES}")
    if int(self.patch_size) != self.patch_size or self.patch_size < 1:
      raise ValueError(f"patch_size must be a positive integer, got "
                       f"{self.patch_size}")
    lo, hi = (float(v) for v in self.bpp_range)
    if not 0 < lo <= hi:
      raise ValueError(f"bpp_range must satisfy 0 < low <= high, got "
                       f"{self.bpp_range}")
    object.__setattr__(self, "bpp_range", (lo, hi))


@dataclasses.dataclass(eq=False)
class BlocksConfig(tfds.core.BuilderConfig):
  """TFDS builder config of a patch-block dataset.

  The fields are those of `BlockSpec` plus `split`, which only the
  `folder_patches` builder reads (the split that a flat folder of images
  becomes). Values given as JSON on the command line
  (``--config '{"name": ..., ...}'``) are accepted: lists become tuples.
  """
  codec: str = "jpeg"
  patch_size: int = 8
  strategy: str = "paper"
  bpp_range: Tuple[float, float] = DEFAULT_BPP_RANGE
  quality: Optional[float] = None
  seed: int = 0
  max_side: Optional[int] = None
  split: str = "train"

  def __post_init__(self):
    self.bpp_range = tuple(float(v) for v in self.bpp_range)
    _ = self.spec  # validates the fields

  @property
  def spec(self) -> BlockSpec:
    return BlockSpec(codec=self.codec, patch_size=int(self.patch_size),
                     strategy=self.strategy, bpp_range=self.bpp_range,
                     quality=self.quality, seed=int(self.seed),
                     max_side=self.max_side)


def default_configs(config_cls=BlocksConfig, **overrides):
  """The registered configs shared by all patch-block builders.

  * ``jpeg``: JPEG, 8 x 8 patches (the paper's JPEG setting).
  * ``jp2``: JPEG 2000, 64 x 64 tiles (the paper's JP2 setting).
  * ``jp2_16``: JPEG 2000, 16 x 16 patches (a JP2 model that trains on a CPU).

  All store ``paper`` blocks at a rate uniform in 0.35-1.02 bpp per image.

  Args:
    config_cls: a `BlocksConfig` subclass (builders may add fields).
    **overrides: field values applied to every config.
  """
  rate = "{lo}-{hi} bpp".format(lo=DEFAULT_BPP_RANGE[0], hi=DEFAULT_BPP_RANGE[1])
  table = (
      ("jpeg", "jpeg", 8, "JPEG, 8x8 patches (paper)"),
      ("jp2", "jp2", 64, "JPEG 2000, 64x64 tiles (paper)"),
      ("jp2_16", "jp2", 16, "JPEG 2000, 16x16 patches (CPU-sized JP2)"),
  )
  return [config_cls(name=name, codec=codec, patch_size=d,
                     description=f"{text}, paper blocks, {rate} per image.",
                     **overrides)
          for name, codec, d, text in table]


def features(patch_size: int):
  """The `tfds.features.FeaturesDict` of a patch-block dataset."""
  d = int(patch_size)
  raw = tfds.features.Encoding.BYTES
  tensor = tfds.features.Tensor
  return tfds.features.FeaturesDict({
      "context": tensor(shape=(9, d, d), dtype=np.uint8, encoding=raw,
                        doc="decoded patches of the block, row-major"),
      "target": tensor(shape=(d, d), dtype=np.uint8, encoding=raw,
                       doc="original (uncompressed) target patch"),
      "position": tensor(shape=(), dtype=np.int32,
                         doc="index 0..8 of the target in the block"),
      "bpp": tensor(shape=(), dtype=np.float32,
                    doc="achieved rate of the whole image"),
      "codec_setting": tensor(shape=(), dtype=np.float32,
                              doc="JPEG quality or JP2 compression ratio"),
      "image_id": tfds.features.Text(doc="source image identifier"),
      "coords": tensor(shape=(2,), dtype=np.int32,
                       doc="(row, col) of the target in the patch grid"),
      "grid_shape": tensor(shape=(2,), dtype=np.int32,
                           doc="(rows, cols) of the patch grid"),
      "image_shape": tensor(shape=(2,), dtype=np.int32,
                            doc="(height, width) of the coded image"),
  })


def _unit_hash(*parts) -> float:
  text = "\x1f".join(str(p) for p in parts).encode("utf-8")
  digest = hashlib.sha256(text).digest()
  return int.from_bytes(digest[:8], "big") / 2.0**64


def rate_for(seed: int, image_id: str, bpp_range=DEFAULT_BPP_RANGE) -> float:
  """The target rate of one image: uniform in `bpp_range`, fixed by its id."""
  lo, hi = (float(v) for v in bpp_range)
  return lo + (hi - lo) * _unit_hash("rate", int(seed), image_id)


def hash_order(names: Iterable[str], seed: int, salt: str = "order"):
  """`names` sorted by a seeded hash: a reproducible random permutation.

  Taking the first n of it is a uniform random sample of size n that does not
  depend on how the names were listed.
  """
  return sorted(names, key=lambda n: (_unit_hash(salt, int(seed), n), n))


# ---------------------------------------------------------------- sources

ImageItem = collections.namedtuple(
    "ImageItem", ["image_id", "path", "offset", "length", "square"])
ImageItem.__doc__ = """One source image to turn into blocks.

Attributes:
  image_id: identifier stored in the examples (a relative path; never a local
    absolute path).
  path: a file path (any `tf.io.gfile` path) or a tar archive.
  offset, length: byte range of the image inside `path` (a tar member), or
    -1, -1 for the whole file.
  square: if > 0, the image is centre-cropped to a square and downsampled to
    `square` x `square` (never upsampled); 0 keeps its geometry.
"""


def _is_image_name(name: str) -> bool:
  base = name.rsplit("/", 1)[-1]
  return not base.startswith(".") and base.lower().endswith(
      images.IMAGE_EXTENSIONS)


def list_folder_items(folder: str, id_prefix: str = "", square: int = 0):
  """Every image file under `folder` (recursive, sorted) as `ImageItem`s.

  The image id is `id_prefix` + the path relative to `folder` (with "/").
  """
  gfile = tf.io.gfile
  folder = str(folder).rstrip("/")
  items = []
  for root, _, files in gfile.walk(folder):
    root = str(root).rstrip("/")
    rel_root = root[len(folder):].lstrip("/")
    for f in files:
      if _is_image_name(f):
        rel = f"{rel_root}/{f}" if rel_root else f
        items.append(ImageItem(id_prefix + rel, f"{root}/{f}", -1, -1,
                               int(square)))
  return sorted(items)


def list_tar_items(tar_path: str, id_prefix: str = "", square: int = 0):
  """Every image member of an (uncompressed) tar archive as `ImageItem`s.

  Only the headers are read (the data is skipped by seeking), and each item
  records its byte range, so workers read one member without the archive
  being unpacked. The image id is `id_prefix` + the member name.
  """
  items = []
  with tf.io.gfile.GFile(str(tar_path), "rb") as f:
    try:
      tar = tarfile.open(fileobj=f, mode="r:")
    except tarfile.TarError as e:
      raise ManualDataError(f"{tar_path}: not an uncompressed tar archive "
                            f"({e})") from e
    with tar:
      while True:
        member = tar.next()
        if member is None:
          break
        if member.isfile() and _is_image_name(member.name):
          items.append(ImageItem(id_prefix + member.name, str(tar_path),
                                 member.offset_data, member.size, int(square)))
        tar.members = []  # do not keep 1.8M TarInfo objects in memory
  return sorted(items)


def read_item_bytes(item: ImageItem) -> bytes:
  """The encoded bytes of an item's image file."""
  gfile = tf.io.gfile
  try:
    with gfile.GFile(item.path, "rb") as f:
      if item.offset < 0:
        return f.read()
      f.seek(item.offset)
      data = f.read(item.length)
  except (tf.errors.OpError, OSError) as e:
    raise errors.ImageReadError(item.path, f"{type(e).__name__}: {e}") from e
  if len(data) != item.length:
    raise errors.ImageReadError(
        item.path, f"member {item.image_id} truncated ({len(data)} of "
        f"{item.length} bytes)")
  return data


# ------------------------------------------------------------ image -> blocks

def prepare_image(gray: np.ndarray, square: int = 0,
                  max_side: Optional[int] = None) -> np.ndarray:
  """Centre-crops to a square and downsamples to `square` (if > 0), then
  downsamples so the longer side is at most `max_side` (Lanczos; never up)."""
  gray = np.asarray(gray)
  if square and square > 0:
    h, w = gray.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    gray = images.maybe_resize_max(gray[top:top + s, left:left + s], square)
  if max_side:
    gray = images.maybe_resize_max(gray, int(max_side))
  return np.ascontiguousarray(gray)


def image_blocks(image_id: str, gray: np.ndarray, spec: BlockSpec):
  """Compresses one (prepared) image and cuts it into blocks.

  Returns:
    (blocks, encoded): `tf_hbd.patches.Blocks` (context from the decoded
    image, target from `gray`) and the `tf_hbd.codecs.Encoded` stream.
  """
  if spec.quality is not None:
    decoded, enc = codecs.roundtrip(gray, spec.codec, quality=spec.quality)
  else:
    bpp = rate_for(spec.seed, image_id, spec.bpp_range)
    decoded, enc = codecs.roundtrip(gray, spec.codec, bpp=bpp)
  blocks = patches.blocks_from_image(decoded, spec.patch_size, spec.strategy,
                                     original=gray)
  return blocks, enc


def examples_for_image(image_id: str, gray: np.ndarray, spec: BlockSpec,
                       square: int = 0) -> Iterator[tuple]:
  """Yields ``(key, example)`` for every block of one image.

  Keys are ``"<image_id>#<row>_<col>"`` (unique per image and patch).
  """
  gray = prepare_image(gray, square, spec.max_side)
  blocks, enc = image_blocks(image_id, gray, spec)
  bpp = np.float32(enc.bpp)
  setting = np.float32(enc.setting)
  grid_shape = np.asarray(blocks.grid_shape, np.int32)
  image_shape = np.asarray(blocks.image_shape, np.int32)
  for i in range(len(blocks)):
    r, c = blocks.coords[i]
    yield f"{image_id}#{r}_{c}", {
        "context": blocks.context[i],
        "target": blocks.target[i],
        "position": np.int32(blocks.position[i]),
        "bpp": bpp,
        "codec_setting": setting,
        "image_id": image_id,
        "coords": blocks.coords[i],
        "grid_shape": grid_shape,
        "image_shape": image_shape,
    }


def examples_for_item(item: ImageItem, spec: BlockSpec,
                      skip_unreadable: bool = False) -> Iterator[tuple]:
  """Reads one `ImageItem` and yields its ``(key, example)`` pairs.

  This is the unit of work of both the plain and the Beam build (a module
  level function, so Beam workers can unpickle it).
  """
  try:
    gray = images.decode_image_bytes(read_item_bytes(item), item.image_id).gray
  except errors.ImageReadError:
    if not skip_unreadable:
      raise
    logging.warning("skipping unreadable image %s (%s)", item.image_id,
                    item.path)
    return
  yield from examples_for_image(item.image_id, gray, spec, item.square)


# ------------------------------------------------------- read-time helpers

def _replicate_gather() -> np.ndarray:
  # For a target at position p = (pr, pc) of its paper block, its replicate
  # neighbour at offset (a, b) is paper member (clip(pr+a), clip(pc+b)).
  table = np.zeros((9, 9), np.int32)
  for p in range(9):
    pr, pc = divmod(p, 3)
    for k in range(9):
      a, b = divmod(k, 3)
      table[p, k] = (min(max(pr + a - 1, 0), 2) * 3
                     + min(max(pc + b - 1, 0), 2))
  return table


REPLICATE_GATHER = _replicate_gather()


def paper_to_replicate(context: np.ndarray, position: np.ndarray):
  """Converts stored ``paper`` blocks to ``replicate`` blocks (exact).

  Args:
    context: (N, 9, d, d) paper blocks.
    position: (N,) target positions in them.

  Returns:
    (context, position): (N, 9, d, d) replicate blocks, and positions (all 4).
  """
  context = np.asarray(context)
  position = np.asarray(position)
  idx = REPLICATE_GATHER[position]
  out = np.take_along_axis(context, idx[:, :, None, None], axis=1)
  return out, np.full_like(position, 4)


def reassemble(examples) -> dict:
  """Re-assembles whole images from their examples.

  Args:
    examples: an iterable of example dicts (numpy, as from
      `tfds.as_numpy`), in any order; `image_id` may be bytes or str.

  Returns:
    {image_id: (original, decoded)} uint8 images: `original` from the target
    patches, `decoded` from each block's own (decoded) target patch.
  """
  groups = collections.defaultdict(list)
  for ex in examples:
    image_id = ex["image_id"]
    if isinstance(image_id, bytes):
      image_id = image_id.decode("utf-8")
    groups[image_id].append(ex)
  out = {}
  for image_id, exs in groups.items():
    grid_shape = tuple(int(v) for v in exs[0]["grid_shape"])
    image_shape = tuple(int(v) for v in exs[0]["image_shape"])
    coords = np.stack([e["coords"] for e in exs])
    target = np.stack([e["target"] for e in exs])
    own = np.stack([e["context"][int(e["position"])] for e in exs])
    out[image_id] = (
        patches.assemble(target, grid_shape, image_shape, coords),
        patches.assemble(own, grid_shape, image_shape, coords))
  return out


# ------------------------------------------------------------ TFDS builders

def manual_root(dl_manager, expected: str):
  """`dl_manager.manual_dir`, or a `ManualDataError` naming what is expected.

  Args:
    dl_manager: the builder's download manager.
    expected: a description of the expected layout (the builder's
      MANUAL_DOWNLOAD_INSTRUCTIONS).
  """
  try:
    root = dl_manager.manual_dir
  except AssertionError as e:  # TFDS: missing or empty manual dir
    # `from None`: TFDS's message is already in ours; no chained traceback
    # repeating it.
    raise ManualDataError(
        f"{e}\nPass the data with `tfds build ... --manual_dir DIR` "
        f"(or download_config=tfds.download.DownloadConfig(manual_dir=DIR))."
        f"\nExpected layout:\n{expected}") from None
  return root


class PatchBlocksBuilder(tfds.core.GeneratorBasedBuilder,
                         skip_registration=True):
  """Base of the patch-block builders: images -> blocks, plain or Beam.

  A subclass lists its source images per split in `_split_items`; this class
  turns every `ImageItem` into its blocks with `examples_for_item`.

  Generation runs as a plain Python generator, or, when the build is given
  Beam options or a runner (``tfds build ... --beam_pipeline_options=...``),
  as an Apache Beam pipeline: ``Create(items) | Reshuffle | FlatMap(
  examples_for_item)``. Both yield identical examples (same keys, same
  rates), so TFDS writes identical records.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = default_configs()
  DEFAULT_BUILDER_CONFIG_NAME = "jpeg"
  SKIP_UNREADABLE = False  # a corrupt image fails the build, naming the file
  HOMEPAGE = None

  _use_beam = False

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features(self.builder_config.patch_size),
        metadata=tfds.core.MetadataDict(),
        homepage=self.HOMEPAGE,
    )

  @abc.abstractmethod
  def _split_items(self, dl_manager) -> dict:
    """{split name: list of `ImageItem`} of the source images."""

  def _download_and_prepare(self, dl_manager, download_config):  # pylint: disable=arguments-differ
    self._use_beam = bool(download_config.beam_runner
                          or download_config.beam_options)
    return super()._download_and_prepare(dl_manager, download_config)

  def _split_generators(self, dl_manager):
    split_items = self._split_items(dl_manager)
    for split, items in split_items.items():
      if not items:
        raise ManualDataError(f"split {split!r} of {self.name} has no images")
    self.info.metadata["images_per_split"] = {
        split: len(items) for split, items in split_items.items()}
    self.info.metadata["beam"] = self._use_beam
    self.info.metadata["spec"] = dataclasses.asdict(self.builder_config.spec)
    return {split: self._generate_examples(items)
            for split, items in split_items.items()}

  def _generate_examples(self, items):
    spec = self.builder_config.spec
    if self._use_beam:
      beam = tfds.core.lazy_imports.apache_beam
      return (beam.Create(list(items))
              | beam.Reshuffle()
              | beam.FlatMap(examples_for_item, spec=spec,
                             skip_unreadable=self.SKIP_UNREADABLE))
    return self._iter_examples(items, spec)

  def _iter_examples(self, items, spec):
    for item in items:
      yield from examples_for_item(item, spec, self.SKIP_UNREADABLE)
