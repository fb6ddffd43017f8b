"""Wall time of `hbd enhance` on one 768 x 512 JPEG, split into its parts.

The input is Kodak's kodim01 (turned to landscape 768 x 512), converted to
gray and saved as a JPEG at quality 20, when /work/shared/data (or --image)
is there; else scikit-image's astronaut, resized to 768 x 512. Each of
--runs runs is a fresh process doing what `hbd enhance IN -o OUT --force`
does, timed from outside (interpreter start to exit) and split inside:

* import:      ``import tf_hbd.inference.cli`` and the modules `enhance` loads
               (tf_hbd.inference.serving, i.e. TensorFlow);
* model load:  `tf_hbd.inference.serving.load_pretrained("jpeg")` (the SavedModel);
* refine:      the model call on the image (the first call of the process,
               as a user meets it);
* rest:        interpreter start and exit, decoding the JPEG, writing the
               PNG (wall minus the three above).

Then one more process measures, in the same run and alternating them, the
warm `refine` call against the bare matrix products the model needs for the
image's blocks (embedding x @ W once per block, recurrence s @ V K times,
readout s @ U once), with the shipped model's own weights.

Usage:
  .venv/bin/python benchmarks/enhance_speed.py [--runs 5] [--image PNG]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_IMAGE = os.path.join(_ROOT, "..", "shared", "data", "kodak",
                             "kodim01.png")


def make_input(image_path, out_dir):
  """Writes the 768 x 512 gray JPEG (quality 20); returns (path, source)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if image_path and os.path.exists(image_path):
    img = Image.open(image_path).convert("L")
    if img.height > img.width:
      img = img.transpose(Image.Transpose.ROTATE_90)
    source = os.path.basename(image_path)
  else:
    from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top
    img = Image.fromarray(sample_images.load_sample("astronaut"))
    source = "scikit-image astronaut"
  img = img.resize((768, 512), Image.LANCZOS) if img.size != (768, 512) \
      else img
  path = os.path.join(out_dir, "input.jpg")
  Image.fromarray(np.asarray(img)).save(path, quality=20)
  return path, source


