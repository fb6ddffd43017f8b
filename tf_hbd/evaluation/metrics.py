"""PSNR, SSIM and MS-SSIM with one documented convention.

Convention (used by every script and result file of the package):

* images are gray, compared at full size with no border crop;
* both images are rounded and clipped to 8 bits (uint8) before comparison, so
  a model's float output is scored exactly as the file it would write;
* ``max_val = 255``; TF's own `tf.image.psnr`, `tf.image.ssim` (11 x 11
  Gaussian window, sigma 1.5, k1 = 0.01, k2 = 0.03) and
  `tf.image.ssim_multiscale` (Wang et al. 2003 weights).

MS-SSIM at 5 scales needs a shorter side of at least 11 * 2**4 = 176 pixels.
For smaller images `ms_ssim` uses the largest number of scales that fits and
renormalises the first weights to sum to 1 (``ms_ssim(..., strict=True)``
raises instead). SSIM needs at least 11 x 11 pixels; smaller images raise
`ValueError`.
"""

import numpy as np
import tensorflow as tf

__all__ = ["to_uint8", "psnr", "ssim", "ms_ssim", "ms_ssim_scales",
           "all_metrics", "MS_SSIM_WEIGHTS", "FILTER_SIZE"]

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


def ssim(a, b) -> float:
  """SSIM (tf.image.ssim) of two 8-bit images."""
  a, b = _pair(a, b)
  if min(a.shape) < FILTER_SIZE:
    raise ValueError(f"SSIM needs images of at least {FILTER_SIZE}x"
                     f"{FILTER_SIZE} pixels, got {a.shape}")
  return float(tf.image.ssim(_tf(a), _tf(b), max_val=255.0)[0])


def ms_ssim_scales(shape) -> int:
  """Number of MS-SSIM scales (<= 5) that an image of `shape` supports."""
  n = 1
  while n < 5 and min(shape) // (2**n) >= FILTER_SIZE:
    n += 1
  return n


def ms_ssim(a, b, strict: bool = False) -> float:
  """MS-SSIM (tf.image.ssim_multiscale); fewer scales for small images."""
  a, b = _pair(a, b)
  if min(a.shape) < FILTER_SIZE:
    raise ValueError(f"MS-SSIM needs images of at least {FILTER_SIZE}x"
                     f"{FILTER_SIZE} pixels, got {a.shape}")
  n = ms_ssim_scales(a.shape)
  if n < 5 and strict:
    raise ValueError(f"5-scale MS-SSIM needs a shorter side >= "
                     f"{FILTER_SIZE * 16}, got {a.shape}")
  w = np.array(MS_SSIM_WEIGHTS[:n])
  w = w / w.sum()
  return float(tf.image.ssim_multiscale(
      _tf(a), _tf(b), max_val=255.0, power_factors=w.tolist())[0])


def all_metrics(reference, image) -> dict:
  """{'psnr', 'ssim', 'ms-ssim'} of `image` against `reference`."""
  return {"psnr": psnr(reference, image), "ssim": ssim(reference, image),
          "ms-ssim": ms_ssim(reference, image)}
