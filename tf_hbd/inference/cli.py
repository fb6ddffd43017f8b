"""`hbd`: make JPEG and JPEG 2000 files better from the command line.

  hbd enhance photo.jpg scan.jp2 -o enhanced/
  hbd info photo.jpg

`enhance` decodes each file, refines it with the shipped decoder trained for
its codec (or `--model DIR`, any exported tf_hbd SavedModel for that codec)
and writes a PNG of the same size. Colour images: the luma channel (JPEG's own
Y of YCbCr, BT.601 full range) is refined by the model and the chroma channels
are kept as decoded; gray images are refined directly; an alpha channel is
kept; the EXIF orientation is applied to the output (the model works in the
stored orientation, on the codec's own block grid). Output files are written
to a temporary name and renamed when complete, so an interrupted or failed run
never leaves a partial file; they get the permissions of any new file (0666
minus the umask). A run whose outputs would collide (two inputs with one name)
or replace one of its inputs is refused before anything is written. The image
size is checked from the header before any pixel is decoded. Errors are
reported per file, one line each; the batch goes on.

TensorFlow's own log lines are silenced unless `--verbose` is given.
Models that carry the NumPy runtime (the shipped ones do) run without
importing TensorFlow (`tf_hbd.inference.numpy_serving`; `--runtime=tf` forces the
SavedModel).

Exit codes: 0 all files done, 1 some files failed, 2 usage error (bad flags,
unusable -o folder or --model, colliding outputs), 130 interrupted (Ctrl-C).
"""

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from typing import Optional
import warnings

import numpy as np
from PIL import Image

from tf_hbd.codecs import legacy as codecs
from tf_hbd import arguments
from tf_hbd import errors
from tf_hbd import quiet

