"""Writes the NumPy runtime (hbd_numpy.json) into existing tf_hbd exports.

  python scripts/export_numpy.py                 # the shipped decoders
  python scripts/export_numpy.py --model DIR ... # other exports

New exports get the file from `tf_hbd.inference.serving.export_serving`; this is for
exports written before it did (tf_hbd.inference.numpy_serving.convert_saved_model).
Each converted export is then checked against its TensorFlow runtime on the
golden crops (tf_hbd.evaluation.golden), coded by the export's codec at 0.37 bpp and at
JPEG quality 10 / JPEG 2000 0.15 bpp, at the trained K and at K = 1 and 7,
plus a flat and a half-flat image; the file is removed again when any pixel
differs by more than one gray level or any PSNR by more than 0.01 dB.

Exit code 0 when every export was converted and checked, 1 otherwise.
"""

import os
import sys

import numpy as np

from tf_hbd import arguments  # the standard library only

def check_images(codec):
  """(decoded, reference) pairs and settings for checking a `codec` model."""
  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import codec_setting
  from tf_hbd.codecs import legacy as codecs
  from tf_hbd.evaluation import golden
  # pylint: enable=g-import-not-at-top
  pairs, settings = [], []
  for img in golden.images().values():
    for kw in ({"bpp": golden.TARGET_BPP},
               {"quality": 10} if codec == "jpeg" else {"bpp": 0.15}):
      enc = codecs.encode(img, codec, **kw)
      decoded = codecs.decode(enc)
      pairs.append((decoded, img))
      settings.append(codec_setting.features(enc.data, codec,
                                             decoded.shape))
  flat = np.full((40, 72), 117, np.uint8)
  half = flat.copy()
  half[:, 36:] = np.arange(36, dtype=np.uint8)[None] * 3
  for img in (flat, half):
    enc = codecs.encode(img, codec, **({"quality": 30} if codec == "jpeg"
                                       else {"bpp": 0.5}))
    pairs.append((codecs.decode(enc), None))
    settings.append(codec_setting.features(enc.data, codec, img.shape))
  return pairs, settings


def main(argv=None):
  parser = arguments.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", nargs="*", default=None, metavar="DIR",
                      help="exports to convert (default: the shipped ones)")
  parser.add_argument("--verbose", action="store_true",
                      help="show TensorFlow's own log lines")
  args = parser.parse_args(argv)
  # pylint: disable=g-import-not-at-top
  from tf_hbd import quiet
  quiet.quiet_tensorflow(args.verbose)
  from tf_hbd import errors
  from tf_hbd.inference import numpy_serving
  # pylint: enable=g-import-not-at-top
  dirs = args.model or [numpy_serving.pretrained_dir(c)
                        for c in sorted(numpy_serving.PRETRAINED)]
  failed = 0
  for path in dirs:
    try:
      spec = numpy_serving.convert_saved_model(path)
    except (errors.HbdError, OSError, KeyError) as e:
      print(f"{path}: not converted: {e}")
      failed += 1
      continue
    codec = numpy_serving.NumpyModel(path).codec
    pairs, settings = check_images(codec)
    k = int(spec["K"])
    got = numpy_serving.compare_runtimes(
        path, pairs, ks=(None, 1, k + 3),
        settings=settings if spec["setting_size"] else None)
    ok = got["max_abs"] <= 1 and got["psnr_gap_db"] <= 0.01
    print(f"{path}: {spec['cell']}-{spec['units']} d={spec['patch_size']} "
          f"K={k} centre={spec['center_inputs']} residual={spec['residual']};"
          f" NumPy vs TF on {len(pairs)} images x 3 K: max |diff| "
          f"{got['max_abs']} level(s), {100 * got['pixels_differing']:.4f} % "
          f"of pixels differ, PSNR gap {got['psnr_gap_db']:.5f} dB"
          + ("" if ok else " -- REMOVED"))
    if not ok:
      os.remove(os.path.join(path, numpy_serving.RUNTIME_FILE))
      failed += 1
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
