"""Shipping trained campaign models: into ``tf_hbd/baselines/pretrained/``.

`ship` turns models where training left them (`tf_hbd.baselines.folders`: a
campaign snapshot, run or export) into shipped models: for each, a
SavedModel in ``<dest>/<name>/`` and a MODEL.md (the command, data, steps,
training hours, learning curve, size and how the weights are stored).

The shipped models of a family are replaced only when asked
(``replace=True``): then every shipped model of the families being shipped
that is not in the new set is removed, and models of the same name are
overwritten; otherwise a name that is already shipped is refused. Each model
is written to ``<name>.tmp`` and renamed, so a failure never leaves half a
model.

Weights: by default E2E models store their convolution kernels and GDN
gammas, GOOG models their convolution kernels, in float16
(`tf_hbd.baselines.e2e.stored_twin`, `tf_hbd.baselines.goog.stored_twin`;
they compute in float32 with the rounded values, the same in every
process), about half the bytes.

GOOG's entropy coder: a GOOG model exported from a checkpoint gets bit
tables fitted on `fit_dir` (the training images; `folders.saved_model`),
without it none (raw bits, with a warning). Its MODEL.md says which.
"""

import os
import shutil
import tempfile
import time
from typing import Callable, Optional, Sequence

from tf_hbd import baselines
from tf_hbd import errors
from tf_hbd.baselines import campaign
from tf_hbd.baselines import folders

__all__ = ["ship", "model_markdown", "folder_bytes", "DEFAULT_WEIGHTS"]

DEFAULT_WEIGHTS = "float16"
# Bullets of a snapshot's MODEL.md (`campaign._snapshot_markdown`) carried
# over to the shipped model's.
_CARRIED = ("* Architecture:", "* Data:", "* Campaign command:")


def folder_bytes(path: str) -> int:
  """Bytes of every file under `path`."""
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)


def _shipped(dest: str) -> list:
  if not os.path.isdir(dest):
    return []
  return sorted(n for n in os.listdir(dest)
                if os.path.isfile(os.path.join(dest, n, "saved_model.pb"))
                and n.split("-", 1)[0] in baselines.FAMILIES)


def _carried(notes: Optional[str]) -> list:
  if not notes:
    return []
  with open(notes, encoding="utf-8") as f:
    return [line.rstrip("\n") for line in f if line.startswith(_CARRIED)]


def model_markdown(model: folders.ModelFolder, saved_model: str,
                   weights: str, command: str = "") -> str:
  """MODEL.md of a shipped model (see the module docstring)."""
  done = folders.progress(model)
  size = folder_bytes(saved_model)
  variables = folder_bytes(os.path.join(saved_model, "variables"))
  large = ("convolution kernels" if model.family == "goog" else
           "convolution kernels and GDN gammas")
  storage = ("float32" if weights == "float32" else
             f"{large} in float16 (cast to float32 where used; the codec "
             "computes in float32), the rest float32")
  lines = [
      f"# {model.name}: {model.family.upper()} baseline, trained by the "
      "issue-13 campaign", "",
      f"Shipped by `{command or 'scripts/ship_baselines.py'}` from "
      f"`{model.folder}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
      ".", ""]
  lines += _carried(model.notes)
  if "step" in done:
    lines.append(f"* Training: {done['step']:,} steps, "
                 f"{done['seconds'] / 3600.0:.2f} h of step time (totals "
                 "over sessions, `tf_hbd/baselines/campaign.py`).")
  lines += [
      f"* Weights: {storage}.",
      f"* Size: **{size:,} bytes** (the SavedModel: variables "
      f"{variables:,}, graph and range-coding tables the rest).",
      *_bits_lines(model, saved_model),
      "* Rate-distortion on Kodak: `python scripts/rd_baselines.py "
      "--images=../shared/data/kodak --out_dir=DIR` (the shipped models; "
      "bpp from the real files).", ""]
  if model.curve:
    run = campaign.Run(model.name, model.family, 0.0)
    lines += ["## Learning curve (validation, as trained)", "",
              campaign.curve_markdown("", run, model.curve), ""]
  return "\n".join(lines)


