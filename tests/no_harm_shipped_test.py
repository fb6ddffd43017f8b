"""Do no harm (issue 19) in CI: the shipped decoders on a fixed subset.

The full check is `benchmarks/no_harm.py` (every stress image, Kodak and
BSD68, JPEG quality 5..95, JPEG 2000 0.1..2 bpp); this runs the images and
settings where the decoders came closest to harm (near-lossless gradients and
line drawings, flats at the ends of the range, dark photographs, text) so
that a regression in a shipped model, a guard or a codec fails CI.
"""

from tf_hbd.evaluation import no_harm
from tf_hbd.inference import serving
from tf_hbd.data import stress_set

SUBSET = ("flat-0", "flat-1", "flat-128", "flat-255", "gradient-0",
          "gradient-1", "lines-0", "text-dark-on-light-0",
          "text-light-on-dark-0", "graphics-1", "checkerboard-0",
          "camera-dark", "camera-bright")
SETTINGS = {"jpeg": (5, 30, 50, 60, 70, 80, 95),
            "jp2": (0.1, 0.25, 0.5, 1.0, 2.0)}


def _images():
  imgs = stress_set.images()
  return {k: imgs[k] for k in SUBSET}


def _check(codec):
  model = serving.load_pretrained(codec)
  rows = no_harm.check(no_harm.served_refiner(model, codec), codec, _images(),
                       SETTINGS[codec])
  assert len(rows) == len(SUBSET) * len(SETTINGS[codec])
  return [f"{r.image} @ {r.setting:g}: {r.delta_db:+.3f} dB, flat deviation "
          f"{r.flat_deviation}" for r in no_harm.failures(rows)]


def test_shipped_jpeg_decoder_does_no_harm():
  assert _check("jpeg") == []


def test_shipped_jp2_decoder_does_no_harm():
  assert _check("jp2") == []
