"""`hbd`: make JPEG and JPEG 2000 files better from the command line.

  hbd enhance photo.jpg scan.jp2 -o enhanced/
  hbd info photo.jpg

`enhance` decodes each file, refines it with the shipped decoder trained for
its codec (or `--model DIR`, any exported tf_hbd SavedModel) and writes a PNG
of the same size. Colour images: the luma channel (JPEG's own Y of YCbCr,
BT.601 full range) is refined by the model and the chroma channels are kept
as decoded; gray images are refined directly. Output files are written to a
temporary name and renamed when complete, so an interrupted or failed run
never leaves a partial file. Errors are reported per file; the batch goes on.

Exit codes: 0 all files done, 1 some files failed, 2 usage error.
"""

import argparse
import io
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from tf_hbd import codecs
from tf_hbd import errors

__all__ = ["main", "run", "jpeg_quality_estimate", "file_info"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def jpeg_quality_estimate(img: Image.Image):
  """IJG quality (1..100) whose luma table best matches the file's, or None."""
  tables = getattr(img, "quantization", None)
  if not tables or 0 not in tables:
    return None
  ref = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60,
                  55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87,
                  80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81,
                  104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95,
                  98, 112, 100, 103, 99], np.float64)
  got = np.sort(np.asarray(tables[0], np.float64))
  best, best_err = None, None
  for q in range(1, 101):
    scale = 5000 / q if q < 50 else 200 - 2 * q
    table = np.clip(np.floor((ref * scale + 50) / 100), 1, 255)
    err = np.abs(np.sort(table) - got).sum()
    if best_err is None or err < best_err:
      best, best_err = q, err
  return best


def file_info(path: str) -> dict:
  """Codec, size, mode, bytes and bits per pixel of an image file."""
  with open(path, "rb") as f:
    data = f.read()
  if not data:
    raise errors.ImageReadError(path, "empty file")
  codec = codecs.sniff_codec(data)
  try:
    with Image.open(io.BytesIO(data)) as img:
      w, h = img.size
      mode = img.mode
      quality = jpeg_quality_estimate(img) if codec == "jpeg" else None
  except (OSError, SyntaxError, ValueError) as e:
    raise errors.ImageReadError(path, f"{type(e).__name__}: {e}") from e
  return {"file": path, "codec": codec or "other", "width": w, "height": h,
          "mode": mode, "bytes": len(data), "bpp": 8.0 * len(data) / (w * h),
          "jpeg_quality_estimate": quality}


def _decode_for_enhance(path):
  """Returns (codec, luma uint8 (H,W), chroma or None)."""
  with open(path, "rb") as f:
    data = f.read()
  if not data:
    raise errors.ImageReadError(path, "empty file")
  codec = codecs.sniff_codec(data)
  if codec is None:
    raise errors.ImageReadError(path, "not a JPEG or JPEG 2000 file")
  try:
    with Image.open(io.BytesIO(data)) as img:
      img.load()
      if img.mode in ("L", "1", "I;16", "I"):
        from tf_hbd import images  # pylint: disable=g-import-not-at-top
        return codec, images.to_gray8(img)[0], None
      ycc = np.asarray(img.convert("RGB").convert("YCbCr"))
  except Image.DecompressionBombError as e:
    raise errors.ImageReadError(path, f"refused by Pillow's decompression-bomb"
                                f" guard ({e})") from e
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    raise errors.ImageReadError(path, f"corrupt {codec} file "
                                f"({type(e).__name__}: {e})") from e
  return codec, np.ascontiguousarray(ycc[..., 0]), ycc[..., 1:]


