"""The whole study at a named scale: data, training, baselines, evaluation.

Scales (`SCALES`):

* ``tiny``: CI-sized (minutes): the embedded sample photos, tiny decoders,
  a few steps; checks that every piece runs end to end.
* ``cpu``: this project's 2-core machine (about an hour): train on
  ``train400``, validate on ``bsd68``, test on ``kodak`` (gray, 0.37 bpp).
* ``paper``: the paper's setting (Places365 + RAISE TFDS builds, LSTM-512,
  SGD 2e-4, batch 256, 260 epochs) for a GPU/cluster; needs the prepared TFDS
  datasets (BUILD.md, "Datasets") and the benchmark folders.

Each training run is ``python -m tf_hbd.training`` in its own process
(resumable: a
rerun skips finished runs and resumes unfinished ones from their
checkpoints). Baselines GOOG and E2E are the models shipped in the package;
the ``cpu`` scale also evaluates the shipped decoders (`Scale.shipped`).
Results go to ``results/<scale>/`` (tables, figures, JSON, and a README.md
with the command, date, machine and timings).

Run with ``hbd-reproduce --scale=tiny`` (or
``python -m tf_hbd.workflows.reproduce``, or ``python scripts/reproduce.py``
in a checkout); the data sets are read from ``--data_root`` (default:
``$TF_HBD_DATA``; the ``tiny`` scale needs none: `tf_hbd.data.roots`).
"""

import contextlib
import dataclasses
import json
import os
import platform
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from tf_hbd import arguments
from tf_hbd import errors
from tf_hbd import quiet  # first: TF's log lines off (hbd-reproduce --help)

quiet.quiet_tensorflow(quiet.verbose_in_argv())
# Ctrl-C while TensorFlow loads: one line, exit 130 (tf_hbd.errors).
_imported = errors.interrupt_exits_while_importing("reproduce")
try:  # released even when an import fails (the handler must not stay)
  # pylint: disable=g-import-not-at-top,wrong-import-position
  from tf_hbd.data import roots
  from tf_hbd.evaluation import systems as evaluation
  from tf_hbd.evaluation import study
  from tf_hbd.inference import numpy_serving
  from tf_hbd.training import config as config_lib
  from tf_hbd.training import flag_checks
  from tf_hbd.workflows import children
finally:
  _imported()

__all__ = ["Scale", "SCALES", "RESUME_HINT", "plan_runs",
           "run_scale", "main"]
ALGORITHMS = ("bptt", "sab", "rtrl", "uoro")
RESUME_HINT = ("rerun the same command to resume: finished runs are kept, "
               "the others continue from their last checkpoint")
SNE_ALGORITHMS = ("bptt", "sab")


@dataclasses.dataclass
class Scale:
  """Everything that differs between scales.

  Attributes:
    description: one line for the results README.
    codecs: {codec: patch size}.
    train: the training configuration shared by every run
      (`tf_hbd.training.config.CONFIGS`; ``{data}`` and ``{codec}`` in its
      paths are filled in per run).
    algo_overrides: fields changed per algorithm (e.g. RTRL's smaller batch).
    datasets: evaluation datasets as ``NAME=FOLDER`` specs.
    eval_max_images, eval_max_side: evaluation limits (None: all / as is).
    k_sweep: Table 1's K values.
    rd_bpps: rates of the RD curves.
    baselines: neural baseline rows.
    sne: also train SNE-RNN with BPTT and SAB.
    shipped: codecs whose shipped decoder (`tf_hbd/pretrained`, trained for
      hours, not by this scale) is evaluated next to the scale's own
      decoders, so the tables show what the package delivers as well as
      what the scale's budget buys.
  """
  description: str
  codecs: Dict[str, int]
  train: config_lib.RunConfig
  algo_overrides: Dict[str, Dict[str, object]]
  datasets: List[str]
  eval_max_images: Optional[int]
  eval_max_side: Optional[int]
  k_sweep: List[int]
  rd_bpps: List[float]
  baselines: Tuple[str, ...] = ("goog", "e2e")
  sne: bool = True
  shipped: Tuple[str, ...] = ()

  @property
  def train_flags(self) -> Dict[str, str]:
    """The flags of `train` that differ from the defaults."""
    return config_lib.to_flags(self.train)


