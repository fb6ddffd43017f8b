"""Settings of a training run as data: `RunConfig`, one object per scale.

Every knob of ``python -m tf_hbd.training`` (``scripts/train.py``) is one
field of `RunConfig` below, with its default and its one-line help; the
entry point defines its flags from these fields (`define_flags`), so the
flags, their defaults and ``--help`` have one source. The named
configurations (`CONFIGS`: ``tiny``, ``cpu``, ``study``, ``paper``) are
`RunConfig` objects that list only what differs from the defaults;
``--config=NAME`` starts from one and the flags given on the command line
override its fields (`from_args`, `override`). ``{data}`` in a
configuration's paths stands for the folder of the data sets (the data
root: `tf_hbd.data.roots`) and ``{codec}`` for its codec (`resolve`).

  from tf_hbd.training import config
  cfg = config.override(config.CONFIGS["tiny"], units=16)
  config.to_flags(cfg)   # {'dataset': 'sample', 'units': '16', ...}
"""

import dataclasses
import decimal
import math
import typing
from typing import Dict, List, Mapping, Optional, Sequence

from tf_hbd.data import roots

__all__ = ["RunConfig", "CONFIGS", "STRATEGIES", "COMMUNICATIONS", "TINY", "CPU",
           "STUDY", "PAPER", "define_flags", "from_args", "from_flag_values",
           "override", "resolve", "to_flags", "flag_text", "flag_names",
           "trainer_config"]

_ALGOS = ["bptt", "sab", "rtrl", "uoro", "snap1"]
_CELLS = ["lstm", "gru", "delta", "elman", "mlp"]
# The distribution choices (tf_hbd.training.distributed re-exports them; kept
# here so that reading a config does not import TensorFlow).
STRATEGIES = ("default", "mirrored", "multi_worker")
COMMUNICATIONS = ("auto", "ring", "nccl")
_STRATEGIES = list(STRATEGIES)
_COMMUNICATIONS = list(COMMUNICATIONS)


