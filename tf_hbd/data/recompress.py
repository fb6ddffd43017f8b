"""Training data that does not run out: every image compressed afresh each epoch.

For small corpora (train400, the sample photographs) the fixed patch-block
records (`tf_hbd.data.blocks_dataset`) show the model each image at one rate
only. This stream instead makes, for every epoch ``e`` and from
``numpy.random.default_rng([seed, e])`` alone:

1. a crop of every source image (several from large ones; the count per
   image is fixed, so every epoch has the same number of blocks), flipped
   and/or transposed (one of the 8 symmetries of the square), and, with
   probability ``tone_fraction``, squeezed into a dark or bright range
   (`tf_hbd.data.synthetic.tone_map`) so that black and white content is seen;
2. ``synthetic_fraction`` x (number of crops) synthetic images
   (`tf_hbd.data.synthetic`: flat fields, text, line drawings, gradients,
   graphics, checkerboards);
3. each image compressed with the codec at a fresh random setting (JPEG:
   quality from `QUALITY_MIXTURE`; JPEG 2000: bpp log-uniform in
   ``bpp_range``), decoded, and cut into blocks (`tf_hbd.codecs.patches`, boundary
   rule ``strategy``) with the original's patches as targets and the
   bitstream's setting (`tf_hbd.codecs.codec_setting`) attached to every block;
4. all blocks of the epoch shuffled and batched (the last partial batch is
   dropped).

Augmentation happens before compression, so the codec's block grid is
always that of the compressed image. With ``grid_offset`` (JPEG 2000 only)
the blocks of each compressed image are cut from a random offset of 0..d-1
pixels in each direction instead of from its origin (an (H - d) x (W - d)
window, so every epoch keeps its block count): JPEG 2000's wavelet grid has
no 8 x 8 structure, and the model then sees every phase of it (as the
grid-shift ensemble of `hbd enhance --shifts` does). With ``codec_error``
every block also carries its image's codec error, (per-pixel MAE, MSE) of
the decoded image in [0, 1] units, for a loss normalised per image
(`tf_hbd.training.algorithms.base.Algorithm.reference_error`). The stream
is a pure function of the seed and the batch number:
``batches(start_batch)`` rebuilds the epoch of ``start_batch`` and skips
into it (exact resume). The next epoch is made in a background thread while
the current one is consumed.
"""

import dataclasses
import queue
import threading
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import patches as patches_lib
from tf_hbd.data import synthetic

__all__ = ["RecompressConfig", "RecompressStream", "QUALITY_MIXTURE",
           "parse_mixture", "parse_bpp_range"]

# JPEG quality: (probability, low, high) components, uniform integers within;
# most weight where artifacts are strong, a quarter in the middle, and a
# sixth at high quality up to 100 (where the decoder must learn to leave the
# image alone: with (0.7, 5-40), (0.3, 41-95) a first decoder lost 5 dB on
# photographs at quality 95).
QUALITY_MIXTURE = ((0.6, 5, 40), (0.25, 41, 85), (0.15, 86, 100))


@dataclasses.dataclass
class RecompressConfig:
  """What the stream makes (every knob of the on-the-fly data).

  Attributes:
    codec: "jpeg" or "jp2".
    patch_size: d.
    crop: side of the square crops (images smaller than this are used
      whole); 0 keeps whole images.
    max_crops: at most this many crops per source image per epoch.
    strategy: boundary rule of the blocks ("replicate" or "paper").
    quality_mixture: JPEG quality mixture (see `QUALITY_MIXTURE`).
    bpp_range: JPEG 2000 rate range (log-uniform).
    tone_fraction: share of crops squeezed into a dark or bright range.
    synthetic_fraction: synthetic images per crop of a real image.
    flip: apply random flips / transposes.
    grid_offset: cut blocks at a random offset from the codec's origin
      (JPEG 2000 only).
    codec_error: attach each image's codec (MAE, MSE) to its blocks.
  """
  codec: str = "jpeg"
  patch_size: int = 8
  crop: int = 176
  max_crops: int = 8
  strategy: str = "replicate"
  quality_mixture: Tuple = QUALITY_MIXTURE
  bpp_range: Tuple[float, float] = (0.1, 2.0)
  tone_fraction: float = 0.1
  synthetic_fraction: float = 0.1
  flip: bool = True
  grid_offset: bool = False
  codec_error: bool = False


def parse_mixture(spec: str):
  """"0.6:5-40,0.4:41-100" -> ((0.6, 5, 40), (0.4, 41, 100))."""
  out = []
  for part in [p for p in spec.split(",") if p]:
    try:
      prob, rng = part.split(":")
      lo, hi = rng.split("-")
      out.append((float(prob), int(lo), int(hi)))
    except ValueError as e:
      raise ValueError(f"bad quality mixture component {part!r}; expected "
                       "PROB:LOW-HIGH, e.g. 0.6:5-40") from e
    if not (out[-1][0] > 0 and 1 <= out[-1][1] <= out[-1][2] <= 100):
      raise ValueError(f"bad quality mixture component {part!r}")
  if not out:
    raise ValueError("empty quality mixture")
  return tuple(out)