SCALES = {
    "tiny": Scale(
        description="CI smoke scale: embedded sample photos, 8-unit LSTMs, a "
        "few batches per algorithm",
        codecs={"jpeg": 8, "jp2": 16},
        train=config_lib.TINY,
        algo_overrides={},
        datasets=["sample_test=sample:test"],
        eval_max_images=2, eval_max_side=96, k_sweep=[1, 3],
        rd_bpps=[0.3, 0.6], baselines=("goog", "e2e")),
    "cpu": Scale(
        description="2-core CPU scale: train400 (train), bsd68 (validation), "
        "kodak gray (test); LSTM-32 decoders (so that RTRL fits), Adam 1e-3, "
        "5 epochs of 40 batches of 256 blocks per run",
        codecs={"jpeg": 8, "jp2": 16},
        train=config_lib.CPU,
        algo_overrides={"rtrl": {"batch_size": 64, "steps_per_epoch": 160}},
        datasets=["kodak={data}/kodak"],
        eval_max_images=None, eval_max_side=None,
        k_sweep=[1, 3, 5, 7, 9, 11],
        rd_bpps=[0.25, 0.37, 0.6, 1.0], shipped=("jpeg", "jp2")),
    "paper": Scale(
        description="the paper's scale: Places365 (+ RAISE) TFDS builds, "
        "LSTM-512, SGD 2e-4 with polynomial decay, batch 256, clip 13, 260 "
        "epochs; six benchmarks",
        codecs={"jpeg": 8, "jp2": 64},
        train=config_lib.PAPER,
        algo_overrides={},
        datasets=["kodak={data}/kodak", "cb8={data}/cb8", "cb16={data}/cb16",
                  "cb16linear={data}/cb16linear", "tecnick={data}/tecnick",
                  "wikipedia={data}/wikipedia"],
        eval_max_images=None, eval_max_side=None,
        k_sweep=[1, 3, 5, 7, 9, 11],
        rd_bpps=[0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]),
}


def plan_runs(scale: Scale, algorithms: Sequence[str] = ALGORITHMS):
  """[(label, flags)] of every training run of a scale.

  A run's flags are those of its configuration that differ from the
  defaults, and always its algorithm, codec, patch size and SNE.
  """
  runs = []
  for codec, d in scale.codecs.items():
    combos = [(a, False) for a in algorithms]
    if scale.sne:
      combos += [(a, True) for a in SNE_ALGORITHMS if a in algorithms]
    for algo, sne in combos:
      run = config_lib.override(scale.train,
                                **scale.algo_overrides.get(algo, {}))
      run = config_lib.override(run, algo=algo, codec=codec, patch_size=d,
                                sne=sne)
      fl = config_lib.to_flags(run, keep=("algo", "codec", "patch_size",
                                          "sne"))
      label = evaluation.decoder_label("lstm", codec, algo, sne)
      runs.append((label, fl))
  return runs


def shipped_decoders(scale: Scale) -> List[str]:
  """``LABEL=PATH`` of the shipped decoders that `scale` evaluates."""
  return [f"{numpy_serving.PRETRAINED[c]} (shipped)="
          f"{numpy_serving.pretrained_dir(c)}" for c in scale.shipped]


def _seconds_file(model_dir):
  """Where `_train` records a run's training wall time, beside its log."""
  return model_dir + ".seconds"


def _train(label, fl, model_dir, log_file, say):
  """Trains one run unless it finished earlier; (wall seconds, kept): a kept
  run's seconds are those its training recorded (None if it recorded
  none), so the README's times stay those of the training that was done."""
  done = os.path.join(model_dir, "log.json")
  if os.path.isfile(done):
    with open(done) as f:
      if json.load(f).get("status") == "finished":
        say(f"  {label}: finished earlier, kept ({model_dir})")
        try:
          with open(_seconds_file(model_dir)) as f:
            return float(f.read()), True
        except (OSError, ValueError):
          return None, True
  args = [sys.executable, "-m", "tf_hbd.training", f"--model_dir={model_dir}"]
  args += [f"--{k}={v}" for k, v in sorted(fl.items())]
  say(f"  {label}: " + " ".join(args[1:]))
  with contextlib.suppress(FileNotFoundError):  # an earlier training's time
    os.remove(_seconds_file(model_dir))  # is not this one's, if it fails
  t0 = time.time()
  with open(log_file, "a") as log:
    code = children.run(args, log=log)  # Ctrl-C: the run checkpoints first
  if code != 0:
    raise RuntimeError(f"training {label} failed (exit {code}); "
                       f"see {log_file}")
  seconds = time.time() - t0
  with open(_seconds_file(model_dir), "w") as f:
    f.write(f"{seconds:.1f}\n")
  return seconds, False


