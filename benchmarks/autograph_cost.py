"""CPU cost of AutoGraph in one tiny training run, and whether it changes
anything.

  python benchmarks/autograph_cost.py             # the reproduce tiny run
  python benchmarks/autograph_cost.py --algo=bptt --codec=jpeg --patch_size=8
  python benchmarks/autograph_cost.py --algo=bptt --extra="--sne=true \
      --setting_input=true --precision=bfloat16"
  python benchmarks/autograph_cost.py --served    # the shipped decoders

Runs ``python -m tf_hbd.training`` (the flags of one ``reproduce.py
--scale=tiny`` run: 2 epochs x 3 batches, LSTM-8, validation, the serving
export; ``--extra``: more training flags) twice, side by side so that machine
load hits both alike: with every ``tf.function`` forced to
``autograph=True`` (a wrapper installed before tf_hbd is imported; what the
package did before issue 16), and as shipped (every ``tf.function`` of the
package has ``autograph=False``). Prints each process's CPU time (user +
system) and wall time, whether the per-epoch training losses are equal,
whether the final checkpoints hold bit-identical variables, and whether the
two serving exports hold the same functions with the same operations (op
types and counts per function) and refine two sample images bit-identically.
Many test-suite tests start such a process (reproduce, study, train/export
scripts): the difference is what AutoGraph's source conversion costs each of
them.

``--served``: in this process, rebuilds each shipped pretrained decoder
(`tf_hbd.inference.serving.PRETRAINED`: bfloat16 products, the codec-setting
input, the JPEG projection, the JPEG 2000 pass-through and activity ramp)
from its export, exports it with AutoGraph forced on and as shipped, and
compares the two exports' ``refine`` on sample images at several settings
(bit for bit), and with the shipped export's own ``refine``.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FORCE_AUTOGRAPH = """
import sys
sys.path.insert(0, {root!r} + "/benchmarks")
import autograph_cost
autograph_cost.force_autograph()
from tf_hbd.training import main
sys.argv = ["tf_hbd.training"] + sys.argv[1:]
main.run()
"""
_ORIGINAL_FUNCTION = None
# The training flags that shape a decoder (`run_decoder.build_algorithm`).
_MODEL_FLAGS = ("K", "boundary", "cell", "center_inputs", "precision", "seed",
                "setting_input", "sne", "tied", "units")


def force_autograph(on=True):
  """Makes every later ``tf.function(...)`` use ``autograph=on``.

  ``on=None`` restores the original ``tf.function``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  global _ORIGINAL_FUNCTION
  _ORIGINAL_FUNCTION = _ORIGINAL_FUNCTION or tf.function
  original = _ORIGINAL_FUNCTION
  if on is None:
    tf.function = original
    return

  def function(func=None, **kwargs):
    kwargs["autograph"] = on
    return original(func, **kwargs) if func is not None else original(
        **kwargs)
  tf.function = function


def _start(argv, model_dir, autograph, log_path):
  """Starts one training process; returns (Popen, start time)."""
  head = (["-c", _FORCE_AUTOGRAPH.format(root=_ROOT)] if autograph
          else ["-m", "tf_hbd.training"])
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  with open(log_path, "w") as log:
    proc = subprocess.Popen(
        [sys.executable, *head, f"--model_dir={model_dir}", *argv], cwd=_ROOT,
        env=env, stdout=log, stderr=subprocess.STDOUT)
  return proc, time.time()


def _wait_all(started):
  """{name: (exit code, CPU seconds, wall seconds)} as each process ends.

  Args:
    started: {name: (Popen, start time)}.
  """
  by_pid = {proc.pid: (name, proc, t0) for name, (proc, t0) in
            started.items()}
  out = {}
  while by_pid:
    pid, status, usage = os.wait4(-1, 0)
    if pid not in by_pid:
      continue
    name, proc, t0 = by_pid.pop(pid)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out[name] = (proc.returncode, usage.ru_utime + usage.ru_stime,
                 time.time() - t0)
  return out


def _graph_ops(export_dir):
  """{(function name without its number, ((op, count), ...)): count}."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  model = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
    model.ParseFromString(f.read())
  out = collections.Counter()
  for fn in model.meta_graphs[0].graph_def.library.function:
    ops = collections.Counter(node.op for node in fn.node_def)
    out[(re.sub(r"_\d+$", "", fn.signature.name),
         tuple(sorted(ops.items())))] += 1
  return out


def _weights_equal(dirs):
  """Whether the newest checkpoints of two model dirs hold equal variables
  (all but the training seconds)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  readers = [tf.train.load_checkpoint(os.path.join(d, "checkpoints"))
             for d in dirs]
  names = [sorted(n for n in r.get_variable_to_shape_map()
                 if not n.startswith("train_time/"))  # wall-clock seconds
           for r in readers]
  if names[0] != names[1]:
    return False, "different variables"
  differ = [n for n in names[0] if not np.array_equal(
      readers[0].get_tensor(n), readers[1].get_tensor(n))]
  return not differ, f"{len(names[0])} variables, {len(differ)} differ"


def _sample_cases(codec):
  """[(label, decoded uint8 image, setting)] on two sample images."""
  from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy  # pylint: disable=g-import-not-at-top
  from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top
  settings = ({"quality": q} for q in (10, 30, 90)) if codec == "jpeg" else (
      {"bpp": b} for b in (0.05, 0.1, 0.2, 0.5))
  cases = []
  for kw in settings:
    for name in ("camera", "astronaut"):
      image = sample_images.load_sample(name)[128:256, 160:320]
      enc = legacy.encode(image, codec, **kw)
      cases.append((f"{name} {kw}", legacy.decode(enc),
                    codec_setting.features(enc.data, codec, image.shape)))
  return cases


