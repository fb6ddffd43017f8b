"""Tests of tf_hbd.evaluation.no_harm and tf_hbd.data.stress_set."""

import numpy as np
import pytest

from tf_hbd.evaluation import no_harm
from tf_hbd.data import stress_set


def test_stress_set_contents():
  imgs = stress_set.images(per_kind=1)
  for v in (0, 1, 8, 15, 128, 240, 247, 255):
    assert np.all(imgs[f"flat-{v}"] == v)
  for name in ("text-dark-on-light-0", "text-light-on-dark-0", "lines-0",
               "gradient-0", "graphics-0", "checkerboard-0", "camera-dark",
               "camera-bright"):
    assert imgs[name].dtype == np.uint8
  assert imgs["camera-dark"].max() <= 40
  assert imgs["camera-bright"].min() >= 215
  again = stress_set.images(per_kind=1)
  assert all(np.array_equal(imgs[k], again[k]) for k in imgs)  # fixed


def _subset():
  imgs = stress_set.images(per_kind=1)
  return {k: imgs[k] for k in ("flat-0", "flat-128", "text-dark-on-light-0",
                               "camera-dark")}


def test_identity_refiner_passes_everywhere():
  rows = no_harm.check(lambda decoded, enc: decoded, "jpeg", _subset(),
                       (10, 90))
  assert len(rows) == 8
  assert not no_harm.failures(rows)
  assert all(r.delta_db == 0 for r in rows)


def test_brightening_black_is_caught():
  def brighten(decoded, enc):
    del enc
    return np.clip(decoded.astype(int) + 3, 0, 255).astype(np.uint8)

  rows = no_harm.check(brighten, "jpeg", _subset(), (50,))
  bad = {r.image for r in no_harm.failures(rows)}
  assert {"flat-0", "flat-128", "camera-dark"} <= bad
  flat0 = [r for r in rows if r.image == "flat-0"][0]
  assert flat0.flat_deviation == 3 and flat0.flat_value == 0
  worst = no_harm.worst(rows)[50.0]
  assert worst.delta_db < -1


def test_tolerance_edge():
  row = no_harm.Row("x", 10, 0.5, 30.0, 30.0 - no_harm.TOLERANCE_DB)
  assert row.ok
  row = no_harm.Row("x", 10, 0.5, 30.0, 30.0 - 2 * no_harm.TOLERANCE_DB)
  assert not row.ok
  flat = no_harm.Row("x", 10, 0.5, 1000.0, 1000.0, flat_value=0,
                     flat_deviation=2)
  assert not flat.ok
  flat = no_harm.Row("x", 10, 0.5, 1000.0, 48.0, flat_value=0,
                     flat_deviation=1)
  assert flat.ok  # flat images are judged by their deviation
  shifted = no_harm.Row("x", 5, 0.1, 30.0, 31.0, flat_value=250,
                        flat_deviation=4, decoded_deviation=6)
  assert shifted.ok  # the codec moved it by 6; the refinement less
  shifted.flat_deviation = 7
  assert not shifted.ok


@pytest.mark.parametrize("codec,setting", [("jp2", 0.5)])
def test_jp2_rows(codec, setting):
  rows = no_harm.check(lambda d, e: d, codec, _subset(), (setting,))
  assert all(r.bpp <= setting * 1.5 for r in rows if r.image != "flat-0")


def test_served_refiner_forwards_shifts():
  calls = []

  class _Model:
    setting_size = 0

    def refine(self, decoded, **kwargs):
      calls.append(kwargs)
      return decoded

  img = np.full((16, 16), 7, np.uint8)
  no_harm.served_refiner(_Model(), "jp2")(img, None)
  no_harm.served_refiner(_Model(), "jp2", 2)(img, None)
  assert calls == [{"setting": None, "shifts": None},
                   {"setting": None, "shifts": 2}]
