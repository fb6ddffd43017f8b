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

Writes with --out_dir: one CompressAI-style JSON per curve (E2E, GOOG, and
JPEG / JPEG 2000 at each family's rates; `rd.compressai_docs`, drawn by
scripts/plot_rd.py), rd.md (the printed tables) and records.json (per image).
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
flags.mark_flag_as_required("images")


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


def _write(out_dir, rows, records, header):
  os.makedirs(out_dir, exist_ok=True)
  at = rd.at_rate(rows, _AT_BPP.value)
  dataset = os.path.basename(os.path.normpath(_IMAGES.value))
  for doc in rd.compressai_docs(rows, at, _AT_BPP.value, dataset):
    slug = doc["name"].lower().replace(" ", "_")
    with open(os.path.join(out_dir, f"{slug}.json"), "w") as f:
      json.dump(doc, f, indent=1)
  with open(os.path.join(out_dir, "rd.md"), "w") as f:
    f.write(rd.report_markdown(rows, _AT_BPP.value, header))
  with open(os.path.join(out_dir, "records.json"), "w") as f:
    json.dump({"images": _IMAGES.value, "summary": rows, "at_rate": at,
               "records": records}, f, indent=1)


def main(argv):
  """Prints (and with --out writes) the RD comparison; 0, 2 for a held-out
  --fit_dir, 130 on Ctrl-C (`tf_hbd.errors.exit_on_interrupt`)."""
  del argv
  return errors.exit_on_interrupt(_compare, "rd_baselines.py")


def _compare():
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


def _compare_in(work):
  quiet.quiet_tensorflow(_VERBOSE.value)
  log = lambda line: print(line, flush=True)
  files = images.list_images(_IMAGES.value)[:_MAX_IMAGES.value]
  extra = _extra_models(log, work)
  with baselines.use(extra, shipped=not extra or _WITH_SHIPPED.value):
    neural = rd.settings([int(k) for k in _GOOG_ITERATIONS.value],
                         _E2E_MODELS.value, [float(t) for t in _TARGETS.value])
    records = rd.evaluate(files, neural, _CLASSICAL.value, log=log)
  rows = rd.summarize(records)
  header = f"{len(files)} images from {_IMAGES.value} (gray)"
  print(f"\n{header}\n")
  print(rd.side_by_side(rows))
  at = rd.at_rate(rows, _AT_BPP.value)
  print(f"\nInterpolated at {_AT_BPP.value:g} bpp ({rd.INTERPOLATION}):\n")
  print(rd.at_rate_markdown(at, _AT_BPP.value))
  print("\nAll rows:\n")
  print(rd.markdown(rows))
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump({"images": _IMAGES.value, "summary": rows, "at_rate": at,
                 "records": records}, f, indent=1)
  if _OUT_DIR.value:
    _write(_OUT_DIR.value, rows, records, header + "\n")
  return 0


if __name__ == "__main__":
  app.run(main)