def run_scale(name: str, out_dir: str, work_dir: str,
              data_root: Optional[str] = None,
              algorithms: Sequence[str] = ALGORITHMS,
              command: str = "", say=print) -> Dict[str, str]:
  """Trains every run of scale `name` and evaluates; returns artifacts.

  `data_root` fills ``{data}`` in the scale's settings (`tf_hbd.data.roots`;
  None: a scale that names it is refused with `errors.UsageError`).
  """
  if name not in SCALES:
    raise ValueError(f"unknown scale {name!r}; choose from {sorted(SCALES)}")
  scale = SCALES[name]
  runs = [(label, {k: roots.fill(v, data_root).replace("{codec}", fl["codec"])
                   for k, v in fl.items()})
          for label, fl in plan_runs(scale, algorithms)]
  datasets = [study.parse_dataset(roots.fill(s, data_root),
                                  max_side=scale.eval_max_side)
              for s in scale.datasets]
  os.makedirs(out_dir, exist_ok=True)
  os.makedirs(work_dir, exist_ok=True)
  t_start = time.time()
  timings = {}  # label: (wall seconds or None, kept from an earlier run)
  dirs = []
  say(f"[reproduce:{name}] {scale.description}")
  for label, fl in runs:
    model_dir = os.path.join(work_dir, label)
    timings[label] = _train(label, fl, model_dir,
                            os.path.join(work_dir, label + ".log"), say)
    dirs.append(f"{label}={model_dir}")
  dirs += shipped_decoders(scale)
  train_time = time.time() - t_start
  t_eval = time.time()
  artifacts = study.run(datasets, out_dir,
                        systems=("jpeg", "jp2") + tuple(scale.baselines),
                        decoders=dirs, k_sweep=scale.k_sweep,
                        rd_bpps=scale.rd_bpps,
                        max_images=scale.eval_max_images, verbose=True)
  eval_time = time.time() - t_eval
  _write_readme(out_dir, name, scale, command, timings, train_time, eval_time,
                artifacts)
  return artifacts


def _machine():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return (f"{platform.node()}: {platform.platform()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"TensorFlow {tf.__version__}, devices "
          f"{[d.device_type for d in tf.config.list_physical_devices()]}")


def _write_readme(out_dir, name, scale, command, timings, train_time,
                  eval_time, artifacts):
  kept = [v for v, was_kept in timings.values() if was_kept]
  earlier = sum(v or 0.0 for v in kept)
  unknown = sum(v is None for v in kept)
  training = f"* training: {train_time / 60:.1f} min in this run"
  if kept:
    training += (f"; {len(kept)} of {len(timings)} runs had finished "
                 f"earlier and were kept ({earlier / 60:.1f} min when they "
                 "were trained" + (f", {unknown} of them not recorded"
                                   if unknown else "") + ")")
  lines = [f"# Reproduction at scale `{name}`", "",
           f"{scale.description}.", "",
           f"* command: `{command or 'python scripts/reproduce.py --scale=' + name}`",
           f"* date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
           f"* machine: {_machine()}",
           f"{training}; evaluation: {eval_time / 60:.1f} min", "",
           "| run | training time (s) |", "|---|---|"]
  for k, (v, was_kept) in timings.items():
    t = "not recorded" if v is None else f"{v:.0f}"
    lines.append(f"| {k} | {t}{' (earlier run, kept)' if was_kept else ''} |")
  lines += ["", "Shared flags of every training run: `" + " ".join(
      f"--{k}={v}" for k, v in sorted(scale.train_flags.items())) + "`", ""]
  for label, path in artifacts.items():
    lines.append(f"* {label}: `{os.path.relpath(path, out_dir)}`")
  for md in ("table3.md", "convergence.md"):
    p = os.path.join(out_dir, md)
    if os.path.exists(p):
      with open(p) as f:
        lines += ["", f.read()]
  for fname in sorted(os.listdir(out_dir)):
    if fname.startswith("table1_") and fname.endswith(".md"):
      with open(os.path.join(out_dir, fname)) as f:
        lines += ["", "## Table 1", "", f.read()]
  with open(os.path.join(out_dir, "README.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
  """``python -m tf_hbd.workflows.reproduce``: the whole study at one scale."""
  argv = sys.argv[1:] if argv is None else list(argv)
  if "--scale=study" in argv:  # issue 14's seeded study (study_runner)
    from tf_hbd.workflows import study_runner  # pylint: disable=g-import-not-at-top
    return study_runner.main([a for a in argv if a != "--scale=study"])
  p = arguments.ArgumentParser(description=__doc__.split("\n", 1)[0])
  p.add_argument("--scale", default="tiny", choices=sorted(SCALES),
                 help="which scale to run")
  p.add_argument("--out_dir", default="",
                 help="results folder (default results/<scale>)")
  p.add_argument("--work_dir", default="",
                 help="training runs (default runs/reproduce/<scale>)")
  p.add_argument("--data_root", default="",
                 help="folder holding the data sets (kodak, bsd68, "
                 "train400, ...); default: $TF_HBD_DATA")
  p.add_argument("--algorithms", default=",".join(ALGORITHMS),
                 help="learning algorithms to train (comma-separated)")
  args = p.parse_args(argv)
  algos = [a for a in args.algorithms.split(",") if a]

  def reproduce():
    try:
      run_scale(args.scale, args.out_dir or f"results/{args.scale}",
                args.work_dir or f"runs/reproduce/{args.scale}",
                roots.data_root(args.data_root), algorithms=algos,
                command="python " + " ".join(sys.argv))
    except errors.UsageError as e:  # e.g. no data root for a scale needing one
      print(f"reproduce: error: {e}", file=sys.stderr)
      return flag_checks.EXIT_USAGE
    return 0

  # Ctrl-C / SIGTERM: the training run under way checkpoints, then exit 130.
  return errors.exit_on_interrupt(reproduce, "reproduce", RESUME_HINT)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