__all__ = ["main", "run", "jpeg_quality_estimate", "file_info", "MAX_PIXELS",
           "MAX_K", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE",
           "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = errors.EXIT_INTERRUPTED  # 130
# Largest image refined (the limit of the exported graphs,
# tf_hbd.inference.graph_refine.DEFAULT_MAX_PIXELS; not imported: it needs TensorFlow).
MAX_PIXELS = 120_000_000
MAX_K = 32  # --K bound: time grows linearly with K (the shipped models: 4)

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT,
              3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270,
              7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


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


def _read_input(path: str) -> bytes:
  """The bytes of an input file, or an `ImageReadError` saying what is wrong."""
  if os.path.isdir(path):
    raise errors.ImageReadError(path, "is a directory, not an image file "
                                "(pass the files, e.g. DIR/*.jpg)")
  if not os.path.exists(path):
    raise errors.ImageReadError(path, "no such file")
  with open(path, "rb") as f:
    data = f.read()
  if not data:
    raise errors.ImageReadError(path, "empty file")
  return data


@contextlib.contextmanager
def _header_only_guard():
  """Lets Pillow read the size of any image header; `_open_header` applies
  tf_hbd's own limit before a single pixel is decoded."""
  saved = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      yield
  finally:
    Image.MAX_IMAGE_PIXELS = saved


def _open_header(path, data, codec, max_pixels):
  """Opens `data` (reads the header only) and enforces the pixel limit."""
  try:
    with _header_only_guard():
      img = Image.open(io.BytesIO(data))
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    raise errors.ImageReadError(path, f"corrupt {codec or 'image'} file "
                                f"({type(e).__name__}: {e})") from e
  w, h = img.size
  if w * h == 0:
    img.close()
    raise errors.ImageReadError(path, f"the header claims {w}x{h} pixels")
  if max_pixels and w * h > max_pixels:
    img.close()
    raise errors.ResourceLimitError(
        f"{path}: the header claims {w}x{h} = {w * h} pixels, over the limit "
        f"of {max_pixels} pixels; not decoded (split or downscale the image)")
  return img


def _load_pixels(path, img, codec):
  """Decodes the pixels of an opened image; corrupt data is an error."""
  try:
    with _header_only_guard():  # the size was checked by _open_header
      img.load()
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    raise errors.ImageReadError(path, f"corrupt or truncated {codec or 'image'}"
                                f" file ({type(e).__name__}: {e})") from e


def file_info(path: str, max_pixels: int = MAX_PIXELS) -> dict:
  """Codec, size, mode, bytes and bits per pixel of an image file.

  The header is read first: an image above `max_pixels` is refused
  (`ResourceLimitError`) without decoding; otherwise the pixels are decoded
  once, so that a truncated or corrupt file is reported (`ImageReadError`).
  """
  data = _read_input(path)
  codec = codecs.sniff_codec(data)
  img = _open_header(path, data, codec, max_pixels)
  with img:
    w, h = img.size
    mode = img.mode
    quality = jpeg_quality_estimate(img) if codec == "jpeg" else None
    orientation = _orientation(img)
    _load_pixels(path, img, codec)
  return {"file": path, "codec": codec or "other", "width": w, "height": h,
          "mode": mode, "bytes": len(data), "bpp": 8.0 * len(data) / (w * h),
          "jpeg_quality_estimate": quality, "orientation": orientation}


def _orientation(img) -> int:
  """The EXIF orientation tag (1..8; 1 when absent or unreadable)."""
  try:
    value = int(img.getexif().get(_EXIF_ORIENTATION, 1))
  except (OSError, SyntaxError, ValueError, TypeError):
    return 1
  return value if value in _TRANSPOSE or value == 1 else 1


@dataclasses.dataclass
class _Decoded:
  """An input split for refinement: the model sees `luma` only."""
  codec: str
  luma: np.ndarray                 # uint8 (H, W)
  chroma: Optional[np.ndarray]     # uint8 (H, W, 2) Cb, Cr or None (gray)
  alpha: Optional[np.ndarray]      # uint8 (H, W) or None
  orientation: int                 # EXIF orientation, applied to the output


def _decode_for_enhance(path, max_pixels=MAX_PIXELS) -> _Decoded:
  """Reads an input file into luma (+ chroma, alpha, orientation)."""
  data = _read_input(path)
  codec = codecs.sniff_codec(data)
  if codec is None:
    raise errors.ImageReadError(path, "not a JPEG or JPEG 2000 file")
  img = _open_header(path, data, codec, max_pixels)
  with img:
    orientation = _orientation(img)
    _load_pixels(path, img, codec)
    try:
      alpha = None
      if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
      if img.mode in ("LA", "PA", "RGBA", "La", "RGBa"):
        alpha = np.asarray(img.getchannel("A"))
        img = img.convert("L" if img.mode in ("LA", "La") else "RGB")
      if img.mode in ("L", "1", "I;16", "I;16B", "I;16L", "I;16N", "I"):
        from tf_hbd.codecs import images  # pylint: disable=g-import-not-at-top
        return _Decoded(codec, images.to_gray8(img)[0], None, alpha,
                        orientation)
      ycc = np.asarray(img.convert("RGB").convert("YCbCr"))
    except (OSError, ValueError) as e:
      raise errors.ImageReadError(path, f"unsupported {codec} image (mode "
                                  f"{img.mode}: {e})") from e
  return _Decoded(codec, np.ascontiguousarray(ycc[..., 0]), ycc[..., 1:],
                  alpha, orientation)


def _output_image(refined, dec: _Decoded) -> Image.Image:
  """The output picture: refined luma + kept chroma/alpha, EXIF-oriented."""
  if dec.chroma is None:
    img = Image.fromarray(refined)
  else:
    ycc = np.concatenate([refined[..., None], dec.chroma], axis=-1)
    img = Image.fromarray(ycc, "YCbCr").convert("RGB")
  if dec.alpha is not None:
    img.putalpha(Image.fromarray(dec.alpha))
  if dec.orientation in _TRANSPOSE:
    img = img.transpose(_TRANSPOSE[dec.orientation])
  return img


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def _atomic_save_png(img: Image.Image, out_path: str):
  """Writes a PNG under a temporary name, then renames it into place; the
  file gets the permissions of any new file (0666 minus the umask)."""
  directory = os.path.dirname(os.path.abspath(out_path))
  fd, tmp = tempfile.mkstemp(prefix=".hbd-", suffix=".png", dir=directory)
  try:
    os.fchmod(fd, 0o666 & ~_umask())
    with os.fdopen(fd, "wb") as f:
      img.save(f, format="PNG")
    os.replace(tmp, out_path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def _model_metadata(model_dir: str) -> dict:
  """`hbd_model.json` of an export, read without TensorFlow."""
  meta_path = os.path.join(model_dir, "hbd_model.json")
  if not os.path.isdir(model_dir):
    raise errors.HbdError(f"--model {model_dir}: no such directory")
  if not os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
    raise errors.HbdError(f"--model {model_dir}: not a SavedModel directory "
                          "(no saved_model.pb)")
  try:
    with open(meta_path) as f:
      meta = json.load(f)
  except (OSError, ValueError) as e:
    raise errors.HbdError(f"--model {model_dir}: no readable hbd_model.json "
                          f"(export it with tf_hbd.inference.serving.export_serving): "
                          f"{e}") from e
  if meta.get("codec") not in ("jpeg", "jp2"):
    raise errors.HbdError(f"--model {model_dir}: hbd_model.json names no "
                          f"codec (got {meta.get('codec')!r})")
  return meta


def _check_output_dir(out_dir: str):
  """Creates the output folder; a usage error if it cannot hold outputs."""
  if not out_dir:
    raise errors.HbdError("-o is empty; give an output folder")
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise errors.HbdError(f"-o {out_dir} is a file, not a folder; give a "
                          "folder (it is created if missing)")
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise errors.HbdError(f"-o {out_dir}: cannot create the folder "
                          f"({e.strerror or e})") from e
  if not os.access(out_dir, os.W_OK | os.X_OK):
    raise errors.HbdError(f"-o {out_dir}: folder is not writable; choose "
                          "another -o")


def _output_paths(inputs, out_dir, suffix):
  """Output path of every input; refuses a run in which two inputs would
  write the same output or an output would replace an input."""
  outs, seen = [], {}
  in_real = {os.path.realpath(p): p for p in inputs}
  for path in inputs:
    stem = os.path.splitext(os.path.basename(path))[0]
    out = os.path.join(out_dir, stem + suffix + ".png")
    real = os.path.realpath(out)
    if real in seen:
      other = seen[real]
      raise errors.HbdError(
          f"{other} and {path} would both be written to {out}"
          + (" (the same file given twice)" if os.path.realpath(other) ==
             os.path.realpath(path) else "")
          + "; enhance them in separate runs with different -o folders")
    if real in in_real:
      raise errors.HbdError(
          f"the output of {path} would overwrite the input {in_real[real]}; "
          "choose another -o folder or a --suffix")
    seen[real] = path
    outs.append(out)
  return outs


def _load_model(args, codec, models):
  # tf_hbd.inference.numpy_serving: TensorFlow is imported only for --runtime=tf or
  # a model without the NumPy runtime.
  from tf_hbd.inference import numpy_serving  # pylint: disable=g-import-not-at-top
  key = args.model or codec
  runtime = getattr(args, "runtime", "auto")
  if key not in models:
    try:
      models[key] = (numpy_serving.load(args.model, runtime) if args.model
                     else numpy_serving.load_pretrained(codec, runtime))
    except errors.HbdError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
      raise errors.HbdError(f"cannot load the model {key}: "
                            f"{type(e).__name__}: {msg}") from e
  return models[key]


def _warn_above_trained_k(args, model, warned):
  """One stderr line per model when --K exceeds the K it was trained with.

  Beyond its trained K a decoder can get worse, not better: on Kodak at
  0.37 bpp the shipped JPEG 2000 decoder (K = 4) gives 32.45 dB at K = 4
  and 24.91 dB at K = 11 (results/cpu, Tables 3 and 1).
  """
  trained = int(model.metadata.get("K", 0) or 0)
  key = id(model)
  if args.K is None or not trained or args.K <= trained or key in warned:
    return
  warned.add(key)
  name = args.model or f"the shipped {model.metadata.get('codec', '')} model"
  print(f"hbd: warning: {name} was trained with K={trained}; --K {args.K} "
        "goes beyond it and can make the output worse, not better",
        file=sys.stderr, flush=True)


def _enhance(args):
  try:
    meta = _model_metadata(args.model) if args.model else None
    outs = _output_paths(args.inputs, args.output, args.suffix)
    _check_output_dir(args.output)
  except errors.HbdError as e:
    print(f"hbd: error: {e}", file=sys.stderr)
    return EXIT_USAGE
  models = {}
  warned = set()
  failures = 0
  n = len(args.inputs)
  for i, (path, out_path) in enumerate(zip(args.inputs, outs), 1):
    start = time.time()
    try:
      if os.path.exists(out_path) and not args.force:
        raise FileExistsError(f"{out_path} exists (use --force to overwrite)")
      dec = _decode_for_enhance(path)
      if meta is not None and meta["codec"] != dec.codec:
        raise errors.HbdError(
            f"--model {args.model} was trained for {meta['codec']} files, "
            f"this is a {dec.codec} file; use a {dec.codec} model or leave "
            "out --model")
      model = _load_model(args, dec.codec, models)
      _warn_above_trained_k(args, model, warned)
      refined = model.refine(dec.luma, K=args.K, source=path,
                             ensemble=args.ensemble,
                             shifts=args.shifts if dec.codec == "jp2" else 1)
      _atomic_save_png(_output_image(refined, dec), out_path)
      print(f"[{i}/{n}] {path} ({dec.codec}, {dec.luma.shape[1]}x"
            f"{dec.luma.shape[0]}) -> {out_path} in "
            f"{time.time() - start:.2f}s", flush=True)
    except (errors.HbdError, OSError) as e:
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
          + (f", JPEG quality ~{q}" if q else "")
          + (f", EXIF orientation {info['orientation']}"
             if info["orientation"] != 1 else ""))
  return EXIT_FAILED if failures else EXIT_OK


def _parser():
  p = arguments.ArgumentParser(
      prog="hbd", description="Refine JPEG / JPEG 2000 images with a hybrid "
      "neural iterative decoder (tf_hbd).")
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--verbose", action="store_true",
                      help="show TensorFlow's own log lines")
  sub = p.add_subparsers(dest="command", required=True)
  e = sub.add_parser("enhance", parents=[common], help="refine JPEG/JPEG 2000 files into PNGs",
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
                 help=f"refinement steps, 1..{MAX_K} (default: the model's "
                 "trained K; above it a warning: the output can get worse)")
  e.add_argument("--ensemble", action="store_true",
                 help="geometric self-ensemble: average the refinements of "
                 "the 8 flips/transposes (8x slower, slightly better)")
  e.add_argument("--shifts", type=int, choices=(1, 2, 4), default=None,
                 help="JPEG 2000 files: average the refinements of the image "
                 "shifted by half a patch to 1, 2 or 4 offsets of the 8x8 "
                 "patch grid (2x / 4x slower; default: the model's, 1 for "
                 "the shipped one); JPEG files keep their own 8x8 grid")
  e.add_argument("--runtime", choices=("auto", "numpy", "tf"),
                 default="auto",
                 help="auto (default): NumPy when the model has the NumPy "
                 "runtime (the shipped models do; no TensorFlow import), "
                 "else TensorFlow; numpy / tf: force one")
  e.add_argument("--suffix", default="", help="added to output file names")
  e.add_argument("--force", action="store_true",
                 help="overwrite existing outputs")
  e.set_defaults(func=_enhance)
  i = sub.add_parser("info", parents=[common],
                     help="codec, size and bits per pixel of files")
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
  k = getattr(args, "K", None)
  if k is not None and not 1 <= k <= MAX_K:
    print(f"hbd: error: --K must be between 1 and {MAX_K} (got {k}); the "
          "shipped models are trained with K=4", file=sys.stderr)
    return EXIT_USAGE
  quiet.quiet_tensorflow(args.verbose)
  return errors.exit_on_interrupt(
      lambda: args.func(args), "hbd", "the outputs reported above are "
      "complete, no partial file is left")


def run():
  """Console-script entry point.

  Exits without the interpreter's teardown (os._exit): by then every output
  is complete and renamed into place, and unwinding TensorFlow's runtime
  costs seconds on a busy machine for nothing.
  """
  code = main(sys.argv[1:])
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


if __name__ == "__main__":
  run()
