"""PSNR, SSIM and MS-SSIM with one documented convention.

Convention (used by every script and result file of the package):

* images are gray, compared at full size with no border crop;
* both images are rounded and clipped to 8 bits (uint8) before comparison, so
  a model's float output is scored exactly as the file it would write;
* ``max_val = 255``; TF's own `tf.image.psnr`, `tf.image.ssim` (11 x 11
  Gaussian window, sigma 1.5, k1 = 0.01, k2 = 0.03) and
  `tf.image.ssim_multiscale` (Wang et al. 2003 weights). `ssim` and
  `ms_ssim` return those functions' values to the last bit with a third of
  their work (`_ssim_scale`: one 4-channel convolution where TF makes four
  one-channel ones; `metrics_test` checks the bits against `tf_ssim` /
  `tf_ms_ssim`, which call `tf.image` itself).

MS-SSIM at 5 scales needs a shorter side of at least 11 * 2**4 = 176 pixels.
For smaller images `ms_ssim` uses the largest number of scales that fits and
renormalises the first weights to sum to 1 (``ms_ssim(..., strict=True)``
raises instead). SSIM needs at least 11 x 11 pixels; smaller images raise
`ValueError`.
"""

import numpy as np
import tensorflow as tf

__all__ = ["to_uint8", "psnr", "ssim", "ms_ssim", "ms_ssim_scales",
           "all_metrics", "MS_SSIM_WEIGHTS", "FILTER_SIZE", "METRIC_NAMES",
           "metric_function", "subset", "ssim_and_ms_ssim", "tf_ssim",
           "tf_ms_ssim", "tf_metrics"]

METRIC_NAMES = ("psnr", "ssim", "ms-ssim")
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
FILTER_SIZE = 11


def to_uint8(image) -> np.ndarray:
  """Rounds and clips to uint8 (floats are taken to be in [0, 255])."""
  image = np.asarray(image)
  if image.dtype == np.uint8:
    return image
  return np.clip(np.rint(image.astype(np.float64)), 0, 255).astype(np.uint8)


def _pair(a, b):
  a, b = to_uint8(a), to_uint8(b)
  if a.ndim == 3 and a.shape[-1] == 1:
    a = a[..., 0]
  if b.ndim == 3 and b.shape[-1] == 1:
    b = b[..., 0]
  if a.shape != b.shape or a.ndim != 2:
    raise ValueError(f"need two gray images of equal shape, got {a.shape} and "
                     f"{b.shape}")
  return a, b


def _tf(x):
  return tf.constant(x[None, :, :, None], dtype=tf.float32)


def psnr(a, b) -> float:
  """PSNR in dB of two 8-bit images (inf when identical)."""
  a, b = _pair(a, b)
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  if mse == 0:
    return float("inf")
  return float(10.0 * np.log10(255.0**2 / mse))


def _window(channels: int):
  """tf.image.ssim's 11 x 11 Gaussian window (sigma 1.5) for `channels`
  channels, computed with its float32 operations (a softmax of
  -d^2 / (2 sigma^2)), so that its weights are the same bits."""
  sigma = tf.constant(1.5, tf.float32)
  coords = tf.cast(tf.range(FILTER_SIZE), tf.float32)
  coords -= tf.cast(FILTER_SIZE - 1, tf.float32) / 2.0
  g = tf.square(coords)
  g *= -0.5 / tf.square(sigma)
  g = tf.reshape(g, [1, -1]) + tf.reshape(g, [-1, 1])
  g = tf.nn.softmax(tf.reshape(g, [1, -1]))
  return tf.tile(tf.reshape(g, [FILTER_SIZE, FILTER_SIZE, 1, 1]),
                 [1, 1, channels, 1])


def _ssim_scale(x, y):
  """(mean SSIM, mean contrast-structure) of two (1, H, W, 1) float32 images.

  The formula and float32 operations of `tf.image.ssim` (Wang et al. 2004,
  k1 = 0.01, k2 = 0.03, max 255) in the same order, with one change: its
  four Gaussian-filtered maps (means of x, y, x y and x^2 + y^2) come from
  one depthwise convolution of the four stacked as channels instead of four
  one-channel convolutions. TensorFlow's CPU kernel computes every channel
  with the same sequence of multiply-adds, so the values are the same bits
  (`metrics_test`, against `tf.image.ssim` itself) in about a third of the
  time: the convolutions are nearly all of SSIM's cost
  (``benchmarks/study_eval_profile.py``).
  """
  max_val = tf.constant(255.0, tf.float32)
  c1 = (0.01 * max_val)**2
  c2 = (0.03 * max_val)**2
  maps = tf.nn.depthwise_conv2d(
      tf.concat([x, y, x * y, tf.square(x) + tf.square(y)], axis=-1),
      _window(4), strides=[1, 1, 1, 1], padding="VALID")
  mean0, mean1, xy, sq = (maps[..., i:i + 1] for i in range(4))
  num0 = mean0 * mean1 * 2.0
  den0 = tf.square(mean0) + tf.square(mean1)
  luminance = (num0 + c1) / (den0 + c1)
  cs = (xy * 2.0 - num0 + c2) / (sq - den0 + c2)
  axes = tf.constant([-3, -2], tf.int32)
  return tf.reduce_mean(luminance * cs, axes), tf.reduce_mean(cs, axes)


def _halve(x):
  """tf.image.ssim_multiscale's downsampling: odd sides padded by symmetric
  reflection, then 2 x 2 average pooling."""
  h, w = x.shape[1], x.shape[2]
  if h % 2 or w % 2:
    x = tf.pad(x, [[0, 0], [0, h % 2], [0, w % 2], [0, 0]], mode="SYMMETRIC")
  return tf.nn.avg_pool2d(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                          padding="VALID")


