"""The paper-scale build, estimated from measurements on this machine.

For each registered config (jpeg d=8, jp2_16 d=16, jp2 d=64) this times the
whole per-image work of a build on one core (CPU seconds of this process):
read and decode the image file, centre-crop and resize it to the paper's side,
compress it at its rate (JPEG 2000 configs: one encode, as built since
version 2.1.0; ``--rate_search`` measures them with the rate search of 2.0.0,
~9 encodes), cut the tile records and serialize them with TFDS's own
serializer. Stand-ins for the paper's images: sample photographs (brick,
grass, gravel, moon) resized to 683 x 512 JPEG files for Places365 (a
"large" Places image, cropped and resized to 512 x 512), and the retina
photograph resized to a 2400 x 1600 TIFF for RAISE (cropped to 1600 x 1600).
It also measures the bytes per block (serialized records + 16 bytes of
TFRecord framing, Places-length image ids) and extrapolates to the paper's
178,000 + 7,168 training and 20,000 + 1,000 validation images.

  .venv/bin/python benchmarks/paper_scale.py [--configs jpeg,jp2_16,jp2] [--rate_search] [--json r.json]

TFDS's own write (a hash-ordered shuffle through temporary files) is not
included; it is I/O bound.
"""

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from PIL import Image  # pylint: disable=g-import-not-at-top
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

from tf_hbd.data import blocks_dataset  # pylint: disable=g-import-not-at-top
from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top

PAPER = {  # images per split and source: (Places365 at 512, RAISE at 1600)
    "train": (178_000, 7_168),
    "validation": (20_000, 1_000),
}


def _items(work):
  """Stand-in files: (places items, raise items)."""
  places, raise_ = [], []
  for name in ("brick", "grass", "gravel", "moon"):
    path = os.path.join(work, f"{name}.jpg")
    Image.fromarray(sample_images.load_sample(name)).resize(
        (683, 512), Image.LANCZOS).save(path, quality=90)
    places.append(blocks_dataset.ImageItem(
        f"places365/data_large/{name[0]}/{name}/00000001.jpg", path, -1, -1,
        512))
  path = os.path.join(work, "retina.tif")
  Image.fromarray(sample_images.load_sample("retina")).resize(
      (2400, 1600), Image.LANCZOS).save(path)
  raise_.append(blocks_dataset.ImageItem("raise/r000000.tif", path, -1, -1,
                                         1600))
  return places, raise_


def measure(items, config, rate_search=False):
  """CPU seconds per image, bytes and blocks per image of `items`."""
  spec = config.spec
  if rate_search and spec.codec == "jp2":
    spec = dataclasses.replace(spec, rate_search=True)
  feats = blocks_dataset.features(spec.patch_size)
  serializer = tfds.core.example_serializer.ExampleSerializer(
      feats.get_serialized_info())
  size = blocks = 0
  t0 = time.process_time()
  for item in items:
    for _, ex in blocks_dataset.examples_for_item(item, spec):
      size += len(serializer.serialize_example(feats.encode_example(ex))) + 16
      blocks += int(ex["tile"][2]) * int(ex["tile"][3])
  cpu = time.process_time() - t0
  n = len(items)
  return {"cpu_s_per_image": cpu / n, "blocks_per_image": blocks / n,
          "bytes_per_block": size / blocks}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="jpeg,jp2_16,jp2")
  parser.add_argument("--rate_search", action="store_true",
                      help="JPEG 2000 with the rate search (version 2.0.0)")
  parser.add_argument("--json", default=None)
  args = parser.parse_args(argv)
  configs = {c.name: c for c in blocks_dataset.default_configs()}
  work = tempfile.mkdtemp(prefix="hbd_paper_scale_")
  results = {}
  try:
    places, raise_ = _items(work)
    for name in args.configs.split(","):
      config = configs[name]
      p = measure(places, config, args.rate_search)
      r = measure(raise_, config, args.rate_search)
      row = {"places": p, "raise": r}
      for split, (n_p, n_r) in PAPER.items():
        blocks = n_p * p["blocks_per_image"] + n_r * r["blocks_per_image"]
        size = (n_p * p["blocks_per_image"] * p["bytes_per_block"]
                + n_r * r["blocks_per_image"] * r["bytes_per_block"])
        hours = (n_p * p["cpu_s_per_image"] + n_r * r["cpu_s_per_image"]) / 3600
        row[split] = {"blocks": blocks, "gb": size / 1e9, "core_hours": hours}
      results[name] = row
      d = config.patch_size
      print(f"{name} (d={d}): Places {p['cpu_s_per_image'] * 1e3:.0f} ms/image"
            f", {p['bytes_per_block']:.1f} B/block "
            f"({p['bytes_per_block'] / (2 * d * d):.2f} x 2d^2); RAISE "
            f"{r['cpu_s_per_image']:.2f} s/image, {r['bytes_per_block']:.1f} "
            f"B/block")
      for split in PAPER:
        s = row[split]
        print(f"    {split}: {s['blocks']:,.0f} blocks, {s['gb']:.0f} GB, "
              f"{s['core_hours']:.1f} core-hours")
    if args.json:
      with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    return results
  finally:
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
