"""Tests of tf_hbd.baselines.rd (the rate-distortion table)."""

import math
import os
import tempfile

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd import baselines
from tf_hbd.evaluation import metrics
from tf_hbd.data import sample_images
from tf_hbd.baselines import rd


class RdTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.gray = sample_images.load_sample("camera")[64:192, 128:320]
    cls.path = os.path.join(tempfile.mkdtemp(), "cam.png")
    Image.fromarray(cls.gray).save(cls.path)

  def test_settings(self):
    s = rd.settings((1, 3), targets=(0.37,))
    e2e_names = baselines.available("e2e")
    self.assertEqual(s[:2], [("goog k=1", "goog", 1, None),
                             ("goog k=3", "goog", 3, None)])
    self.assertEqual([x[0] for x in s[2:2 + len(e2e_names)]], e2e_names)
    self.assertEqual(s[-2:], [("e2e @0.37", "e2e", None, 0.37),
                              ("goog @0.37", "goog", None, 0.37)])

  def test_records_compare_codecs_at_the_neural_rate(self):
    # A mid-rate model: on this small crop JPEG's lowest quality costs more
    # than the lowest-rate E2E model's file, so no JPEG setting fits under it.
    e2e_names = baselines.available("e2e")
    e2e_name = e2e_names[len(e2e_names) // 2]
    neural = [("goog k=2", "goog", 2, None), (e2e_name, e2e_name, None, None),
              ("goog @0.3", "goog", None, 0.3)]
    records = rd.evaluate([self.path], neural, log=lambda _: None)
    self.assertLen(records, 9)
    for i in range(0, 9, 3):
      mine, jpeg, jp2 = records[i:i + 3]
      self.assertEqual([jpeg["codec"], jp2["codec"]], ["jpeg", "jp2"])
      self.assertEqual(jpeg["setting"], mine["setting"])
      self.assertLessEqual(jpeg["bpp"], mine["bpp"] + 1e-12)
      self.assertLessEqual(jp2["bpp"], mine["bpp"] + 1e-12)
      self.assertGreater(jp2["bpp"], 0.9 * mine["bpp"])
    goog2 = records[0]
    self.assertEqual((goog2["codec"], goog2["model"], goog2["iterations"]),
                     ("goog", "goog", 2))
    decoded = baselines.load("goog").reconstruct(self.gray, 2)
    self.assertAlmostEqual(goog2["psnr"], metrics.psnr(self.gray, decoded))
    # 0.3 bpp: the most iterations whose real file fits (the shipped GOOG
    # entropy codes its bits: 3 iterations here, 2 as raw bits)
    self.assertLessEqual(records[6]["bpp"], 0.3)
    self.assertGreaterEqual(records[6]["iterations"], 2)
    rows = rd.summarize(records + [dict(records[0], psnr=0.0)])
    self.assertLen(rows, 9)
    self.assertEqual(rows[0]["images"], 2)
    self.assertAlmostEqual(rows[0]["psnr"], records[0]["psnr"] / 2)
    table = rd.markdown(rows)
    self.assertLen(table.splitlines(), 11)
    self.assertIn(f"| goog k=2 | goog | {goog2['bpp']:.4f} |", table)
    self.assertTrue(np.isfinite([r["psnr"] for r in rows]).all())

  def test_models_that_are_not_shipped(self):
    # A campaign's model (here a shipped SavedModel under another name)
    # alone in the registry: the settings and rows are its own.
    path = os.path.join(baselines.PRETRAINED_DIR,
                        baselines.available("e2e")[0])
    with baselines.use({"e2e-campaign": path}, shipped=False):
      neural = rd.settings((1, 2), targets=(0.37,))
      self.assertEqual(neural, [("e2e-campaign", "e2e-campaign", None, None),
                                ("e2e @0.37", "e2e", None, 0.37)])
      records = rd.evaluate([self.path], neural[:1], ("jpeg",),
                            log=lambda _: None)
    self.assertEqual([(r["setting"], r["codec"]) for r in records],
                     [("e2e-campaign", "e2e"), ("e2e-campaign", "jpeg")])
    self.assertEqual(records[0]["model"], "e2e-campaign")


def _row(setting, codec, bpp, psnr, ms=0.9, image="a", **more):
  return {"image": image, "setting": setting, "codec": codec, "bpp": bpp,
          "psnr": psnr, "ssim": 0.8, "ms-ssim": ms, **more}


def _log_psnr(bpp, offset=0.0):
  """An RD curve linear in log bpp: 6 dB per doubling."""
  return 20.0 + offset + 6.0 * math.log2(bpp / 0.05)


_E2E_RATES = (0.1, 0.2, 0.3, 0.5, 0.8)
_REF_RATES = (0.07, 0.12, 0.2, 0.35, 0.6, 1.0, 1.7)


def _records():
  """Two images: E2E 1 dB over JPEG and 2 dB under JPEG 2000 everywhere
  (curves linear in log bpp, so every log-bpp method is exact); JPEG's rows
  at E2E's rates are 5 dB off, to show they are not its curve."""
  out = []
  for image in ("a", "b"):
    for i, bpp in enumerate(_E2E_RATES):
      setting = f"e2e-{i}"
      out += [_row(setting, "e2e", bpp, _log_psnr(bpp, 1.0), image=image),
              _row(setting, "jpeg", bpp, _log_psnr(bpp, 5.0), image=image),
              _row(setting, "jp2", bpp, _log_psnr(bpp, 5.0), image=image)]
    out.append(_row("e2e @0.37", "e2e", 0.36, 1.0, image=image))
    for k, bpp in enumerate(_REF_RATES):
      out += [_row(f"jpeg q={k}", "jpeg", bpp, _log_psnr(bpp), image=image,
                   reference=True, quality=k),
              _row(f"jp2 ratio={8 / bpp:g}", "jp2", bpp, _log_psnr(bpp, 3.0),
                   image=image, reference=True, quality=8 / bpp)]
  # GOOG covers 0.37 on image a only; on image b a dominated point.
  out += [_row("goog k=1", "goog", 0.2, 22.0), _row("goog k=2", "goog", 0.4,
                                                    24.0),
          _row("goog k=1", "goog", 0.1, 22.0, image="b"),
          _row("goog k=2", "goog", 0.2, 21.0, image="b"),
          _row("goog k=3", "goog", 0.3, 23.0, image="b")]
  return out


class TablesTest(tf.test.TestCase):

  ROWS = [_row("e2e-a", "e2e", 0.2, 27.0), _row("e2e-a", "jpeg", 0.19, 26.0),
          _row("e2e-a", "jp2", 0.2, 28.0),
          _row("e2e-b", "e2e", 0.5, 30.0), _row("e2e-b", "jpeg", 0.49, 29.0),
          _row("e2e-b", "jp2", 0.5, 31.0),
          _row("e2e-c", "e2e", 0.6, 29.0),  # dominated
          _row("e2e @0.37", "e2e", 0.36, 1.0),  # a target row: not a point
          _row("goog k=1", "goog", 0.13, 22.0),
          _row("goog k=2", "goog", 0.26, 23.0)]

  def test_curves_use_the_reference_grid(self):
    curves = rd.curves(_records())
    self.assertEqual(sorted(curves), ["e2e", "goog", "jp2", "jpeg"])
    self.assertEqual([r["bpp"] for r in curves["jpeg"]["a"]],
                     list(_REF_RATES))
    self.assertEqual([r["setting"] for r in curves["e2e"]["b"]],
                     [f"e2e-{i}" for i in range(5)])  # no target row

  def test_at_rate_per_image(self):
    out = {r["codec"]: r for r in rd.at_rate(_records(), 0.37)}
    e2e = out["e2e"]
    self.assertAlmostEqual(e2e["psnr"], _log_psnr(0.37, 1.0), places=9)
    self.assertAlmostEqual(out["jpeg"]["psnr"], _log_psnr(0.37), places=9)
    self.assertAlmostEqual(e2e["vs_jpeg_db"], 1.0, places=9)
    self.assertAlmostEqual(e2e["vs_jp2_db"], -2.0, places=9)
    self.assertEqual((e2e["images"], e2e["covered"], e2e["points"]),
                     (2, 2, 5))
    self.assertTrue(e2e["monotone"])
    for method in ("linear_log_bpp", "pchip_log_bpp"):
      self.assertAlmostEqual(e2e["by_method"][method]["vs_jpeg_db"], 1.0,
                             places=9)
    # The chord in bpp reads both concave curves low, by different amounts.
    chord = e2e["by_method"]["linear_bpp"]
    self.assertLess(chord["psnr"], e2e["psnr"] - 0.1)
    self.assertNotAlmostEqual(chord["vs_jpeg_db"], 1.0, places=3)
    for ref, delta in (("jpeg", 1.0), ("jp2", -2.0)):
      for window in ("overlap", "0.2-0.6"):
        bd = e2e["bd_psnr"][ref][window]
        self.assertEqual(bd["images"], 2)
        self.assertAlmostEqual(bd["db"], delta, places=9)
    goog = out["goog"]
    self.assertIsNone(goog["psnr"])  # image b's curve stops at 0.3 bpp
    self.assertEqual(goog["covered"], 1)
    # two points: linear in log bpp, 2 dB per doubling from 0.2 bpp
    self.assertAlmostEqual(goog["per_image"]["a"],
                           22.0 + 2.0 * math.log2(0.37 / 0.2), places=9)
    self.assertIsNone(goog["per_image"]["b"])
    self.assertIsNone(goog["vs_jpeg_db"])
    self.assertEqual((goog["rising_images"], goog["monotone"]), (1, False))
    self.assertIsNone(goog["bd_psnr"]["jpeg"]["overlap"]["db"])  # < 4 pts
    self.assertNotIn("vs_jpeg_db", out["jpeg"])
    table = rd.at_rate_markdown(list(out.values()), 0.37)
    self.assertIn("| goog | n/a | n/a | n/a | n/a | 1 / 2 | 1 / 2 |", table)
    # (MS-SSIM is flat here: no rising points, so n/a)
    self.assertIn(f"| e2e | {e2e['psnr']:.2f} | n/a | +1.00 | -2.00 | "
                  "2 / 2 | 2 / 2 |", table)
    self.assertIn("| e2e | JPEG 2000 | 0.2-0.6 bpp | -2.00 | 2 |", table)

  def test_bd_psnr_needs_every_image(self):
    # E2E keeps 3 points on image b: no cubic fit there, so no mean.
    records = [r for r in _records() if not (
        r["image"] == "b" and r["setting"] in ("e2e-3", "e2e-4"))]
    bd = rd.bd_psnr(rd.curves(records), "e2e")
    for ref in ("jpeg", "jp2"):
      for window in ("overlap", "0.2-0.6"):
        self.assertEqual(bd[ref][window], {"db": None, "images": 1})
    full = rd.bd_psnr(rd.curves(_records()), "e2e", windows=(None,))
    self.assertEqual(full["jpeg"]["overlap"]["images"], 2)
    self.assertAlmostEqual(full["jpeg"]["overlap"]["db"], 1.0, places=9)

  def test_side_by_side(self):
    table = rd.side_by_side(self.ROWS).splitlines()
    self.assertEqual(table[0], "| setting | bpp | PSNR (dB) | MS-SSIM | "
                     "JPEG bpp / PSNR / MS-SSIM | JP2 bpp / PSNR / MS-SSIM |")
    self.assertEqual(table[2], "| e2e-a | 0.2000 | 27.00 | 0.9000 | "
                     "0.1900 / 26.00 / 0.9000 | 0.2000 / 28.00 / 0.9000 |")
    self.assertLen(table, 2 + 6)
    self.assertEqual(table[-1], "| goog k=2 | 0.2600 | 23.00 | 0.9000 | - "
                     "| - |")

  def test_compressai_docs(self):
    records = _records()
    rows = rd.summarize(records)
    at = rd.at_rate(records, 0.37)
    docs = {d["name"]: d for d in rd.compressai_docs(rows, at, 0.37,
                                                     "kodak")}
    self.assertEqual(sorted(docs), ["E2E", "GOOG", "JPEG", "JPEG 2000",
                                    "JPEG 2000 at E2E rates",
                                    "JPEG at E2E rates"])
    e2e = docs["E2E"]
    self.assertEqual(e2e["dataset"], "kodak")
    self.assertEqual(e2e["results"]["bpp"], list(_E2E_RATES))  # no target
    self.assertEqual(e2e["results"]["models"],
                     [f"e2e-{i}" for i in range(5)])
    self.assertEqual(e2e["at_bpp"]["psnr"],
                     [a for a in at if a["codec"] == "e2e"][0]["psnr"])
    self.assertEqual(e2e["at_bpp"]["interpolation"], rd.INTERPOLATION)
    jpeg = docs["JPEG"]
    self.assertEqual(jpeg["results"]["bpp"], list(_REF_RATES))
    self.assertEqual(jpeg["results"]["quality"], list(range(7)))
    self.assertIn("reference curve", jpeg["description"])
    self.assertAlmostEqual(jpeg["at_bpp"]["psnr"], _log_psnr(0.37), places=9)
    matched = docs["JPEG at E2E rates"]
    self.assertEqual(matched["results"]["setting"],
                     [f"e2e-{i}" for i in range(5)])
    self.assertIn("at each image's E2E rate", matched["description"])
    self.assertIn("ms-ssim", matched["results"])
    report = rd.report_markdown(records, 0.37, "2 images")
    self.assertTrue(report.startswith("2 images\n| setting |"))
    self.assertIn(rd.INTERPOLATION, report)
    self.assertIn("| jpeg q=3 | jpeg | 0.3500 |", report)
    self.assertIn(f"| e2e | {_log_psnr(0.37, 1.0):.2f} |", report)


if __name__ == "__main__":
  tf.test.main()