def _knob(default, help_text, choices=None):
  """A field with its flag's help (and choices, for an enum flag)."""
  meta = {"help": help_text, "choices": choices}
  if isinstance(default, list):
    return dataclasses.field(default_factory=lambda: list(default),
                             metadata=meta)
  return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class RunConfig:
  """Every setting of a training run; one field per flag, in flag order."""
  # ---- the decoder ----------------------------------------------------
  algo: str = _knob("bptt", "Learning algorithm.", _ALGOS)
  cell: str = _knob("lstm", "State cell.", _CELLS)
  units: int = _knob(512, "State size n (paper: 512).")
  K: int = _knob(4, "Refinement steps per episode (paper: 4).")
  sne: bool = _knob(False, "Sibling neural estimator (SNE-RNN).")
  center_inputs: bool = _knob(
      True, "Feed q - 0.5 to the transformation (optimisation aid; False: "
      "the paper's raw q).")
  boundary: str = _knob(
      "paper", "Block boundary rule of the decoder and of recompress: data "
      "(paper: the paper's rule).", ["paper", "replicate"])
  tied: bool = _knob(True, "LSTM/GRU: one e shared by the gates (paper); "
                     "False: a transformation per gate.")
  setting_input: bool = _knob(
      False, "Tell the decoder the codec setting read from the bitstream "
      "(tf_hbd.codecs.codec_setting; needs recompress: data).")
  precision: str = _knob(
      "float32", "Matrix products in this dtype (bfloat16: mixed precision, "
      "float32 weights/state/loss).", ["float32", "bfloat16"])
  # ---- training data --------------------------------------------------
  codec: str = _knob("jpeg", "Codec of the training and validation data.",
                     ["jpeg", "jp2"])
  patch_size: int = _knob(0, "Patch side d for in-memory datasets (0: 8 for "
                          "JPEG, 64 for JPEG 2000).")
  dataset: str = _knob(
      "sample", "'sample' (embedded photos), 'folder:<path>', or a prepared "
      "TFDS dataset name such as sample_patches/jpeg.")
  data_dir: Optional[str] = _knob(None, "TFDS data directory.")
  split: str = _knob("train", "TFDS split to train on.")
  train_max_side: int = _knob(0, "Downsample in-memory training images to "
                              "this longer side (0: keep).")
  train_limit: int = _knob(0, "Use only the first N in-memory training "
                           "images (0: all).")
  # ---- optimisation ---------------------------------------------------
  batch_size: int = _knob(256, "Blocks per batch (paper: 256).")
  optimizer: str = _knob("sgd", "Optimizer (paper: sgd).",
                         ["sgd", "momentum", "adam"])
  lr: float = _knob(2e-4, "Initial step size (paper: 2e-4).")
  momentum: float = _knob(0.9, "Momentum of --optimizer=momentum.")
  lr_decay_power: float = _knob(2.0, "Power of the polynomial step-size "
                                "decay.")
  lr_schedule: str = _knob(
      "polynomial", "Step-size schedule (paper: polynomial; cosine: warm-up "
      "then cosine decay).", ["polynomial", "cosine"])
  warmup: int = _knob(0, "Warm-up updates of the cosine schedule.")
  ema: float = _knob(0.0, "Decay of the weight average used for validation "
                     "and export (0: off; e.g. 0.999).")
  export_best: bool = _knob(
      False, "Keep the best validation epoch's model so far (averaged "
      "weights) as a checkpoint in <model_dir>/checkpoints/best "
      "(scripts/export.py --source=best).")
  # ---- recompress: data (codec round trips made on the fly) -----------
  crop: int = _knob(176, "recompress: crop side (0: whole images).")
  synthetic_fraction: float = _knob(0.1, "recompress: synthetic images per "
                                    "real crop.")
  tone_fraction: float = _knob(0.1, "recompress: share of crops squeezed "
                               "into a dark or bright range.")
  jpeg_qualities: str = _knob(
      "", "recompress: JPEG quality mixture PROB:LOW-HIGH,... (empty: "
      "tf_hbd.data.recompress.QUALITY_MIXTURE).")
  jp2_bpp: str = _knob(
      "", "recompress: JPEG 2000 rate range LOW-HIGH in bpp, drawn "
      "log-uniform (empty: 0.1-2).")
  grid_offset: bool = _knob(
      False, "recompress: cut the blocks of each compressed image at a "
      "random offset (0..d-1 pixels) from the codec's origin (JPEG 2000 "
      "only: JPEG's 8x8 grid must stay aligned).")
  val_settings: List[str] = _knob(
      [], "Validate at several JPEG qualities / JP2 bpps (e.g. 10,20,30); "
      "overrides --val_quality/--val_bpp.")
  init_from: str = _knob(
      "", "Start from these weights when the model dir has no checkpoint "
      "yet: a serving export (a run's serving/, a shipped model), a run "
      "dir (its best checkpoint, else its final one) or a decoder "
      "SavedModel.")
  # ---- the loss and its schedule --------------------------------------
  lr_end_fraction: float = _knob(0.01, "Final step size as a fraction of "
                                 "--lr.")
  clip_norm: float = _knob(13.0, "Gradient global-norm clip (paper: 13).")
  alpha: float = _knob(0.235, "MSE weight of the loss (eq. 17).")
  loss_form: str = _knob("batch_mean", "Loss normalisation "
                         "(tf_hbd.model.losses).", ["batch_mean", "paper"])
  loss_norm: str = _knob(
      "none", "Divide each example's error by the codec's own "
      "(tf_hbd.model.losses; none: the paper's loss).",
      ["none", "ratio", "log_ratio"])
  loss_norm_eps: float = _knob(1.0, "--loss_norm: added to both errors, in "
                               "8-bit levels squared.")
  loss_norm_scope: str = _knob(
      "patch", "--loss_norm: the codec's error of the example's patch or of "
      "its whole image (image: recompress: data).", ["patch", "image"])
  epochs: int = _knob(10, "Training epochs (paper: 260+).")
  steps_per_epoch: int = _knob(0, "Batches per epoch (0: one pass over the "
                               "set).")
  seed: int = _knob(0, "Seed of weights, data order, signs.")
  model_dir: Optional[str] = _knob(None, "Checkpoints, logs and the export.")
  # ---- the learning algorithms' own knobs -----------------------------
  accumulate: bool = _knob(
      False, "RTRL/UORO/SnAp-1: one update per batch from the K step "
      "gradients instead of one per step (online).")
  rtrl_max_gb: float = _knob(4.0, "RTRL refuses runs whose estimated peak "
                             "memory exceeds this many GiB.")
  uoro_per_example: bool = _knob(
      False, "UORO: one estimate per example (lower variance, slower) "
      "instead of one for the whole batch.")
  uoro_form: str = _knob(
      "published", "UORO gradient: 'published' (Tallec & Ollivier 2017, "
      "Algorithm 1: the previous estimate carried one exact step plus the "
      "exact immediate term) or 'post_update' (the rank-one estimate after "
      "the fresh signs; higher variance).", ["published", "post_update"])
  uoro_epsilon: float = _knob(1e-7, "UORO: epsilon of the rho ratios.")
  sab_readout: str = _knob(
      "state", "SAB: the reconstruction reads s_k = h_k + summary_k "
      "('state') or, as the SAB reference code, [s_k; summary_k] "
      "('reference').", ["state", "reference"])
  k_top: int = _knob(2, "SAB: memories kept (paper code default 10, for "
                     "long sequences).")
  k_attn: int = _knob(1, "SAB: store a memory every k_attn steps (paper code "
                      "default 2).")
  k_trunc: int = _knob(2, "SAB: truncation chunk of the recurrent gradient "
                       "(paper code default 10).")
  sab_attn_units: int = _knob(0, "SAB: hidden size of the score MLP (0: "
                              "state size).")
  # ---- validation -----------------------------------------------------
  val_images: str = _knob("", "Validation images (folder/glob); empty: the "
                          "sample photographs' validation split.")
  val_quality: float = _knob(20.0, "Codec quality of the validation images "
                             "(JPEG quality; JP2 ratio).")
  val_bpp: float = _knob(0.0, "Target bpp of the validation images instead "
                         "of --val_quality (0: use the quality).")
  val_max_images: int = _knob(0, "Validate on at most N images (0: all).")
  val_max_side: int = _knob(0, "Downsample validation images to this longer "
                            "side (0: full size).")
  val_K: int = _knob(0, "Refinement steps at validation (0: --K).")
  # ---- progress, checkpoints, export ----------------------------------
  log_every: int = _knob(50, "Progress line every N batches.")
  checkpoint_every: int = _knob(200, "Also checkpoint every N batches (0: "
                                "epoch ends only).")
  max_steps: int = _knob(0, "Stop (resumably) after N batches in total (0: "
                         "none).")
  deterministic: bool = _knob(True, "Deterministic TF ops (exact resume).")
  export: bool = _knob(True, "Write the serving export (the run's one "
                       "SavedModel) to <model_dir>/serving at the end.")
  # ---- devices (BUILD.md, "Distributed training") ---------------------
  strategy: str = _knob(
      "default", "tf.distribute strategy: default (one device), mirrored "
      "(the GPUs of this machine, or --devices), multi_worker (the cluster "
      "in TF_CONFIG).", _STRATEGIES)
  devices: List[str] = _knob([], "mirrored: devices to use (empty: every "
                             "GPU, else CPU).")
  num_cpu_devices: int = _knob(0, "Split the CPU into this many logical "
                               "devices (mirrored then uses them; for "
                               "testing without GPUs).")
  communication: str = _knob("auto", "multi_worker collectives: auto, ring "
                             "(gRPC; CPUs) or nccl (GPUs).", _COMMUNICATIONS)
  collective_timeout: float = _knob(0.0, "multi_worker: abort a collective "
                                    "after this many seconds (0: no limit).")
  verbose: bool = _knob(False, "Show TensorFlow's own log lines.")