def _atomic_save_png(array, out_path):
  mode = "YCbCr" if array.ndim == 3 else "L"
  img = Image.fromarray(array, mode) if mode == "YCbCr" else Image.fromarray(
      array)
  if mode == "YCbCr":
    img = img.convert("RGB")
  directory = os.path.dirname(os.path.abspath(out_path))
  fd, tmp = tempfile.mkstemp(prefix=".hbd-", suffix=".png", dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      img.save(f, format="PNG")
    os.replace(tmp, out_path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def _enhance(args):
  from tf_hbd import serving  # pylint: disable=g-import-not-at-top
  os.makedirs(args.output, exist_ok=True)
  models = {}
  failures = 0
  n = len(args.inputs)
  for i, path in enumerate(args.inputs, 1):
    start = time.time()
    stem = os.path.splitext(os.path.basename(path))[0]
    out_path = os.path.join(args.output, stem + args.suffix + ".png")
    try:
      if os.path.exists(out_path) and not args.force:
        raise FileExistsError(f"{out_path} exists (use --force to overwrite)")
      if not os.path.isfile(path):
        raise errors.ImageReadError(path, "no such file")
      codec, luma, chroma = _decode_for_enhance(path)
      key = args.model or codec
      if key not in models:
        models[key] = (serving.load(args.model) if args.model
                       else serving.load_pretrained(codec))
      refined = models[key].refine(luma, K=args.K)
      out = refined if chroma is None else np.concatenate(
          [refined[..., None], chroma], axis=-1)
      _atomic_save_png(out, out_path)
      print(f"[{i}/{n}] {path} ({codec}, {luma.shape[1]}x{luma.shape[0]}) -> "
            f"{out_path} in {time.time() - start:.2f}s", flush=True)
    except (errors.HbdError, OSError, FileExistsError) as e:
      failures += 1
      print(f"[{i}/{n}] {path}: error: {e}", file=sys.stderr, flush=True)
  if failures:
    print(f"{failures} of {n} files failed", file=sys.stderr)
  return EXIT_FAILED if failures else EXIT_OK


def _info(args):
  failures = 0
  for path in args.inputs:
    try:
      info = file_info(path)
    except (errors.HbdError, OSError) as e:
      failures += 1
      print(f"{path}: error: {e}", file=sys.stderr)
      continue
    q = info["jpeg_quality_estimate"]
    print(f"{path}: {info['codec']}, {info['width']}x{info['height']} "
          f"{info['mode']}, {info['bytes']} bytes, {info['bpp']:.3f} bpp"
          + (f", JPEG quality ~{q}" if q else ""))
  return EXIT_FAILED if failures else EXIT_OK


def _parser():
  p = argparse.ArgumentParser(
      prog="hbd", description="Refine JPEG / JPEG 2000 images with a hybrid "
      "neural iterative decoder (tf_hbd).")
  sub = p.add_subparsers(dest="command", required=True)
  e = sub.add_parser("enhance", help="refine JPEG/JPEG 2000 files into PNGs",
                     description="Refine JPEG / JPEG 2000 files; writes "
                     "OUT_DIR/<name>.png of the same size. Colour: the luma "
                     "is refined, chroma kept.")
  e.add_argument("inputs", nargs="+", metavar="IN", help="input files")
  e.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                 help="output folder (created if missing)")
  e.add_argument("--model", default=None, metavar="DIR",
                 help="exported tf_hbd SavedModel (default: the shipped model "
                 "for each file's codec)")
  e.add_argument("--K", type=int, default=None,
                 help="refinement steps (default: the model's trained K)")
  e.add_argument("--suffix", default="", help="added to output file names")
  e.add_argument("--force", action="store_true",
                 help="overwrite existing outputs")
  e.set_defaults(func=_enhance)
  i = sub.add_parser("info", help="codec, size and bits per pixel of files")
  i.add_argument("inputs", nargs="+", metavar="FILE")
  i.set_defaults(func=_info)
  return p


def main(argv=None) -> int:
  """Entry point; returns the exit code (tests call this)."""
  parser = _parser()
  try:
    args = parser.parse_args(argv)
  except SystemExit as e:
    return EXIT_USAGE if e.code else EXIT_OK
  if getattr(args, "K", None) is not None and args.K < 1:
    print("hbd: error: --K must be >= 1", file=sys.stderr)
    return EXIT_USAGE
  return args.func(args)


def run():
  """Console-script entry point."""
  sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
  run()
