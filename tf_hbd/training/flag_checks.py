"""Flag checks and exit codes of the training script (`scripts/train.py`).

`validate_train_flags` checks every flag value *before* any data is built
(a bad flag used to surface minutes later, as a traceback); `guarded_main`
turns the errors a user can cause into one line on stderr and an exit code:

| code | meaning |
|---|---|
| 0 | finished, or stopped at ``--max_steps`` (rerun to continue) |
| 1 | training failed: non-finite loss, resource limit (RTRL), unreadable data, no intact checkpoint |
| 2 | usage: a bad flag value, a missing dataset / validation folder / data_dir |
| 130 | interrupted (Ctrl-C or SIGTERM: the batch under way is finished and checkpointed); rerun the same command to resume from the last checkpoint |
"""

import os
import sys
from typing import Callable, Mapping

from tf_hbd import errors

__all__ = ["validate_train_flags", "guarded_main", "EXIT_OK", "EXIT_FAILED",
           "EXIT_USAGE", "EXIT_INTERRUPTED", "MAX_K"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = errors.EXIT_INTERRUPTED  # 130
MAX_K = 64  # refinement steps per episode; memory and time grow with K

# flag name -> smallest allowed value (ints and floats alike).
_AT_LEAST_1 = ("units", "K", "batch_size", "epochs", "k_top", "k_attn",
               "k_trunc")
_AT_LEAST_0 = ("patch_size", "train_max_side", "train_limit",
               "steps_per_epoch", "max_steps", "checkpoint_every",
               "val_max_images", "val_max_side", "val_K", "log_every",
               "sab_attn_units", "num_cpu_devices", "seed", "clip_norm",
               "alpha", "val_bpp", "collective_timeout", "lr_end_fraction",
               "lr_decay_power", "momentum")
_POSITIVE = ("lr", "rtrl_max_gb", "uoro_epsilon", "val_quality",
             "loss_norm_eps")


def _folder_with_images(flag, value, spec):
  from tf_hbd.codecs import images  # pylint: disable=g-import-not-at-top
  try:
    images.list_images(spec)
  except errors.ImageReadError as e:
    where = "" if value.endswith(":" + spec) or value == spec else f"{spec}: "
    raise errors.UsageError(f"--{flag}={value}: {where}{e.reason}") from None


def validate_train_flags(values: Mapping[str, object]) -> None:
  """Checks train.py's flag values (only the flags present in `values`).

  Args:
    values: flag name -> value.

  Raises:
    UsageError: the first bad value, naming the flag and what is allowed.
  """
  for name in _AT_LEAST_1:
    v = values.get(name)
    if v is not None and v < 1:
      raise errors.UsageError(f"--{name}={v}: must be at least 1")
  for name in _AT_LEAST_0:
    v = values.get(name)
    if v is not None and v < 0:
      raise errors.UsageError(f"--{name}={v}: must be 0 or more")
  for name in _POSITIVE:
    v = values.get(name)
    if v is not None and not v > 0:
      raise errors.UsageError(f"--{name}={v}: must be positive")
  for name in ("K", "val_K"):
    v = values.get(name)
    if v is not None and v > MAX_K:
      raise errors.UsageError(f"--{name}={v}: at most {MAX_K} refinement "
                              "steps (the paper uses 4)")
  if values.get("momentum") is not None and values["momentum"] >= 1:
    raise errors.UsageError(f"--momentum={values['momentum']}: must be below "
                            "1")
  if "model_dir" in values:
    model_dir = values["model_dir"]
    if not model_dir or not str(model_dir).strip():
      raise errors.UsageError("--model_dir is empty; give the folder for "
                              "checkpoints, logs and the export")
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
      raise errors.UsageError(f"--model_dir={model_dir} is a file; give a "
                              "folder")
  _check_dataset(values.get("dataset"))
  if values.get("val_images"):
    _folder_with_images("val_images", values["val_images"],
                        values["val_images"])
  data_dir = values.get("data_dir")
  if data_dir and "://" not in data_dir and not os.path.isdir(data_dir):
    raise errors.UsageError(f"--data_dir={data_dir}: no such folder")
  _check_loss_and_grid(values)
  for name, parser in (("jpeg_qualities", "parse_mixture"),
                       ("jp2_bpp", "parse_bpp_range")):
    spec = values.get(name)
    if spec:
      from tf_hbd.data import recompress  # pylint: disable=g-import-not-at-top
      try:
        getattr(recompress, parser)(spec)
      except ValueError as e:
        raise errors.UsageError(f"--{name}={spec}: {e}") from None


def _not_recompress(values: Mapping[str, object]) -> bool:
  """Whether --dataset is given and is not a ``recompress:`` stream (the one
  that compresses each image afresh and knows it)."""
  dataset = values.get("dataset")
  return isinstance(dataset, str) and not dataset.startswith("recompress:")


def _explicit_path(spec: str) -> bool:
  """A spec that can only mean a path (absolute, a drive, ./, ../ or ~)."""
  return (os.path.isabs(spec) or bool(os.path.splitdrive(spec)[0]) or
          spec.startswith((".", "~")))


def _needs_prefix(spec: str) -> bool:
  """A folder given without ``folder:``: an explicit path to a folder, or a
  name that is a folder holding images, that is not a prepared dataset."""
  if (not os.path.isdir(spec) or
      os.path.exists(os.path.join(spec, "dataset_info.json"))):
    return False
  if _explicit_path(spec):
    return True
  from tf_hbd.codecs import images  # pylint: disable=g-import-not-at-top
  try:
    return bool(images.list_images(spec))
  except errors.ImageReadError:
    return False


def _check_dataset(dataset) -> None:
  """--dataset: sample, folder:<path>, recompress:<sources> or a TFDS name
  (or a prepared dataset's folder); a folder of images without its prefix
  and an explicit path that does not exist are refused. Any other name
  (e.g. ``sample_patches/jpeg``, even where a folder of that name exists)
  is left to TFDS."""
  if not isinstance(dataset, str):
    return
  if not dataset.strip():
    raise errors.UsageError("--dataset is empty; give sample, "
                            "folder:<path> or a prepared dataset's name")
  if dataset.startswith("folder:"):
    _folder_with_images("dataset", dataset, dataset[len("folder:"):])
  elif dataset.startswith("recompress:"):
    sources = [x for x in dataset[len("recompress:"):].split(",") if x]
    if not sources:
      raise errors.UsageError(
          f"--dataset={dataset}: no sources; give recompress:<folder>[,...] "
          "or recompress:sample")
    for src in sources:
      if src != "sample":
        _folder_with_images("dataset", dataset, src)
  elif dataset != "sample" and _needs_prefix(dataset):
    raise errors.UsageError(
        f"--dataset={dataset}: a folder of images needs its prefix: "
        f"--dataset=folder:{dataset} (or recompress:{dataset})")
  elif (dataset != "sample" and _explicit_path(dataset) and
        not os.path.exists(dataset)):
    raise errors.UsageError(
        f"--dataset={dataset}: no such folder or dataset; a folder of images "
        "is given as --dataset=folder:<path>, a prepared dataset by its name "
        "(BUILD.md, section Datasets)")


def _check_loss_and_grid(values: Mapping[str, object]) -> None:
  """--loss_norm and --grid_offset combinations that cannot work."""
  norm = values.get("loss_norm")
  if norm not in (None, "none"):
    if values.get("loss_form", "batch_mean") != "batch_mean":
      raise errors.UsageError(f"--loss_norm={norm} is a batch mean: use it "
                              "with --loss_form=batch_mean")
    if values.get("loss_norm_scope") == "image" and _not_recompress(values):
      raise errors.UsageError(
          "--loss_norm_scope=image needs --dataset=recompress:... (the "
          "stream that knows each block's image)")
  if values.get("grid_offset"):
    if values.get("codec", "jpeg") != "jp2":
      raise errors.UsageError("--grid_offset is for --codec=jp2 (JPEG's 8x8 "
                              "block grid must stay aligned)")
    if _not_recompress(values):
      raise errors.UsageError("--grid_offset needs "
                              "--dataset=recompress:...")


def guarded_main(fn: Callable[[list], int], argv, values: Mapping[str,
                                                                   object],
                 name: str = "train.py", hint: str = "") -> int:
  """Validates `values`, runs ``fn(argv)``, maps errors to exit codes.

  Ctrl-C / a training loop's `Stopped` goes through the package's one
  handler (`tf_hbd.errors.exit_on_interrupt`).

  Args:
    fn: the script's real main.
    argv: passed to `fn`.
    values: flag values for `validate_train_flags`.
    name: program name for messages.
    hint: what to do after a Ctrl-C (e.g. rerun to resume), for its message.

  Returns:
    The exit code (`fn`'s own on success).
  """
  def checked():
    try:
      validate_train_flags(values)
      return fn(argv)
    except errors.UsageError as e:
      print(f"{name}: error: {e}", file=sys.stderr)
      return EXIT_USAGE
    except FileNotFoundError as e:  # e.g. a TFDS dataset that is not built
      print(f"{name}: error: {e}", file=sys.stderr)
      return EXIT_USAGE
    except errors.HbdError as e:
      print(f"{name}: error: {e}", file=sys.stderr)
      return EXIT_FAILED

  return errors.exit_on_interrupt(checked, name, hint)