def _bits_lines(model: folders.ModelFolder, saved_model: str) -> list:
  """GOOG: whether its bits are entropy coded, and the tables' data."""
  if model.family != "goog":
    return []
  from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
  source = goog.bit_source_of(saved_model)
  if source is None:
    return ["* Bits: **not entropy coded** (no context tables; each "
            "iteration's file payload is the raw bits, 1/8 bpp)."]
  return ["* Bits: **entropy coded** (`tf_hbd/baselines/goog_bits.py`: "
          "context tables fitted on "
          f"{source or 'training images (not recorded)'}; a file is the "
          "smaller of coded and raw bits, and its rate counts every byte)."]


def _check_names(models, dest, replace):
  """Refuses names already shipped in `dest` unless `replace`."""
  existing = set(_shipped(dest))
  clash = sorted(m.name for m in models if m.name in existing)
  if clash and not replace:
    raise errors.HbdError(
        f"already shipped in {dest}: {clash}; pass replace=True "
        "(--replace) to replace the shipped models of their families")


def ship(specs: Sequence[str], dest: str = baselines.PRETRAINED_DIR,
         weights: str = DEFAULT_WEIGHTS, replace: bool = False,
         command: str = "", log: Callable[[str], None] = print,
         fit_dir: Optional[str] = None) -> list:
  """Ships the models of `specs` into `dest`.

  Args:
    specs: ``[LABEL=]FOLDER`` each (`folders.find`).
    dest: the shipped models' folder.
    weights: how the models store their large parameters ("float16" or
      "float32"; see the module docstring).
    replace: replace the shipped models of the families being shipped (see
      the module docstring); False: refuse names already shipped.
    command: the command line, for MODEL.md.
    log: progress lines (and the warning of a GOOG model without tables).
    fit_dir: the training images to fit GOOG's entropy-coder tables on
      when a GOOG checkpoint is exported (`folders.saved_model`); None:
      none (a warning).

  Returns:
    list of dicts, one per shipped model: ``name``, ``path``, ``bytes``
    (of the SavedModel: the folder without MODEL.md), ``weights``, and ``step`` / ``seconds`` of training when known. Removed
    models are logged.

  Raises:
    HbdError: no model in a spec, a name given twice, a name already
      shipped without `replace`, or a held-out `fit_dir`.
  """
  models = folders.find_all(specs)
  if fit_dir:
    folders.check_fit_dir(fit_dir)
  _check_names(models, dest, replace)
  os.makedirs(dest, exist_ok=True)
  work = tempfile.mkdtemp(prefix="ship_baselines_")
  out = []
  try:
    for model in models:
      source = folders.saved_model(model, work, weights, fit_dir=fit_dir,
                                   log=log)
      kind = folders.stored_weights(source)
      target = os.path.join(dest, model.name)
      tmp = target + ".tmp"
      if os.path.isdir(tmp):
        shutil.rmtree(tmp)
      try:
        shutil.copytree(source, tmp)
        with open(os.path.join(tmp, "MODEL.md"), "w", encoding="utf-8") as f:
          f.write(model_markdown(model, source, kind, command))
      except BaseException:  # a stop or a failure leaves no half model
        shutil.rmtree(tmp, ignore_errors=True)
        raise
      if os.path.isdir(target):
        shutil.rmtree(target)
      os.rename(tmp, target)
      info = {"name": model.name, "path": target,
              "bytes": folder_bytes(source), "weights": kind,
              **folders.progress(model)}
      log(f"shipped {model.name}: {target}, {info['bytes']:,} bytes "
          f"({kind})")
      out.append(info)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  if replace:
    families = {m.family for m in models}
    keep = {m.name for m in models}
    for name in _shipped(dest):
      if baselines.family_of(name) in families and name not in keep:
        shutil.rmtree(os.path.join(dest, name))
        log(f"removed {name} (replaced)")
  return out
