"""Rate-distortion table of GOOG and E2E next to JPEG / JPEG 2000 at the
same bit rate (each image's achieved neural bpp), on gray images.

Prints three tables: every setting (each E2E model, each GOOG iteration
count, the encode_at_bpp rows) with bpp / PSNR / MS-SSIM next to JPEG and
JPEG 2000 at its rate; PSNR at --at_bpp of each codec's curve against JPEG
and JPEG 2000 (`tf_hbd.baselines.rd.INTERPOLATION`); and the long per-codec
table (`tf_hbd.baselines.rd`, measured by
`tf_hbd.evaluation.systems.evaluate`).

  python scripts/rd_baselines.py --images=../shared/data/kodak \
      --targets=0.37 --out=runs/rd_baselines.json

The shipped models by default; --models evaluates models that are not
shipped, where training left them (`tf_hbd.baselines.folders`): a campaign
snapshot (campaigns/baselines/e2e-l0.005), a folder of snapshots
(campaigns/baselines), a campaign run or its export (runs/baselines/e2e-l0.01,
runs/baselines/e2e-l0.01/model/e2e-l0.01) or a campaign root; LABEL=PATH
renames one. Snapshots are exported to SavedModels in --work_dir first
(--weights=float16: as `scripts/ship_baselines.py --weights=float16` would
ship them; a GOOG checkpoint gets entropy-coder tables fitted on --fit_dir,
the training images, as ship_baselines.py --fit_dir would; kodak and bsd68
are refused, exit 2; without it none, with a warning). Only these models
run unless --with_shipped.

  python scripts/rd_baselines.py --images=../shared/data/kodak \
      --models=campaigns/baselines --targets= \
      --out_dir=runs/rd_campaign     # <codec>.json (CompressAI) + rd.md

JPEG and JPEG 2000 are also encoded on a fixed grid of settings per image
(--jpeg_qualities, --jp2_bpps; `rd.reference`): their reference curves.
PSNR at --at_bpp is read per image on each codec's curve (the reference
curves for JPEG / JPEG 2000) and averaged (`rd.INTERPOLATION`), next to the
other interpolation methods and the BD-PSNRs (`rd.at_rate`).

Writes with --out_dir: one CompressAI-style JSON per curve (E2E, GOOG,
JPEG / JPEG 2000 at each family's rates, and their reference curves;
`rd.compressai_docs`, drawn by scripts/plot_rd.py), rd.md (the printed
tables) and records.json (per image). --from_records=records.json redoes
the tables and files from those per-image records without encoding:

  python scripts/rd_baselines.py \
      --from_records=results/baselines/records.json --out_dir=results/baselines
"""

import json
import os
import sys
import tempfile

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from tf_hbd import baselines
from tf_hbd import errors
from tf_hbd.baselines import folders
from tf_hbd.baselines import rd
from tf_hbd.codecs import images

_IMAGES = flags.DEFINE_string("images", None, "Folder or glob of images.")
_FROM_RECORDS = flags.DEFINE_string(
    "from_records", None, "Instead of --images: a records.json written "
    "before; the tables and files are recomputed from it, nothing encoded.")
_REFERENCE = flags.DEFINE_bool(
    "reference", True, "Encode the JPEG / JPEG 2000 reference curves (a "
    "grid of settings per image); without them their PSNR at --at_bpp is "
    "n/a.")
_JPEG_QUALITIES = flags.DEFINE_list(
    "jpeg_qualities", [str(q) for q in rd.JPEG_QUALITIES],
    "JPEG qualities of the reference curve.")
_JP2_BPPS = flags.DEFINE_list(
    "jp2_bpps", [f"{b:g}" for b in rd.JP2_BPPS], "JPEG 2000 rates of the "
    "reference curve (one encode at ratio 8 / bpp each; real rate kept).")
_GOOG_ITERATIONS = flags.DEFINE_list(
    "goog_iterations", [str(k) for k in range(1, 17)],
    "GOOG iteration counts (1/8 bpp each as raw bits, less entropy coded).")
_E2E_MODELS = flags.DEFINE_list("e2e_models", None,
                                "E2E models (default: all available).")
_MODELS = flags.DEFINE_list(
    "models", None, "Models that are not shipped: [LABEL=]FOLDER of a "
    "campaign snapshot, run, export, or a folder of them.")
_WITH_SHIPPED = flags.DEFINE_bool(
    "with_shipped", False, "With --models: the shipped models run too.")
_WEIGHTS = flags.DEFINE_enum(
    "weights", "float32", ["float32", "float16"], "Snapshots of --models: "
    "how their exports store the large parameters (e2e.stored_twin, "
    "goog.stored_twin).")
_FIT_DIR = flags.DEFINE_string(
    "fit_dir", None, "GOOG snapshots of --models: training images to fit "
    "the entropy-coder tables on (not kodak or bsd68); default: none.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", None, "Where snapshots are exported and kept (default: a "
    "temporary folder, removed at the end).")
_TARGETS = flags.DEFINE_list(
    "targets", ["0.37"], "Target bpp for encode_at_bpp rows (per image "
    "choice).")
_CLASSICAL = flags.DEFINE_list("classical", ["jpeg", "jp2"],
                               "Codecs at the same bpp.")
_MAX_IMAGES = flags.DEFINE_integer("max_images", None,
                                   "Only the first this-many images.")