def _refine_all(path, cases):
  """The export's ``refine`` on every case (uint8 arrays)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  fn = tf.saved_model.load(path).signatures["refine"]
  with_setting = "setting" in fn.structured_input_signature[1]
  out = []
  for _, image, setting in cases:
    kwargs = {"setting": tf.constant(setting)} if with_setting else {}
    out.append(fn(image=tf.constant(image), **kwargs)["refined"].numpy())
  return out


def _served_probe(codec, tmp):
  """Re-exports one shipped decoder with and without AutoGraph; compares."""
  from tf_hbd.inference import serving  # pylint: disable=g-import-not-at-top
  from tf_hbd.model import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
  from tf_hbd.training import config as config_lib  # pylint: disable=g-import-not-at-top
  from tf_hbd.training import run_decoder  # pylint: disable=g-import-not-at-top
  shipped = serving.pretrained_dir(codec)
  with open(os.path.join(shipped, serving.METADATA_FILE)) as f:
    meta = json.load(f)
  cases = _sample_cases(codec)
  outs = {"shipped export": _refine_all(shipped, cases)}
  for name, on in (("autograph", True), ("as shipped", False)):
    force_autograph(on)
    try:
      model, _ = run_decoder.build_algorithm(
          config_lib.from_args([f"--{k}={meta['training']['flags'][k]}"
                                for k in _MODEL_FLAGS]),
          meta["patch_size"], meta["setting_size"])
      _, kept = decoder_lib.warm_start(model, shipped)
      assert not kept, kept
      path = serving.export_serving(
          model, os.path.join(tmp, f"{codec}_{on}"), codec,
          project=meta["jpeg_projection"], guard=meta["flat_guard"],
          passthrough=meta["passthrough"])
    finally:
      force_autograph(None)
    outs[name] = _refine_all(path, cases)
  ref = outs["autograph"]
  for name in ("as shipped", "shipped export"):
    same = [np.array_equal(a, b) for a, b in zip(ref, outs[name])]
    print(f"{codec}: {name} == autograph on {sum(same)}/{len(same)} cases "
          f"bit-identical" + "".join(f"\n  differs: {c[0]}" for c, ok in
                                      zip(cases, same) if not ok))
  passed = [np.array_equal(c[1], r) for c, r in zip(cases, ref)]
  print(f"{codec}: {sum(passed)}/{len(cases)} cases returned the decoded "
        "image unchanged (pass-through)")


def _compare_runs(results):
  """Prints what two finished training runs have in common."""
  (a, _), (b, _) = results.values()
  losses = []
  for d in (a, b):
    with open(os.path.join(d, "log.json")) as f:
      losses.append([e["train_loss"] for e in json.load(f)["epochs"]])
  print(f"training losses equal: {losses[0] == losses[1]} {losses[0]}")
  print("final checkpoints bit-identical: %s (%s)" % _weights_equal((a, b)))
  ops_a, ops_b = (_graph_ops(os.path.join(d, "serving")) for d in (a, b))
  print(f"serving exports: {sum(ops_a.values())} / {sum(ops_b.values())} "
        f"functions, same operations: {ops_a == ops_b}")
  with open(os.path.join(a, "serving", "hbd_model.json")) as f:
    codec = json.load(f)["codec"]
  cases = _sample_cases(codec)[:4]
  same = [np.array_equal(x, y) for x, y in zip(
      _refine_all(os.path.join(a, "serving"), cases),
      _refine_all(os.path.join(b, "serving"), cases))]
  print(f"serving refine bit-identical: {sum(same)}/{len(same)} images")


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--algo", default="uoro")
  p.add_argument("--codec", default="jp2")
  p.add_argument("--patch_size", type=int, default=16)
  p.add_argument("--extra", default="", help="more training flags")
  p.add_argument("--served", action="store_true",
                 help="compare re-exports of the shipped decoders instead")
  args = p.parse_args(argv)
  tmp = tempfile.mkdtemp()
  if args.served:
    for codec in ("jpeg", "jp2"):
      _served_probe(codec, tmp)
    return
  flags = ["--K=2", f"--algo={args.algo}", "--batch_size=16",
           f"--codec={args.codec}", "--epochs=2", "--log_every=1",
           "--lr=0.001", "--optimizer=adam",
           f"--patch_size={args.patch_size}", "--sne=false",
           "--steps_per_epoch=3", "--train_limit=2", "--train_max_side=96",
           "--units=8", "--val_max_images=1", "--val_max_side=64",
           *args.extra.split()]
  runs = {}
  for name, autograph in (("autograph on", True), ("as shipped", False)):
    d = os.path.join(tmp, name.replace(" ", "_"))
    runs[name] = (d, _start(flags, d, autograph, d + ".log"))
  ended = _wait_all({name: started for name, (_, started) in runs.items()})
  results = {name: (d, ended[name]) for name, (d, _) in runs.items()}
  for name, (d, (code, cpu, wall)) in results.items():
    print(f"{name:>13}: exit {code}, CPU {cpu:.1f} s, wall {wall:.0f} s "
          f"(log {d}.log)")
  _compare_runs(results)


if __name__ == "__main__":
  main()