# ---- the named configurations (only what differs from the defaults) -----

# CI smoke scale: the embedded sample photos, 8-unit decoders, a few batches.
TINY = RunConfig(
    dataset="sample", units=8, K=2, batch_size=16, epochs=2,
    steps_per_epoch=3, train_limit=2, train_max_side=96, val_max_images=1,
    val_max_side=64, optimizer="adam", lr=1e-3, log_every=1)

# This project's 2-core CPU: train400 (train), bsd68 (validation); LSTM-32
# (so that RTRL fits), Adam 1e-3, 5 epochs of 40 batches of 256 blocks.
CPU = RunConfig(
    dataset="folder:{data}/train400", val_images="{data}/bsd68",
    val_max_images=4, val_bpp=0.37, units=32, K=4, batch_size=256, epochs=5,
    steps_per_epoch=40, optimizer="adam", lr=1e-3, log_every=20)

# The study's production decoder: the command of the shipped JPEG decoder
# (tf_hbd/pretrained/hbd-lstm-jpeg/MODEL.md): LSTM-512 on recompressed
# train400 + the sample photos, the codec setting as input, bfloat16, Adam
# with a cosine schedule and a weight average, validated on bsd68.
STUDY = RunConfig(
    codec="jpeg", dataset="recompress:{data}/train400,sample", cell="lstm",
    units=512, tied=True, K=4, boundary="replicate", setting_input=True,
    precision="bfloat16", optimizer="adam", lr=1e-3, lr_schedule="cosine",
    warmup=2000, lr_end_fraction=0.02, ema=0.9995, alpha=1.0, epochs=14,
    steps_per_epoch=25000, checkpoint_every=2500, synthetic_fraction=0.15,
    export_best=True, val_images="{data}/bsd68",
    val_settings=["10", "20", "30"], log_every=1000, seed=1)