_AT_BPP = flags.DEFINE_float("at_bpp", 0.37,
                             "Rate of the interpolated comparison.")
_OUT = flags.DEFINE_string("out", None,
                           "JSON file of per-image records + summary.")
_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Folder for <curve>.json (CompressAI style), rd.md and "
    "records.json.")
_VERBOSE = flags.DEFINE_bool("verbose", False,
                             "Show TensorFlow's own log lines.")
flags.mark_flags_as_mutual_exclusive(["images", "from_records"],
                                     required=True)


def _extra_models(log, work) -> dict:
  """{name: SavedModel} of --models (snapshots exported under `work`)."""
  if not _MODELS.value:
    return {}
  out = {}
  for model in folders.find_all(_MODELS.value):
    out[model.name] = folders.saved_model(model, work, _WEIGHTS.value,
                                          fit_dir=_FIT_DIR.value, log=log)
    log(f"{model.name}: {model.folder} -> {out[model.name]} "
        f"({folders.progress(model)})")
  return out


def _document(source, records):
  """What records.json holds: the per-image records, and what is computed
  from them (summary, at_rate) for readers that do not recompute."""
  return {"images": source, "summary": rd.summarize(records),
          "at_bpp": _AT_BPP.value, "interpolation": rd.INTERPOLATION,
          "at_rate": rd.at_rate(records, _AT_BPP.value), "records": records}


def _write(out_dir, doc, header):
  os.makedirs(out_dir, exist_ok=True)
  source, records = doc["images"], doc["records"]
  dataset = os.path.basename(os.path.normpath(source))
  for curve in rd.compressai_docs(doc["summary"], doc["at_rate"],
                                  _AT_BPP.value, dataset):
    slug = curve["name"].lower().replace(" ", "_")
    with open(os.path.join(out_dir, f"{slug}.json"), "w") as f:
      json.dump(curve, f, indent=1)
  with open(os.path.join(out_dir, "rd.md"), "w") as f:
    f.write(rd.report_markdown(records, _AT_BPP.value, header))
  with open(os.path.join(out_dir, "records.json"), "w") as f:
    json.dump(doc, f, indent=1)


def main(argv):
  """Prints (and with --out writes) the RD comparison; 0, 2 for a held-out
  --fit_dir or an unreadable --from_records, 130 on Ctrl-C (`tf_hbd.errors.exit_on_interrupt`)."""
  del argv
  return errors.exit_on_interrupt(_compare, "rd_baselines.py")


def _compare():
  if _FROM_RECORDS.value:
    return _recompute(_FROM_RECORDS.value)
  if _FIT_DIR.value:
    try:
      folders.check_fit_dir(_FIT_DIR.value)
    except errors.HbdError as e:
      print(f"rd_baselines.py: {e}", file=sys.stderr)
      return 2
  if _WORK_DIR.value:
    return _compare_in(_WORK_DIR.value)
  with tempfile.TemporaryDirectory(prefix="rd_baselines_") as work:
    return _compare_in(work)  # the exported snapshots go with it


def _recompute(path):
  """The tables and files from a records.json; 2 if it cannot be read."""
  try:
    with open(path, encoding="utf-8") as f:
      doc = json.load(f)
    source, records = doc["images"], doc["records"]
    for r in records:  # what the tables read of every record
      _ = [r[k] for k in ("image", "setting", "codec")]
      _ = [float(r[k]) for k in ("bpp", "psnr", "ssim", "ms-ssim")]
  except (OSError, ValueError, KeyError, TypeError) as e:
    print(f"rd_baselines.py: {path}: not a records.json written by "
          f"--out_dir ({type(e).__name__}: {e}); rerun with --images",
          file=sys.stderr)
    return 2
  images_ = len({r["image"] for r in records})
  return _report(source, records, f"{images_} images from {source} (gray)")


def _compare_in(work):
  quiet.quiet_tensorflow(_VERBOSE.value)
  log = lambda line: print(line, flush=True)
  files = images.list_images(_IMAGES.value)[:_MAX_IMAGES.value]
  extra = _extra_models(log, work)
  with baselines.use(extra, shipped=not extra or _WITH_SHIPPED.value):
    neural = rd.settings([int(k) for k in _GOOG_ITERATIONS.value],
                         _E2E_MODELS.value, [float(t) for t in _TARGETS.value])
    records = rd.evaluate(files, neural, _CLASSICAL.value, log=log)
  if _REFERENCE.value:
    records += rd.reference(files, [int(q) for q in _JPEG_QUALITIES.value],
                            [float(b) for b in _JP2_BPPS.value],
                            _CLASSICAL.value, log=log)
  return _report(_IMAGES.value, records,
                 f"{len(files)} images from {_IMAGES.value} (gray)")


def _report(source, records, header):
  """Prints the tables; writes --out and --out_dir; 0."""
  doc = _document(source, records)  # summary and at_rate, computed once
  print(f"\n{header}\n")
  print(rd.side_by_side(doc["summary"]))
  print(f"\nAt {_AT_BPP.value:g} bpp ({rd.INTERPOLATION}):\n")
  print(rd.at_rate_markdown(doc["at_rate"], _AT_BPP.value))
  print("\nAll rows:\n")
  print(rd.markdown(doc["summary"]))
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump(doc, f, indent=1)
  if _OUT_DIR.value:
    _write(_OUT_DIR.value, doc, header + "\n")
  return 0


if __name__ == "__main__":
  app.run(main)
