"""Shared logic of the patch-block datasets (paper, section 3.1).

Every TFDS builder in `data_builders/` (`sample_patches`, `folder_patches`,
`places_patches`) and the in-memory path `tf_hbd.data.pipelines.blocks_from_folder` turn
an image into training examples the same way, with the functions here:

1. the image is read as 8-bit gray (`tf_hbd.codecs.images`), optionally centre-cropped
   to a square and downsampled to a fixed side (Places365: 512, RAISE: 1600)
   and/or downsampled so its longer side is at most `max_side`;
2. it is compressed **once** with the config's codec, at a bit rate drawn
   uniformly from `bpp_range` (default 0.35-1.02 bpp, the paper's range) or at
   a fixed `quality`, and decoded (`tf_hbd.codecs.legacy`); JPEG at the highest
   quality within the rate, JPEG 2000 by default (`BlockSpec.rate_search`
   False in the registered configs) in one encode at ratio 8 / rate;
3. the decoded image is cut into d x d patches and every patch becomes the
   target of one 3 x 3 block (`tf_hbd.codecs.patches`); the target is the patch of the
   *original* image.

The rate of an image is a pure function of ``(seed, image_id)`` (`rate_for`),
so a plain build, a Beam build on any number of workers, and a rerun all
produce the same examples.

Records (version 2, see docs/CONTRACTS.md). One record holds one **tile** of
an image: a rectangle of at most T x T target patches (T = `tile_side`, 16 for
d = 8, 8 for d >= 16; an image's grid is split into near-equal tiles), with

* ``original`` (t, d, d) uint8: the original patches of the tile's targets,
  row-major, each stored once;
* ``decoded`` (w, d, d) uint8: the decoded patches of the tile's *window*,
  the tile plus the one-patch halo its blocks reach into (clamped to the
  grid), row-major, each stored once;
* ``tile`` / ``window`` (4,) int32: (top, left, rows, cols) in the patch grid;
  ``grid_shape``, ``image_shape`` (2,) int32; ``bpp``, ``codec_setting``
  float32 (JPEG quality or JP2 compression ratio); ``image_id`` text.

Blocks are cut from a record at read time by `tile_blocks` (a `tf.gather`):
the same blocks, index for index, as `tf_hbd.codecs.patches.make_blocks` on the
whole image, for either boundary strategy (the window covers both), so one
build serves ``paper`` and ``replicate`` training and a block costs about
2 d^2 bytes on disk instead of 10 d^2. `BlocksConfig.strategy` is the
strategy `tf_hbd.data.pipelines.training_dataset` cuts by default.

Version 1 records (one whole 3 x 3 block per record: ``context`` (9, d, d),
``target``, ``position``, ``coords``, ...) are still read by
`tf_hbd.data.pipelines.training_dataset`; `paper_to_replicate` derives replicate blocks
from them.
"""

import abc
import collections
import dataclasses
import hashlib
import logging
import re
import tarfile
from typing import Iterable, Iterator, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_hbd.codecs import legacy as codecs
from tf_hbd import errors
from tf_hbd.codecs import images
from tf_hbd.codecs import patches