def ssim(a, b) -> float:
  """SSIM of two 8-bit images: `tf.image.ssim`'s value (`_ssim_scale`)."""
  a, b = _pair(a, b)
  if min(a.shape) < FILTER_SIZE:
    raise ValueError(f"SSIM needs images of at least {FILTER_SIZE}x"
                     f"{FILTER_SIZE} pixels, got {a.shape}")
  value, _ = _ssim_scale(_tf(a), _tf(b))
  return float(tf.reduce_mean(value, [-1])[0])


def ms_ssim_scales(shape) -> int:
  """Number of MS-SSIM scales (<= 5) that an image of `shape` supports."""
  n = 1
  while n < 5 and min(shape) // (2**n) >= FILTER_SIZE:
    n += 1
  return n


def _ms_ssim_weights(shape, strict):
  n = ms_ssim_scales(shape)
  if n < 5 and strict:
    raise ValueError(f"5-scale MS-SSIM needs a shorter side >= "
                     f"{FILTER_SIZE * 16}, got {shape}")
  w = np.array(MS_SSIM_WEIGHTS[:n])
  return (w / w.sum()).tolist()


def ssim_and_ms_ssim(a, b, strict: bool = False):
  """(`ssim`, `ms_ssim`) of two 8-bit images in one pass: SSIM is MS-SSIM's
  first scale, computed once (the same values as the two calls)."""
  a, b = _pair(a, b)
  if min(a.shape) < FILTER_SIZE:
    raise ValueError(f"MS-SSIM needs images of at least {FILTER_SIZE}x"
                     f"{FILTER_SIZE} pixels, got {a.shape}")
  weights = _ms_ssim_weights(a.shape, strict)
  x, y = _tf(a), _tf(b)
  mcs, first = [], None
  for k in range(len(weights)):
    if k:
      x, y = _halve(x), _halve(y)
    value, cs = _ssim_scale(x, y)
    mcs.append(tf.nn.relu(cs))
    if first is None:
      first = float(tf.reduce_mean(value, [-1])[0])
  stacked = tf.stack(mcs[:-1] + [tf.nn.relu(value)], axis=-1)
  return first, float(tf.reduce_mean(
      tf.reduce_prod(tf.pow(stacked, weights), [-1]), [-1])[0])


def ms_ssim(a, b, strict: bool = False) -> float:
  """MS-SSIM of two 8-bit images: `tf.image.ssim_multiscale`'s value (its
  scales, weights and operations, each scale by `_ssim_scale`); fewer
  scales for small images."""
  return ssim_and_ms_ssim(a, b, strict)[1]


def tf_ssim(a, b) -> float:
  """SSIM by `tf.image.ssim` itself (the reference `ssim` reproduces)."""
  a, b = _pair(a, b)
  return float(tf.image.ssim(_tf(a), _tf(b), max_val=255.0)[0])


def tf_ms_ssim(a, b, strict: bool = False) -> float:
  """MS-SSIM by `tf.image.ssim_multiscale` itself (`ms_ssim`'s reference)."""
  a, b = _pair(a, b)
  return float(tf.image.ssim_multiscale(
      _tf(a), _tf(b), max_val=255.0,
      power_factors=_ms_ssim_weights(a.shape, strict))[0])


def tf_metrics(reference, image) -> dict:
  """`all_metrics` with SSIM and MS-SSIM by `tf.image` itself."""
  return {"psnr": psnr(reference, image), "ssim": tf_ssim(reference, image),
          "ms-ssim": tf_ms_ssim(reference, image)}


def all_metrics(reference, image) -> dict:
  """{'psnr', 'ssim', 'ms-ssim'} of `image` against `reference`."""
  both = ssim_and_ms_ssim(reference, image)
  return {"psnr": psnr(reference, image), "ssim": both[0],
          "ms-ssim": both[1]}


def metric_function(name: str):
  """The function computing metric `name` (one of `METRIC_NAMES`)."""
  fns = {"psnr": psnr, "ssim": ssim, "ms-ssim": ms_ssim}
  if name not in fns:
    raise ValueError(f"unknown metric {name!r}; known: {METRIC_NAMES}")
  return fns[name]


def subset(*names: str):
  """A measure like `all_metrics` computing only `names`, in that order.

  Each value is the one `all_metrics` gives (the same functions): an
  evaluation that records PSNR only need not pay for SSIM and MS-SSIM, whose
  11 x 11 Gaussian windows (depthwise convolutions) cost 30 to 60 times
  PSNR's time on a Kodak image (``benchmarks/study_eval_profile.py``).
  With both SSIM and MS-SSIM, one `ssim_and_ms_ssim` pass gives the two.
  The measure's ``names`` attribute lists what it computes.
  """
  if not names or len(set(names)) != len(names):
    raise ValueError(f"need distinct metric names, got {names}")
  fns = [(n, metric_function(n)) for n in names]
  pair = "ssim" in names and "ms-ssim" in names

  def measure(reference, image) -> dict:
    if pair:  # both from one pass (`ssim_and_ms_ssim`)
      got = dict(zip(("ssim", "ms-ssim"), ssim_and_ms_ssim(reference, image)))
      return {n: got[n] if n in got else fn(reference, image)
              for n, fn in fns}
    return {n: fn(reference, image) for n, fn in fns}

  measure.names = tuple(names)
  return measure
