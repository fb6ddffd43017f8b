"""The serving export of a training run, and its metadata, built in one place.

The serving export is the one SavedModel a training run writes: a run
(``python -m tf_hbd.training``) ends by writing ``<model_dir>/serving``
(`export_run`), and ``scripts/export.py`` re-exports a run (the decoder of
its final or its best checkpoint, rebuilt by `tf_hbd.training.run_decoder`,
optionally calibrated, with guards and passthrough thresholds) to any folder
through `export_run` too; the provenance in ``hbd_model.json`` comes from
`run_metadata` (label, algorithm, SNE, the training flags, best epoch,
epochs, wall time, source), built from the run's log.
"""

import json
import os
from typing import Optional

from tf_hbd.evaluation import systems as evaluation
from tf_hbd.inference import serving
from tf_hbd.training import run_decoder

__all__ = ["SOURCES", "read_log", "run_metadata", "export_run"]

# The decoders of a run directory that can be exported: the final weights
# (the last checkpoint) and the best validation epoch so far (the checkpoint
# --export_best keeps while the run goes on).
SOURCES = run_decoder.SOURCES


def read_log(model_dir: str) -> dict:
  """The run's ``log.json`` (`tf_hbd.training.trainer`)."""
  with open(os.path.join(model_dir, "log.json")) as f:
    return json.load(f)


def run_metadata(log: dict, source: str, note: str = "") -> dict:
  """The provenance stored in a run's serving export (``hbd_model.json``).

  Args:
    log: the run's log (``log.json``, or the dict `Trainer.run` returns).
    source: which decoder of the run is exported (`SOURCES`).
    note: free text (omitted when empty).

  Returns:
    {label, algorithm, sne, training: {flags, best, epochs, source,
    wall_time_s}[, note]}; flag values are stored as text.
  """
  fl = log.get("flags", {})
  codec = fl.get("codec", "jpeg")
  sne = str(fl.get("sne", False)).lower() == "true"
  epochs = log.get("epochs", [])
  meta = {"label": evaluation.decoder_label(fl.get("cell", "lstm"), codec,
                                            log["algorithm"], sne),
          "algorithm": log["algorithm"], "sne": sne,
          "training": {"flags": {k: str(v) for k, v in fl.items()},
                       "best": log.get("best"),
                       "epochs": len(epochs),
                       "source": source,
                       "wall_time_s": (epochs[-1].get("time_s")
                                       if epochs else None)}}
  if note:
    meta["note"] = note
  return meta


def export_run(model, log: dict, out: str, source: str, note: str = "",
               extra: Optional[dict] = None, **serving_options) -> dict:
  """Writes the serving SavedModel of a run's decoder to `out`.

  Args:
    model: the decoder (weights as they should ship: averaged, calibrated).
    log: the run's log (its flags give the codec and the label).
    out: the output folder.
    source: which decoder of the run `model` is (`SOURCES`).
    note: free text stored in the metadata.
    extra: more metadata entries (e.g. the calibration).
    **serving_options: `tf_hbd.inference.serving.export_serving` options
      (batch_size, project, guard, passthrough).

  Returns:
    The metadata written.
  """
  meta = run_metadata(log, source, note)
  meta.update(extra or {})
  codec = log.get("flags", {}).get("codec", "jpeg")
  serving.export_serving(model, out, codec, metadata=meta, **serving_options)
  return meta