__all__ = [
    "BlockSpec",
    "BlocksConfig",
    "DEFAULT_BPP_RANGE",
    "ImageItem",
    "ManualDataError",
    "PatchBlocksBuilder",
    "REPLICATE_GATHER",
    "TileBounds",
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
    "tile_blocks",
    "tile_bounds",
    "tile_side",
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
    tile: side T of a record's tile in patches (0: `tile_side(patch_size)`).
    rate_search: True: the image is coded at the highest setting whose
      achieved rate is at most its drawn rate (`tf_hbd.codecs.legacy.encode_at_bpp`;
      for JPEG 2000 a search of ~9 encodes). False (JPEG 2000 only): one
      encode at compression ratio 8 / rate (`codecs.encode_once_at_bpp`);
      the achieved rate, which is what the records store, lands near the
      drawn one (0.90-1.01 x on train400). Ignored with a fixed `quality`.
      The default keeps the meaning of specs written without this field.
  """
  codec: str = "jpeg"
  patch_size: int = 8
  strategy: str = "paper"
  bpp_range: Tuple[float, float] = DEFAULT_BPP_RANGE
  quality: Optional[float] = None
  seed: int = 0
  max_side: Optional[int] = None
  tile: int = 0
  rate_search: bool = True

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
    if int(self.tile) != self.tile or self.tile < 0:
      raise ValueError(f"tile must be an integer >= 0, got {self.tile}")
    if not isinstance(self.rate_search, bool):
      raise ValueError(f"rate_search must be true or false, got "
                       f"{self.rate_search!r}")
    if not self.rate_search and self.codec != "jp2":
      raise ValueError(f"rate_search=False needs codec 'jp2' (JPEG has no "
                       f"rate control), got {self.codec!r}")
    lo, hi = (float(v) for v in self.bpp_range)
    if not 0 < lo <= hi:
      raise ValueError(f"bpp_range must satisfy 0 < low <= high, got "
                       f"{self.bpp_range}")
    object.__setattr__(self, "bpp_range", (lo, hi))


class _BlocksConfigMethods:
  """What `BlocksConfig` adds to its fields."""

  def __post_init__(self):
    self.bpp_range = tuple(float(v) for v in self.bpp_range)
    _ = self.spec  # validates the fields

  @property
  def spec(self) -> BlockSpec:
    """The `BlockSpec` these fields describe."""
    values = {f.name: getattr(self, f.name)
              for f in dataclasses.fields(BlockSpec)}
    for name in ("patch_size", "seed", "tile"):
      values[name] = int(values[name])
    return BlockSpec(**values)


# TFDS builder config of a patch-block dataset: `BlockSpec`'s fields (names,
# types, defaults: one list, BlockSpec's) plus ``split``, which only the
# `folder_patches` builder reads (the split that a flat folder of images
# becomes). A TFDS config must subclass `tfds.core.BuilderConfig` (a mutable
# dataclass) and BlockSpec is frozen, so the class is made from BlockSpec's
# field list rather than inherited from it.
BlocksConfig = dataclasses.make_dataclass(
    "BlocksConfig",
    [(f.name, f.type, dataclasses.field(default=f.default))
     for f in dataclasses.fields(BlockSpec)]
    + [("split", str, dataclasses.field(default="train"))],
    bases=(_BlocksConfigMethods, tfds.core.BuilderConfig), eq=False)
BlocksConfig.__module__ = __name__
BlocksConfig.__doc__ = """TFDS builder config of a patch-block dataset.

  The fields are those of `BlockSpec` plus `split` (the split that a flat
  folder of images becomes; `folder_patches` only); ``spec`` is the
  `BlockSpec`. Values given as JSON on the command line
  (``--config '{"name": ..., ...}'``) are accepted: lists become tuples.
  """


_ONCE = " (one encode at ratio 8/rate)"


def default_configs(config_cls=BlocksConfig, **overrides):
  """The registered configs shared by all patch-block builders.

  * ``jpeg``: JPEG, 8 x 8 patches (the paper's JPEG setting).
  * ``jp2``: JPEG 2000, 64 x 64 tiles (the paper's JP2 setting).
  * ``jp2_16``: JPEG 2000, 16 x 16 patches (a JP2 model that trains on a CPU).

  All store ``paper`` blocks at a rate uniform in 0.35-1.02 bpp per image;
  the JPEG 2000 configs code each image once at ratio 8 / rate
  (``rate_search=False``, since version 2.1.0), JPEG searches the quality.

  Args:
    config_cls: a `BlocksConfig` subclass (builders may add fields).
    **overrides: field values applied to every config.
  """
  rate = "{lo}-{hi} bpp".format(lo=DEFAULT_BPP_RANGE[0], hi=DEFAULT_BPP_RANGE[1])
  table = (
      ("jpeg", "jpeg", 8, "JPEG, 8x8 patches (paper)", ""),
      ("jp2", "jp2", 64, "JPEG 2000, 64x64 tiles (paper)", _ONCE),
      ("jp2_16", "jp2", 16, "JPEG 2000, 16x16 patches (CPU-sized JP2)",
       _ONCE),
  )
  return [config_cls(**{
      "name": name, "codec": codec, "patch_size": d,
      "description": f"{text}, paper blocks, {rate} per image{once}.",
      **({"rate_search": False} if once else {}), **overrides})
          for name, codec, d, text, once in table]


def features(patch_size: int):
  """The `tfds.features.FeaturesDict` of a patch-block dataset (tile records)."""
  d = int(patch_size)
  raw = tfds.features.Encoding.BYTES
  tensor = tfds.features.Tensor
  return tfds.features.FeaturesDict({
      "decoded": tensor(shape=(None, d, d), dtype=np.uint8, encoding=raw,
                        doc="decoded patches of the window, row-major"),
      "original": tensor(shape=(None, d, d), dtype=np.uint8, encoding=raw,
                         doc="original patches of the tile's targets, "
                         "row-major"),
      "tile": tensor(shape=(4,), dtype=np.int32,
                     doc="(top, left, rows, cols) of the targets in the grid"),
      "window": tensor(shape=(4,), dtype=np.int32,
                       doc="(top, left, rows, cols) of `decoded` in the grid"),
      "grid_shape": tensor(shape=(2,), dtype=np.int32,
                           doc="(rows, cols) of the patch grid"),
      "image_shape": tensor(shape=(2,), dtype=np.int32,
                            doc="(height, width) of the coded image"),
      "bpp": tensor(shape=(), dtype=np.float32,
                    doc="achieved rate of the whole image"),
      "codec_setting": tensor(shape=(), dtype=np.float32,
                              doc="JPEG quality or JP2 compression ratio"),
      "image_id": tfds.features.Text(doc="source image identifier"),
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


def _roundtrip(image_id: str, gray: np.ndarray, spec: BlockSpec):
  if spec.quality is not None:
    return codecs.roundtrip(gray, spec.codec, quality=spec.quality)
  bpp = rate_for(spec.seed, image_id, spec.bpp_range)
  if not spec.rate_search:
    enc = codecs.encode_once_at_bpp(gray, spec.codec, bpp)
    return codecs.decode(enc), enc
  return codecs.roundtrip(gray, spec.codec, bpp=bpp)


def image_blocks(image_id: str, gray: np.ndarray, spec: BlockSpec):
  """Compresses one (prepared) image and cuts it into blocks.

  Returns:
    (blocks, encoded): `tf_hbd.codecs.patches.Blocks` (context from the decoded
    image, target from `gray`) and the `tf_hbd.codecs.legacy.Encoded` stream.
  """
  decoded, enc = _roundtrip(image_id, gray, spec)
  blocks = patches.blocks_from_image(decoded, spec.patch_size, spec.strategy,
                                     original=gray)
  return blocks, enc


def tile_side(patch_size: int, tile: int = 0) -> int:
  """T, the side of a record's tile in patches: `tile` if > 0, else
  max(8, 128 // d) (16 x 16 patches for d = 8, 8 x 8 for d >= 16).

  A T x T tile stores (T + 2)^2 decoded + T^2 original patches for T^2 blocks
  (less at the image border), 1.14 x 2 d^2 bytes per block for T = 16.
  """
  if tile:
    return int(tile)
  return max(8, 128 // int(patch_size))


TileBounds = collections.namedtuple("TileBounds", ["tile", "window"])
TileBounds.__doc__ = """Where a tile record sits in the patch grid.

Attributes:
  tile: (top, left, rows, cols) of its target patches.
  window: (top, left, rows, cols) of the decoded patches its blocks use.
"""


def _cuts(n: int, t: int):
  k = -(-n // t)  # near-equal parts of at most t
  return [(n * i) // k for i in range(k + 1)]


def _axis_window(n: int, t0: int, t1: int):
  """[lo, hi) of the grid lines the blocks of targets t0..t1-1 reach into,
  under either boundary strategy."""
  t = np.arange(t0, t1)
  centre = t if n < 3 else np.clip(t, 1, n - 2)  # paper rule
  lo = min(t0 - 1, int(centre.min()) - 1)  # t0 - 1: replicate
  hi = max(t1, int(centre.max()) + 1)
  return max(lo, 0), min(hi, n - 1) + 1


def tile_bounds(grid_shape, tile: int):
  """The tiles of a patch grid, row-major, as `TileBounds`.

  Each axis is cut into the fewest near-equal parts of at most `tile`
  patches; every grid cell is the target of exactly one tile.
  """
  r, c = (int(v) for v in grid_shape)
  rows, cols = _cuts(r, int(tile)), _cuts(c, int(tile))
  out = []
  for r0, r1 in zip(rows[:-1], rows[1:]):
    a0, a1 = _axis_window(r, r0, r1)
    for c0, c1 in zip(cols[:-1], cols[1:]):
      b0, b1 = _axis_window(c, c0, c1)
      out.append(TileBounds((r0, c0, r1 - r0, c1 - c0),
                            (a0, b0, a1 - a0, b1 - b0)))
  return out


def examples_for_image(image_id: str, gray: np.ndarray, spec: BlockSpec,
                       square: int = 0) -> Iterator[tuple]:
  """Yields ``(key, example)`` for every tile record of one image.

  Keys are ``"<image_id>#<row>_<col>"`` of the tile's top-left target
  (unique per image and tile).
  """
  gray = prepare_image(gray, square, spec.max_side)
  decoded, enc = _roundtrip(image_id, gray, spec)
  d = spec.patch_size
  dec = patches.to_patches(decoded, d)
  orig = patches.to_patches(gray, d)
  if dec.patches.shape != orig.patches.shape:
    raise ValueError(f"{image_id}: the codec changed the image shape "
                     f"{gray.shape} -> {decoded.shape}")
  common = {
      "grid_shape": np.asarray(dec.grid_shape, np.int32),
      "image_shape": np.asarray(dec.image_shape, np.int32),
      "bpp": np.float32(enc.bpp),
      "codec_setting": np.float32(enc.setting),
      "image_id": image_id,
  }
  for bounds in tile_bounds(dec.grid_shape, tile_side(d, spec.tile)):
    r0, c0, tr, tc = bounds.tile
    a0, b0, wr, wc = bounds.window
    yield f"{image_id}#{r0}_{c0}", {
        "decoded": np.ascontiguousarray(
            dec.patches[a0:a0 + wr, b0:b0 + wc]).reshape(-1, d, d),
        "original": np.ascontiguousarray(
            orig.patches[r0:r0 + tr, c0:c0 + tc]).reshape(-1, d, d),
        "tile": np.asarray(bounds.tile, np.int32),
        "window": np.asarray(bounds.window, np.int32),
        **common,
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


BLOCKS_COUNTER_NAMESPACE = "tf_hbd"


def _blocks_in(example) -> int:
  return int(example["tile"][2]) * int(example["tile"][3])


def _counted_examples(item: ImageItem, spec: BlockSpec, skip_unreadable: bool,
                      split: str) -> Iterator[tuple]:
  """`examples_for_item` that adds its blocks to a Beam counter of `split`."""
  beam = tfds.core.lazy_imports.apache_beam
  counter = beam.metrics.Metrics.counter(BLOCKS_COUNTER_NAMESPACE,
                                         f"blocks/{split}")
  for key, example in examples_for_item(item, spec, skip_unreadable):
    counter.inc(_blocks_in(example))
    yield key, example


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


def _axis_members(t0, tn, n, w0, strategy):
  t = t0 + tf.range(tn)
  if strategy == "paper":
    t = tf.where(n >= 3, tf.minimum(tf.maximum(t, 1), n - 2), t)
  elif strategy != "replicate":
    raise ValueError(f"unknown boundary strategy {strategy!r}; choose from "
                     f"{patches.BOUNDARY_STRATEGIES}")
  members = tf.clip_by_value(t[:, None] + tf.constant([-1, 0, 1]), 0, n - 1)
  position = t0 + tf.range(tn) - t + 1
  return members - w0, position


def tile_blocks(tile, window, grid_shape, decoded, original,
                strategy: str = "paper"):
  """Cuts the blocks of one tile record (TensorFlow ops; eager or traced).

  Args:
    tile, window: (4,) integer (top, left, rows, cols), as stored.
    grid_shape: (2,) integer (R, C).
    decoded: (window rows * window cols, d, d) decoded patches, row-major.
    original: (tile rows * tile cols, d, d) original patches, row-major.
    strategy: "paper" or "replicate" (see `tf_hbd.codecs.patches`).

  Returns:
    (context (N, 9, d, d), position (N,) int32, target (N, d, d),
    coords (N, 2) int32): the blocks of the tile's targets, row-major, the
    same as `tf_hbd.codecs.patches.make_blocks` gives for those targets.
  """
  tile = tf.cast(tile, tf.int32)
  window = tf.cast(window, tf.int32)
  grid_shape = tf.cast(grid_shape, tf.int32)
  rows, pr = _axis_members(tile[0], tile[2], grid_shape[0], window[0],
                           strategy)
  cols, pc = _axis_members(tile[1], tile[3], grid_shape[1], window[1],
                           strategy)
  index = rows[:, None, :, None] * window[3] + cols[None, :, None, :]
  context = tf.gather(decoded, tf.reshape(index, [-1, 9]))
  position = tf.reshape(pr[:, None] * 3 + pc[None, :], [-1])
  ti, tj = tf.meshgrid(tile[0] + tf.range(tile[2]), tile[1] + tf.range(tile[3]),
                       indexing="ij")
  coords = tf.stack([tf.reshape(ti, [-1]), tf.reshape(tj, [-1])], axis=1)
  return context, position, tf.convert_to_tensor(original), coords


def reassemble(examples) -> dict:
  """Re-assembles whole images from their records.

  Args:
    examples: an iterable of example dicts (numpy, as from `tfds.as_numpy`),
      tile records (version 2) or block records (version 1), in any order;
      `image_id` may be bytes or str.

  Returns:
    {image_id: (original, decoded)} uint8 images.
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
    if "tile" in exs[0]:
      d = exs[0]["original"].shape[-1]
      orig = np.zeros(grid_shape + (d, d), np.uint8)
      dec = np.zeros_like(orig)
      seen = np.zeros(grid_shape, int)
      for e in exs:
        r0, c0, tr, tc = (int(v) for v in e["tile"])
        a0, b0, wr, wc = (int(v) for v in e["window"])
        orig[r0:r0 + tr, c0:c0 + tc] = e["original"].reshape(tr, tc, d, d)
        dec[a0:a0 + wr, b0:b0 + wc] = e["decoded"].reshape(wr, wc, d, d)
        seen[r0:r0 + tr, c0:c0 + tc] += 1
      if not np.all(seen == 1):
        raise ValueError(f"{image_id}: the tiles do not cover its grid once")
      out[image_id] = (patches.from_patches(orig, image_shape),
                       patches.from_patches(dec, image_shape))
      continue
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

  The error's first line (the one a traceback ends with) names the folder
  and what to do; the expected layout follows, once.

  Args:
    dl_manager: the builder's download manager.
    expected: a description of the expected layout (the builder's
      MANUAL_DOWNLOAD_INSTRUCTIONS).
  """
  try:
    root = dl_manager.manual_dir
  except AssertionError as e:  # TFDS: missing or empty manual dir
    # TFDS's message names the folder and repeats the builder's
    # instructions, which ours gives once; `from None`: no chained
    # traceback repeating it.
    lines = str(e).strip().splitlines()
    m = re.match(r"Manual directory (.+?) does not exist",
                 lines[0] if lines else "")
    first = (f"{m.group(1)}: the --manual_dir folder does not exist or is "
             "empty; put the data there as laid out below, or pass the "
             "folder that holds it with --manual_dir DIR" if m else
             f"{lines[0] if lines else 'no manual directory given'}; pass "
             "the folder that holds the data with --manual_dir DIR")
    raise ManualDataError(
        f"{first}\n{expected.rstrip()}\nPass the data with `tfds build ... "
        "--manual_dir DIR` (or download_config=tfds.download.DownloadConfig("
        "manual_dir=DIR)).") from None
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
  rates), so TFDS writes identical records. The number of blocks of each
  split (a record holds a tile of many) is counted during generation (a Beam
  counter on Beam) and stored in the metadata as ``blocks_per_split``.
  """

  VERSION = tfds.core.Version("2.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release.",
      "2.0.0": "Tile records: one record per tile of up to 16 x 16 (d = 8) "
               "or 8 x 8 patches holds its original and decoded patches once;"
               " blocks are cut at read time (paper or replicate). About 5x "
               "smaller, many times faster to build. Version 1.0.0 builds "
               "are still read by tf_hbd.data.pipelines.training_dataset.",
      "2.1.0": "JPEG 2000 configs (jp2, jp2_16): each image is coded once "
               "at compression ratio 8 / its drawn rate (rate_search=False;"
               " the stored bpp is the achieved rate, 0.90-1.01 x the drawn "
               "one) instead of searching the ratio (~9 encodes): the JP2 "
               "builds are several times faster. Same record format; jpeg "
               "and configs with rate_search=true (the default of custom "
               "configs) give the records of 2.0.0.",
  }
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
    self.info.metadata["tile_side"] = tile_side(self.builder_config.patch_size,
                                                self.builder_config.tile)
    self.info.metadata["blocks_per_split"] = {}
    return {split: self._generate_examples(items, split)
            for split, items in split_items.items()}

  def _generate_examples(self, items, split="train"):
    spec = self.builder_config.spec
    if self._use_beam:
      beam = tfds.core.lazy_imports.apache_beam
      return (beam.Create(list(items))
              | beam.Reshuffle()
              | beam.FlatMap(_counted_examples, spec=spec,
                             skip_unreadable=self.SKIP_UNREADABLE,
                             split=split))
    return self._iter_examples(items, spec, split)

  def _iter_examples(self, items, spec, split):
    counts = self.info.metadata["blocks_per_split"]
    counts[split] = 0
    for item in items:
      for key, example in examples_for_item(item, spec, self.SKIP_UNREADABLE):
        counts[split] += _blocks_in(example)
        yield key, example

  def _process_pipeline_result(self, pipeline_result):
    """Stores the Beam block counters as ``blocks_per_split``."""
    beam = tfds.core.lazy_imports.apache_beam
    query = pipeline_result.metrics().query(
        beam.metrics.metric.MetricsFilter().with_namespace(
            BLOCKS_COUNTER_NAMESPACE))
    counts = collections.Counter()
    for result in query["counters"]:
      name = result.key.metric.name
      if name.startswith("blocks/"):
        value = result.committed
        if value is None:
          value = result.attempted
        counts[name[len("blocks/"):]] += int(value)
    self.info.metadata["blocks_per_split"] = dict(counts)