# The paper's scale (section 3.2): Places365 TFDS builds, LSTM-512, SGD 2e-4
# with polynomial decay, batch 256, clip 13, 260 epochs (GPU/cluster).
PAPER = RunConfig(
    dataset="places_patches/{codec}", units=512, K=4, batch_size=256,
    epochs=260, optimizer="sgd", lr=2e-4, val_images="{data}/places_val",
    val_max_images=200)

CONFIGS: Dict[str, RunConfig] = {"tiny": TINY, "cpu": CPU, "study": STUDY,
                                 "paper": PAPER}


# ---- flags <-> configurations -------------------------------------------

def flag_names() -> List[str]:
  """The flag names, in definition order (the order of the fields)."""
  return [f.name for f in dataclasses.fields(RunConfig)]


def _kind(field):
  """'enum', 'string', 'integer', 'float', 'bool' or 'list'."""
  if field.metadata["choices"]:
    return "enum"
  tp = field.type
  if typing.get_origin(tp) is typing.Union:  # Optional[str]
    tp = [a for a in typing.get_args(tp) if a is not type(None)][0]
  if typing.get_origin(tp) in (list, List):
    return "list"
  return {str: "string", int: "integer", float: "float", bool: "bool"}[tp]


def define_flags(flag_values=None, module_name=None):
  """Defines one absl flag per `RunConfig` field, with its default and help.

  Args:
    flag_values: the `absl.flags.FlagValues` (default: the global FLAGS).
    module_name: the module the flags belong to (for ``--help``).

  Returns:
    {name: FlagHolder}.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  flag_values = flags.FLAGS if flag_values is None else flag_values
  holders = {}
  extra = {"module_name": module_name} if module_name else {}
  for f in dataclasses.fields(RunConfig):
    default = getattr(RunConfig(), f.name)
    text = f.metadata["help"]
    kind = _kind(f)
    if kind == "enum":
      holders[f.name] = flags.DEFINE_enum(
          f.name, default, f.metadata["choices"], text,
          flag_values=flag_values, **extra)
    else:
      define = getattr(flags, "DEFINE_" + kind)
      holders[f.name] = define(f.name, default, text,
                               flag_values=flag_values, **extra)
  return holders


def override(config: RunConfig, **changes) -> RunConfig:
  """A copy of `config` with some fields changed (unknown names refused)."""
  names = set(flag_names())
  unknown = sorted(set(changes) - names)
  if unknown:
    raise ValueError(f"unknown setting(s) {unknown}; see "
                     "tf_hbd.training.config.RunConfig")
  return dataclasses.replace(config, **changes)


def from_flag_values(flag_values, base: Optional[RunConfig] = None
                     ) -> RunConfig:
  """The settings of parsed flags: `base` with the flags given overriding.

  Args:
    flag_values: parsed `absl.flags.FlagValues` holding the flags of
      `define_flags`.
    base: the configuration the flags override (None: the defaults, which
      are the flags' defaults).
  """
  if base is None:
    return RunConfig(**{n: flag_values[n].value for n in flag_names()})
  given = {n: flag_values[n].value for n in flag_names()
           if flag_values[n].present}
  return override(base, **given)


def from_args(args: Sequence[str], base: Optional[RunConfig] = None
              ) -> RunConfig:
  """Parses ``--name=value`` arguments the way the training entry point does.

  Args:
    args: command-line arguments (no program name).
    base: the configuration they override (None: the defaults).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  define_flags(fv)
  fv(["prog", *args])
  return from_flag_values(fv, base)


def _float_text(value: float) -> str:
  """The shortest text that parses back to `value`: fixed-point (``0.02``,
  ``1``) unless the exponent form is shorter (``1e-3``, ``2e-4``)."""
  if not math.isfinite(value):
    return repr(value)
  exact = decimal.Decimal(repr(value))
  fixed = format(exact, "f")
  if "." in fixed:
    fixed = fixed.rstrip("0").rstrip(".")
  sign, digits, exponent = exact.normalize().as_tuple()
  mantissa = "".join(map(str, digits))
  mantissa = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
  sci = f"{'-' if sign else ''}{mantissa}e{exponent + len(digits) - 1}"
  return sci if len(sci) < len(fixed) else fixed


def flag_text(value) -> str:
  """A setting as its flag's text (the one place that writes it): bools as
  ``true``/``false``, lists comma-separated, floats by `_float_text`."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, (list, tuple)):
    return ",".join(str(v) for v in value)
  if isinstance(value, float):
    return _float_text(value)
  return str(value)


def to_flags(config: RunConfig, keep: Sequence[str] = ()
             ) -> Dict[str, str]:
  """{flag: text} of the fields that differ from the defaults (and `keep`).

  ``from_args([f"--{k}={v}" for k, v in to_flags(c).items()]) == c`` for
  every configuration whose strings hold no comma-separated lists of
  commas.
  """
  default = RunConfig()
  return {n: flag_text(getattr(config, n)) for n in flag_names()
          if n in keep or getattr(config, n) != getattr(default, n)}


def resolve(config: RunConfig, data_root: Optional[str] = None
            ) -> RunConfig:
  """Replaces ``{data}`` (the data root) and ``{codec}`` in string fields.

  Raises:
    errors.UsageError: a field names the data root and `data_root` is None
      (`tf_hbd.data.roots.fill`).
  """
  changes = {}
  for n in flag_names():
    v = getattr(config, n)
    if isinstance(v, str) and ("{data}" in v or "{codec}" in v):
      changes[n] = roots.fill(v, data_root).replace("{codec}", config.codec)
  return dataclasses.replace(config, **changes)


def trainer_config(config: RunConfig, steps_per_epoch: int,
                   flags: Mapping[str, object]):
  """The `tf_hbd.training.trainer.TrainConfig` of a run.

  The fields both classes share are copied by name; `steps_per_epoch` is the
  resolved count (``--steps_per_epoch=0`` means one pass over the data) and
  `flags` the settings recorded in the log.
  """
  from tf_hbd.training import trainer  # pylint: disable=g-import-not-at-top
  shared = {f.name for f in dataclasses.fields(trainer.TrainConfig)}
  shared -= {"steps_per_epoch", "flags"}
  shared &= set(flag_names())
  return trainer.TrainConfig(
      steps_per_epoch=steps_per_epoch, flags=dict(flags),
      **{n: getattr(config, n) for n in sorted(shared)})
