"""Synthetic gray images: flat fields, text, line drawings, gradients, graphics.

Photographs (train400, BSD68, Kodak) have almost no flat, saturated or
hard-edged content, so a decoder trained on them alone learns corrections
that harm documents, graphics and black or white regions. These generators
make such content, seeded, with no data files:

| kind | what |
|---|---|
| ``flat`` | one gray level |
| ``text`` | lines of random text, dark on light or light on dark |
| ``lines`` | a line drawing (strokes, outlines) on a flat background |
| ``gradient`` | a linear or radial ramp between two levels |
| ``graphics`` | hard-edged filled shapes in a few flat levels |
| ``checkerboard`` | two levels in square cells |

`make(kind, rng, shape)` draws one image; `tone_map` squeezes a photograph
into a dark or bright range. Training (`tf_hbd.data.recompress`) and the
do-no-harm stress set (`tf_hbd.data.stress_set`) both use them, with disjoint
seeds.
"""

import string

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

__all__ = ["KINDS", "make", "tone_map"]

_CHARS = string.ascii_letters + string.digits + " .,;:-()/"


def _levels(rng, contrast_min=40):
  """Two gray levels at least `contrast_min` apart, often 0 / 255."""
  if rng.random() < 0.5:
    lo, hi = 0, 255
  else:
    lo = int(rng.integers(0, 256 - contrast_min))
    hi = int(rng.integers(lo + contrast_min, 256))
  return (lo, hi) if rng.random() < 0.5 else (hi, lo)


def _font(rng):
  size = int(rng.integers(8, 40))
  try:
    return ImageFont.load_default(size=size)
  except TypeError:  # Pillow without FreeType: the fixed bitmap font
    return ImageFont.load_default()


def flat(rng, shape):
  level = int(rng.choice([0, 255])) if rng.random() < 0.3 else int(
      rng.integers(0, 256))
  return np.full(shape, level, np.uint8)


def text(rng, shape):
  bg, fg = _levels(rng)
  img = Image.new("L", (shape[1], shape[0]), bg)
  draw = ImageDraw.Draw(img)
  y = int(rng.integers(-4, 8))
  while y < shape[0]:
    font = _font(rng)
    n = int(rng.integers(5, 60))
    line = "".join(rng.choice(list(_CHARS), n))
    draw.text((int(rng.integers(-10, 20)), y), line, fill=fg, font=font)
    y += int(font.size * rng.uniform(1.0, 1.8)) if hasattr(font, "size") \
        else 12
  return np.asarray(img, np.uint8)


def lines(rng, shape):
  bg, fg = _levels(rng)
  img = Image.new("L", (shape[1], shape[0]), bg)
  draw = ImageDraw.Draw(img)
  h, w = shape
  for _ in range(int(rng.integers(3, 25))):
    x0, x1 = sorted(rng.integers(-w // 4, w + w // 4, 2).tolist())
    y0, y1 = sorted(rng.integers(-h // 4, h + h // 4, 2).tolist())
    width = int(rng.integers(1, 6))
    kind = rng.integers(0, 3)
    if kind == 0:
      draw.line([(x0, y0), (x1, y1)], fill=fg, width=width)
    elif kind == 1:
      draw.rectangle([x0, y0, x1, y1], outline=fg, width=width)
    else:
      draw.ellipse([x0, y0, x1, y1], outline=fg, width=width)
  return np.asarray(img, np.uint8)


def gradient(rng, shape):
  a, b = _levels(rng, contrast_min=1)
  h, w = shape
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
  if rng.random() < 0.5:
    angle = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(angle) + yy * np.sin(angle)
  else:
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    t = np.hypot(yy - cy, xx - cx)
  t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
  return np.round(a + (b - a) * t).astype(np.uint8)


def graphics(rng, shape):
  levels = rng.integers(0, 256, int(rng.integers(2, 6)))
  if rng.random() < 0.5:
    levels[:2] = [0, 255]
  img = Image.new("L", (shape[1], shape[0]), int(levels[0]))
  draw = ImageDraw.Draw(img)
  h, w = shape
  for _ in range(int(rng.integers(2, 12))):
    x0, x1 = sorted(rng.integers(-w // 4, w + w // 4, 2).tolist())
    y0, y1 = sorted(rng.integers(-h // 4, h + h // 4, 2).tolist())
    fill = int(rng.choice(levels))
    kind = rng.integers(0, 3)
    if kind == 0:
      draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif kind == 1:
      draw.ellipse([x0, y0, x1, y1], fill=fill)
    else:
      pts = [tuple(p) for p in np.stack([rng.integers(0, w, 3),
                                         rng.integers(0, h, 3)], 1).tolist()]
      draw.polygon(pts, fill=fill)
  return np.asarray(img, np.uint8)


def checkerboard(rng, shape):
  a, b = _levels(rng)
  cell = int(rng.integers(1, 33))
  h, w = shape
  yy, xx = np.mgrid[0:h, 0:w]
  oy, ox = rng.integers(0, cell, 2)
  board = ((yy + oy) // cell + (xx + ox) // cell) % 2
  return np.where(board == 0, a, b).astype(np.uint8)


KINDS = {"flat": flat, "text": text, "lines": lines, "gradient": gradient,
         "graphics": graphics, "checkerboard": checkerboard}


def make(kind: str, rng: np.random.Generator, shape) -> np.ndarray:
  """One synthetic uint8 image of `kind` (a key of `KINDS`)."""
  if kind not in KINDS:
    raise ValueError(f"unknown synthetic kind {kind!r}; choose from "
                     f"{sorted(KINDS)}")
  return KINDS[kind](rng, tuple(int(s) for s in shape))


def tone_map(image: np.ndarray, lo: int, hi: int) -> np.ndarray:
  """Maps a uint8 image linearly from [0, 255] into [lo, hi]."""
  x = np.asarray(image, np.float64)
  return np.round(lo + (hi - lo) * x / 255.0).astype(np.uint8)