def child_enhance(jpg, out_dir):
  """One `hbd enhance` as a user runs it, with its parts timed."""
  t0 = time.perf_counter()
  from tf_hbd.inference import cli  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import serving  # pylint: disable=g-import-not-at-top
  t_import = time.perf_counter() - t0
  times = {"load": 0.0, "refine": 0.0}
  load, refine = serving.load_pretrained, serving.ServedModel.refine

  def timed_load(codec):
    t = time.perf_counter()
    try:
      return load(codec)
    finally:
      times["load"] += time.perf_counter() - t

  def timed_refine(self, image, K=None):  # pylint: disable=invalid-name
    t = time.perf_counter()
    try:
      return refine(self, image, K=K)
    finally:
      times["refine"] += time.perf_counter() - t

  serving.load_pretrained = timed_load
  serving.ServedModel.refine = timed_refine
  real_main = cli.main

  def reporting_main(argv):
    with open(os.devnull, "w") as devnull:
      stdout, sys.stdout = sys.stdout, devnull
      try:
        code = real_main(argv)
      finally:
        sys.stdout = stdout
    print(json.dumps({"code": code, "import": t_import,
                      "load": times["load"], "refine": times["refine"],
                      "max_rss_mb": resource.getrusage(
                          resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return code

  cli.main = reporting_main
  sys.argv = ["hbd", "enhance", jpg, "-o", out_dir, "--force"]
  cli.run()  # the console script's own exit path


def child_ratio(jpg, repeats):
  """Warm refine vs the bare matrix products, alternating."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import serving  # pylint: disable=g-import-not-at-top
  with open(jpg, "rb") as f:
    decoded = codecs.decode(f.read())
  model = serving.load_pretrained("jpeg")
  meta = model.metadata
  d, k = int(meta["patch_size"]), int(meta["K"])
  weights = {v.name.split("/")[-1].split(":")[0]: v
             for v in model._loaded.model.variables}  # pylint: disable=protected-access
  w, v, u = weights["W"], weights["V"], weights["U"]
  n = int(w.shape[1])
  blocks = (-(-decoded.shape[0] // d)) * (-(-decoded.shape[1] // d))
  batch = 4096  # the export's blocks per model call
  rng = np.random.default_rng(0)
  xs = [tf.constant(rng.uniform(0, 1, (min(batch, blocks - s), w.shape[0])),
                    tf.float32) for s in range(0, blocks, batch)]

  @tf.function
  def products(x):
    s = tf.matmul(x, w)
    acc = tf.zeros([])
    for _ in range(k):
      z = tf.matmul(s, v)
      s = z[:, :n]  # a data dependency, no nonlinearity
      acc += z[0, 0]
    return tf.matmul(s, u), acc

  def all_products():
    for x in xs:
      out = products(x)
    return out[0].numpy()

  def run_refine():
    return model.refine(decoded)

  fns = [run_refine, all_products]
  for fn in fns:
    fn()  # warm-up (tracing)
  ts = [[], []]
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      t = time.perf_counter()
      fn()
      ts[i].append(time.perf_counter() - t)
  print(json.dumps({"refine_warm": statistics.median(ts[0]),
                    "matmuls": statistics.median(ts[1]),
                    "pair_ratio": statistics.median(
                        a / b for a, b in zip(*ts)),
                    "blocks": blocks, "units": n, "K": k}))


def _child(args, env):
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, __file__, *args], env=env,
                        capture_output=True, text=True, check=False)
  wall = time.perf_counter() - start
  if proc.returncode != 0:
    raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=DEFAULT_IMAGE)
  parser.add_argument("--runs", type=int, default=5)
  parser.add_argument("--ratio_repeats", type=int, default=5)
  parser.add_argument("--child", choices=["enhance", "ratio"],
                      help=argparse.SUPPRESS)
  parser.add_argument("--jpg", help=argparse.SUPPRESS)
  parser.add_argument("--out", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child == "enhance":
    return child_enhance(args.jpg, args.out)
  if args.child == "ratio":
    return child_ratio(args.jpg, args.ratio_repeats)

  env = dict(os.environ)
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  with tempfile.TemporaryDirectory() as tmp:
    sys.path.insert(0, _ROOT)
    jpg, source = make_input(args.image, tmp)
    runs = []
    for _ in range(args.runs):
      parts, wall = _child(["--child=enhance", f"--jpg={jpg}",
                            f"--out={tmp}/out"], env)
      if parts["code"] != 0:
        raise SystemExit(f"hbd enhance failed with exit code {parts['code']}")
      parts["wall"] = wall
      parts["rest"] = wall - parts["import"] - parts["load"] - parts["refine"]
      runs.append(parts)
    ratio, _ = _child(["--child=ratio", f"--jpg={jpg}",
                       f"--ratio_repeats={args.ratio_repeats}"], env)
  med = {key: statistics.median(r[key] for r in runs)
         for key in ("wall", "import", "load", "refine", "rest",
                     "max_rss_mb")}
  load_avg = os.getloadavg()[0]
  print(f"hbd enhance, one 768x512 gray JPEG q=20 from {source}; medians of "
        f"{args.runs} fresh processes; {os.cpu_count()} CPUs, load average "
        f"{load_avg:.1f}")
  print(f"  wall        {med['wall']:6.2f} s   (peak RSS "
        f"{med['max_rss_mb']:.0f} MB)")
  for key, label in (("import", "import"), ("load", "model load"),
                     ("refine", "refine"), ("rest", "rest")):
    print(f"  {label:<11} {med[key]:6.2f} s")
  print(f"  warm refine {ratio['refine_warm'] * 1e3:6.0f} ms vs bare matmuls "
        f"{ratio['matmuls'] * 1e3:.0f} ms ({ratio['blocks']} blocks, "
        f"LSTM-{ratio['units']}, K={ratio['K']}): ratio "
        f"{ratio['refine_warm'] / ratio['matmuls']:.2f} (medians), "
        f"{ratio['pair_ratio']:.2f} (median of back-to-back pairs)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