def parse_bpp_range(spec: str):
  """"0.15-1" -> (0.15, 1.0): a JPEG 2000 rate range in bpp (log-uniform)."""
  try:
    lo, hi = (float(x) for x in spec.split("-"))
  except ValueError as e:
    raise ValueError(f"bad JPEG 2000 rate range {spec!r}; expected "
                     "LOW-HIGH in bpp, e.g. 0.15-1") from e
  if not 0 < lo <= hi <= 8:
    raise ValueError(f"bad JPEG 2000 rate range {spec!r}; need "
                     "0 < LOW <= HIGH <= 8 bpp")
  return (lo, hi)


def _crops_per_image(shape, crop, max_crops):
  if not crop:
    return 1
  h, w = shape
  return int(max(1, min(max_crops, (h * w) // (2 * crop * crop))))


class RecompressStream:
  """An endless, seeded, resumable stream of freshly compressed blocks.

  Args:
    images: the source images, uint8 gray (H, W) each (at least d x d).
    config: a `RecompressConfig`.
    batch_size: blocks per batch.
    seed: seeds everything.
  """

  def __init__(self, images: Sequence[np.ndarray], config: RecompressConfig,
               batch_size: int, seed: int = 0):
    if not images:
      raise ValueError("no training images")
    if config.codec not in codec_setting.SIZE:
      raise ValueError(f"unknown codec {config.codec!r}")
    if config.grid_offset and config.codec != "jp2":
      raise ValueError("grid_offset is for JPEG 2000 only (JPEG's block grid "
                       "must stay aligned)")
    self.images = [np.ascontiguousarray(im, np.uint8) for im in images]
    self.config = config
    self.batch_size = int(batch_size)
    self.seed = int(seed)
    d = config.patch_size
    for i, im in enumerate(self.images):
      if im.ndim != 2 or min(im.shape) < d:
        raise ValueError(f"training image {i} has shape {im.shape}; need a "
                         f"2-D gray image of at least {d}x{d}")
    self._crops = [_crops_per_image(im.shape, config.crop, config.max_crops)
                   for im in self.images]
    n_real = sum(self._crops)
    self._n_synth = int(round(config.synthetic_fraction * n_real))
    self.blocks_per_epoch = sum(
        self._blocks(self._crop_shape(im.shape)) * c
        for im, c in zip(self.images, self._crops)) + self._n_synth * \
        self._blocks((config.crop or 176,) * 2)
    self.batches_per_epoch = self.blocks_per_epoch // self.batch_size
    if self.batches_per_epoch < 1:
      raise ValueError(f"{self.blocks_per_epoch} blocks per epoch: fewer "
                       f"than one batch of {self.batch_size}")

  @property
  def setting_size(self) -> int:
    return codec_setting.SIZE[self.config.codec]

  def _crop_shape(self, shape):
    c = self.config.crop
    return tuple(shape) if not c else (min(c, shape[0]), min(c, shape[1]))

  def _window(self, shape):
    """Shape of the part of a compressed image that is cut into blocks."""
    d = self.config.patch_size
    if self.config.grid_offset and min(shape) >= 2 * d:
      return (shape[0] - d, shape[1] - d)
    return tuple(shape)

  def _blocks(self, shape):
    d = self.config.patch_size
    shape = self._window(shape)
    return -(-shape[0] // d) * -(-shape[1] // d)

  def _cut(self, decoded, img, rng):
    """(decoded, original) of the window cut into blocks: the whole image,
    or with ``grid_offset`` a window at a random offset 0..d-1."""
    h, w = self._window(img.shape)
    if (h, w) == img.shape:
      return decoded, img
    oy, ox = (int(v) for v in rng.integers(0, self.config.patch_size, 2))
    return decoded[oy:oy + h, ox:ox + w], img[oy:oy + h, ox:ox + w]

  # ---- one epoch ---------------------------------------------------------

  def _setting(self, rng):
    c = self.config
    if c.codec == "jpeg":
      probs = np.array([m[0] for m in c.quality_mixture], np.float64)
      lo, hi = c.quality_mixture[rng.choice(len(probs),
                                            p=probs / probs.sum())][1:]
      return int(rng.integers(lo, hi + 1))
    lo, hi = np.log(c.bpp_range[0]), np.log(c.bpp_range[1])
    return float(np.exp(rng.uniform(lo, hi)))

  def _compress(self, img, rng):
    """(decoded, setting features) of one image at a random setting.

    JPEG 2000 is coded at the compression ratio 8 / bpp in one pass (the
    achieved rate, which the setting reports, is close to bpp)."""
    c = self.config
    value = self._setting(rng)
    enc = codecs.encode_at_quality(
        img, c.codec, value if c.codec == "jpeg" else 8.0 / value)
    return codecs.decode(enc), codec_setting.features(enc.data, c.codec,
                                                      img.shape)

  def _sources(self, rng):
    """The epoch's uncompressed images (crops, then synthetic)."""
    c = self.config
    out = []
    for im, n in zip(self.images, self._crops):
      ch, cw = self._crop_shape(im.shape)
      for _ in range(n):
        y = int(rng.integers(0, im.shape[0] - ch + 1))
        x = int(rng.integers(0, im.shape[1] - cw + 1))
        img = im[y:y + ch, x:x + cw]
        if c.flip:
          img = patches_lib.dihedral(img, int(rng.integers(0, 8)))
        if rng.random() < c.tone_fraction:
          span = int(rng.integers(8, 80))
          img = (synthetic.tone_map(img, 0, span) if rng.random() < 0.5 else
                 synthetic.tone_map(img, 255 - span, 255))
        out.append(np.ascontiguousarray(img))
    side = c.crop or 176
    kinds = sorted(synthetic.KINDS)
    for _ in range(self._n_synth):
      out.append(synthetic.make(kinds[int(rng.integers(0, len(kinds)))], rng,
                                (side, side)))
    return out

  def epoch_arrays(self, epoch: int):
    """All blocks of `epoch`, shuffled: (context uint8 (N, 9, d, d),
    position int32, target uint8 (N, d, d), setting float32 (N, S)
    [, codec_error float32 (N, 2)])."""
    rng = np.random.default_rng([self.seed, int(epoch)])
    d = self.config.patch_size
    parts = {"context": [], "position": [], "target": [], "setting": []}
    if self.config.codec_error:
      parts["codec_error"] = []
    for img in self._sources(rng):
      decoded, setting = self._compress(img, rng)
      if self.config.codec_error:
        diff = (decoded.astype(np.float64) - img) / 255.0
        error = np.array([np.mean(np.abs(diff)), np.mean(diff**2)],
                         np.float32)
      decoded, original = self._cut(decoded, img, rng)
      blocks = patches_lib.blocks_from_image(decoded, d, self.config.strategy,
                                             original=original)
      parts["context"].append(blocks.context)
      parts["position"].append(blocks.position)
      parts["target"].append(blocks.target)
      parts["setting"].append(np.broadcast_to(setting,
                                              (len(blocks), setting.size)))
      if self.config.codec_error:
        parts["codec_error"].append(np.broadcast_to(error, (len(blocks), 2)))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    assert len(arrays["position"]) == self.blocks_per_epoch
    order = rng.permutation(self.blocks_per_epoch)
    return {k: v[order] for k, v in arrays.items()}

  # ---- the stream --------------------------------------------------------

  def _epochs(self, first_epoch):
    """Yields epoch arrays, making the next one in a background thread."""
    q = queue.Queue(maxsize=1)
    stop = threading.Event()

    def work():
      e = first_epoch
      while not stop.is_set():
        arrays = self.epoch_arrays(e)
        while not stop.is_set():
          try:
            q.put(arrays, timeout=0.5)
            break
          except queue.Full:
            continue
        e += 1

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
      while True:
        yield q.get()
    finally:
      stop.set()

  def numpy_batches(self, start_batch: int = 0):
    """Endless numpy batches from batch number `start_batch` on."""
    epoch, skip = divmod(int(start_batch), self.batches_per_epoch)
    b = self.batch_size
    for arrays in self._epochs(epoch):
      for i in range(skip, self.batches_per_epoch):
        yield {k: v[i * b:(i + 1) * b] for k, v in arrays.items()}
      skip = 0

  def batches(self, start_batch: int = 0) -> tf.data.Dataset:
    """The training batches (the dict `tf_hbd.training.algorithms` expects) as an
    endless `tf.data.Dataset` from batch `start_batch` on."""
    d, s, b = self.config.patch_size, self.setting_size, self.batch_size
    sig = {"context": tf.TensorSpec([b, 9, d, d], tf.uint8),
           "position": tf.TensorSpec([b], tf.int32),
           "target": tf.TensorSpec([b, d, d], tf.uint8),
           "setting": tf.TensorSpec([b, s], tf.float32)}
    if self.config.codec_error:
      sig["codec_error"] = tf.TensorSpec([b, 2], tf.float32)
    ds = tf.data.Dataset.from_generator(
        lambda: self.numpy_batches(start_batch), output_signature=sig)
    scale = tf.constant(1.0 / 255.0, tf.float32)

    def to_float(x):
      out = dict(x)
      out["context"] = tf.cast(x["context"], tf.float32) * scale
      out["target"] = tf.cast(x["target"], tf.float32) * scale
      return out

    return ds.map(to_float).prefetch(8)

  def describe(self, names: Optional[List[str]] = None) -> str:
    c = self.config
    setting = (f"quality mixture {c.quality_mixture}" if c.codec == "jpeg"
               else f"{c.bpp_range[0]}-{c.bpp_range[1]} bpp")
    return (f"{len(self.images)} images{' (' + names + ')' if names else ''},"
            f" recompressed every epoch ({c.codec}, {setting}, crop {c.crop},"
            f" {self._n_synth} synthetic, tone {c.tone_fraction}, "
            f"{c.strategy}{', grid offset' if c.grid_offset else ''}"
            f"{', codec error' if c.codec_error else ''}): "
            f"{self.blocks_per_epoch} blocks per epoch")
