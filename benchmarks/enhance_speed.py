"""Wall time of `hbd enhance` on one 768 x 512 JPEG, split into its parts.

The input is Kodak's kodim01 (turned to landscape 768 x 512), converted to
gray and saved as a JPEG at quality 20, when /work/shared/data (or --image)
is there; else scikit-image's astronaut, resized to 768 x 512. Each of
--runs runs is a fresh process doing what `hbd enhance IN -o OUT --force
--runtime R` does, timed from outside (interpreter start to exit) and split
inside; both runtimes are measured in the same run, alternating:

* ``tf`` (before): the SavedModel through TensorFlow (`tf_hbd.inference.serving`);
* ``auto`` (after, the default): the shipped decoders' NumPy runtime
  (`tf_hbd.inference.numpy_serving`; TensorFlow is not imported).

Parts:

* import:      ``import tf_hbd.inference.cli`` and the runtime module `enhance` uses
               (tf_hbd.inference.serving, i.e. TensorFlow; or tf_hbd.inference.numpy_serving);
* model load:  `tf_hbd.inference.numpy_serving.load_pretrained("jpeg", runtime)`;
* refine:      the model call on the image (the first call of the process,
               as a user meets it);
* rest:        interpreter start and exit, decoding the JPEG, writing the
               PNG (wall minus the three above).

Then one more process per runtime measures, alternating them, the warm
`refine` call against the bare matrix products the model needs for the
image's blocks, with the shipped model's own weights, at the model's own
precision and with the runtime's own matrix library, in the runtime's
batches (TF: 4096 blocks per call; NumPy: `numpy_serving.CHUNK`):

* the products needed: embedding x @ W once per block, recurrence s @ V
  K - 1 times (s_0 = 0, so the first step's V s_0 is zero and needs no
  product), readout s @ U once; the definition's K recurrent products
  (which the TensorFlow graph runs) are timed too;
* precision: TF with a bfloat16 model (the shipped ones) multiplies
  bfloat16 tensors (`tf_hbd.model.cells.matmul`), so its bare products are
  bfloat16 `tf.matmul`s (the casts, which the model also pays, are
  excluded); NumPy has no bfloat16 product: the runtime multiplies float32
  arrays holding bfloat16 values, so its bare products are the same float32
  BLAS calls (the rounding is excluded).

Besides wall-time ratios the CPU-time ratio (all threads of the process) is
printed: on a loaded machine it is the steadier of the two. The OpenBLAS
kernel NumPy uses is printed (``OPENBLAS_CORETYPE`` picks it when set).

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

import matmul_floor  # this folder's (the script's folder is on sys.path)

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


def child_enhance(jpg, out_dir, runtime):
  """One `hbd enhance` as a user runs it, with its parts timed."""
  t0 = time.perf_counter()
  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import cli
  from tf_hbd.inference import numpy_serving
  if runtime == "tf":
    from tf_hbd.inference import serving  # noqa: F401  (TensorFlow)
  # pylint: enable=g-import-not-at-top
  t_import = time.perf_counter() - t0
  times = {"load": 0.0, "refine": 0.0}
  load = numpy_serving.load_pretrained

  def timed_load(codec, rt="auto"):
    t = time.perf_counter()
    try:
      model = load(codec, rt)
    finally:
      times["load"] += time.perf_counter() - t
    refine = model.refine

    def timed_refine(*args, **kwargs):
      t = time.perf_counter()
      try:
        return refine(*args, **kwargs)
      finally:
        times["refine"] += time.perf_counter() - t

    model.refine = timed_refine
    return model

  numpy_serving.load_pretrained = timed_load
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
                      "tensorflow_imported": "tensorflow" in sys.modules,
                      "max_rss_mb": resource.getrusage(
                          resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return code

  cli.main = reporting_main
  sys.argv = ["hbd", "enhance", jpg, "-o", out_dir, "--force",
              "--runtime", runtime]
  cli.run()  # the console script's own exit path


def _alternate(fns, repeats):
  """Wall times of each fn, alternating; also records CPU times (all
  threads of the process) in _CPU, which a loaded machine disturbs less."""
  for fn in fns:
    fn()  # warm-up (tracing, caches)
  ts = [[] for _ in fns]
  _CPU[:] = [[] for _ in fns]
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      t, c = time.perf_counter(), time.process_time()
      fn()
      ts[i].append(time.perf_counter() - t)
      _CPU[i].append(time.process_time() - c)
  return ts


_CPU = []


def _cpu_ratio(i=0, j=1):
  return statistics.median(_CPU[i]) / statistics.median(_CPU[j])


def child_ratio_tf(jpg, repeats):
  """Warm TF refine vs the bare matrix products in TF, alternating."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import numpy_serving  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import serving  # pylint: disable=g-import-not-at-top
  with open(jpg, "rb") as f:
    decoded = codecs.decode(f.read())
  model = serving.load_pretrained("jpeg")
  meta = model.metadata
  d, k = int(meta["patch_size"]), int(meta["K"])
  weights = {v.name.split("/")[-1].split(":")[0]: v
             for v in model._loaded.model.variables}  # pylint: disable=protected-access
  with open(os.path.join(numpy_serving.pretrained_dir("jpeg"),
                         numpy_serving.RUNTIME_FILE)) as f:
    dtype = tf.as_dtype(json.load(f).get("matmul_dtype") or "float32")
  w, v, u = (tf.cast(weights[name], dtype) for name in ("W", "V", "U"))
  n = int(w.shape[1])
  blocks = (-(-decoded.shape[0] // d)) * (-(-decoded.shape[1] // d))
  batch = 4096  # the export's blocks per model call
  rng = np.random.default_rng(0)
  xs = [tf.cast(rng.uniform(0, 1, (min(batch, blocks - s), w.shape[0])),
                dtype) for s in range(0, blocks, batch)]

  ts = _alternate([lambda: model.refine(decoded, source=jpg),
                   matmul_floor.products(xs, w, v, u, k - 1),
                   matmul_floor.products(xs, w, v, u, k)], repeats)
  print(json.dumps({**_ratios(ts),
                    "precision": dtype.name,
                    "blocks": blocks, "units": n, "K": k}))


def _ratios(ts):
  """Medians of `_alternate`'s times (warm refine, K-1 and K steps of bare
  matrix products) and the refine's ratios to the products."""
  return {"refine_warm": statistics.median(ts[0]),
          "matmuls": statistics.median(ts[1]),
          "matmuls_k": statistics.median(ts[2]),
          "pair_ratio": statistics.median(a / b for a, b in zip(ts[0], ts[1])),
          "pair_ratio_k": statistics.median(
              a / b for a, b in zip(ts[0], ts[2])),
          "cpu_ratio": _cpu_ratio(0, 1),
          "cpu_ratio_k": _cpu_ratio(0, 2)}


def numpy_products(dec, blocks, steps, chunk):
  """A callable running the bare NumPy products of a refine of `blocks`
  blocks by the `numpy_serving._Decoder` `dec` in batches of `chunk`: on
  random inputs, x W, `steps` times s V, s U per batch."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  w, v, u, n = dec.W, dec.w["cell.V"], dec.U, dec.n
  rng = np.random.default_rng(0)
  xs = [rng.uniform(0, 1, (min(chunk, blocks - s), w.shape[0])).astype(
      np.float32) for s in range(0, blocks, chunk)]

  def run():
    for x in xs:
      s = x @ w
      for _ in range(steps):
        s = (s @ v)[:, :n]  # a data dependency, no nonlinearity
      out = s @ u
    return out
  return run


def child_ratio_numpy(jpg, repeats):
  """Warm NumPy refine vs the bare matrix products in NumPy, alternating."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
  from tf_hbd.inference import numpy_serving  # pylint: disable=g-import-not-at-top
  with open(jpg, "rb") as f:
    decoded = codecs.decode(f.read())
  model = numpy_serving.load_pretrained("jpeg", "numpy")
  dec = model._decoder  # pylint: disable=protected-access
  d, k = dec.d, int(model.spec["K"])
  blocks = (-(-decoded.shape[0] // d)) * (-(-decoded.shape[1] // d))
  chunk = numpy_serving.CHUNK
  ts = _alternate([lambda: model.refine(decoded, source=jpg),
                   numpy_products(dec, blocks, k - 1, chunk),
                   numpy_products(dec, blocks, k, chunk)], repeats)
  print(json.dumps({**_ratios(ts),
                    "precision": "float32 (bfloat16 values)"
                                 if dec.bf16 else "float32",
                    "openblas": _openblas_core(np),
                    "blocks": blocks, "units": dec.n, "K": k}))


def _openblas_core(numpy_module):
  """The kernel family NumPy's OpenBLAS chose ("?" when not found)."""
  import ctypes  # pylint: disable=g-import-not-at-top
  import glob  # pylint: disable=g-import-not-at-top
  libs = glob.glob(os.path.join(os.path.dirname(numpy_module.__file__),
                                os.pardir,
                                "numpy.libs", "libopenblas*"))
  for lib in libs:
    for name in ("openblas_get_corename64_", "openblas_get_corename"):
      try:
        fn = getattr(ctypes.CDLL(lib), name)
      except (OSError, AttributeError):
        continue
      fn.restype = ctypes.c_char_p
      return fn().decode()
  return "?"


def _child(args, env):
  start = time.perf_counter()
  proc = subprocess.run([sys.executable, __file__, *args], env=env,
                        capture_output=True, text=True, check=False)
  wall = time.perf_counter() - start
  if proc.returncode != 0:
    raise SystemExit(f"child {args} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1]), wall


RUNTIMES = (("tf", "before: TensorFlow SavedModel"),
            ("auto", "after: NumPy runtime"))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--image", default=DEFAULT_IMAGE)
  parser.add_argument("--runs", type=int, default=5)
  parser.add_argument("--ratio_repeats", type=int, default=5)
  parser.add_argument("--child", choices=["enhance", "ratio_tf",
                                          "ratio_numpy"],
                      help=argparse.SUPPRESS)
  parser.add_argument("--runtime", default="auto", help=argparse.SUPPRESS)
  parser.add_argument("--jpg", help=argparse.SUPPRESS)
  parser.add_argument("--out", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child == "enhance":
    return child_enhance(args.jpg, args.out, args.runtime)
  if args.child == "ratio_tf":
    return child_ratio_tf(args.jpg, args.ratio_repeats)
  if args.child == "ratio_numpy":
    return child_ratio_numpy(args.jpg, args.ratio_repeats)

  env = dict(os.environ)
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  load_start = os.getloadavg()[0]
  runs = {rt: [] for rt, _ in RUNTIMES}
  with tempfile.TemporaryDirectory() as tmp:
    sys.path.insert(0, _ROOT)
    jpg, source = make_input(args.image, tmp)
    for _ in range(args.runs):
      for rt, _ in RUNTIMES:
        parts, wall = _child(["--child=enhance", f"--jpg={jpg}",
                              f"--out={tmp}/out_{rt}", f"--runtime={rt}"],
                             env)
        if parts["code"] != 0:
          raise SystemExit(f"hbd enhance --runtime {rt} failed with exit code "
                           f"{parts['code']}")
        parts["wall"] = wall
        parts["rest"] = (wall - parts["import"] - parts["load"]
                         - parts["refine"])
        runs[rt].append(parts)
    ratio_tf, _ = _child(["--child=ratio_tf", f"--jpg={jpg}",
                          f"--ratio_repeats={args.ratio_repeats}"], env)
    ratio_np, _ = _child(["--child=ratio_numpy", f"--jpg={jpg}",
                          f"--ratio_repeats={args.ratio_repeats}"], env)
  load_end = os.getloadavg()[0]
  print(f"hbd enhance, one 768x512 gray JPEG q=20 from {source}; medians of "
        f"{args.runs} fresh processes per runtime (alternating); "
        f"{os.cpu_count()} CPUs, load average {load_start:.1f} at the start, "
        f"{load_end:.1f} at the end")
  med = {rt: {key: statistics.median(r[key] for r in runs[rt])
              for key in ("wall", "import", "load", "refine", "rest",
                          "max_rss_mb")} for rt, _ in RUNTIMES}
  print(f"  {'':<12}" + "".join(f"{label:>32}" for _, label in RUNTIMES))
  for key, label in (("wall", "wall"), ("import", "import"),
                     ("load", "model load"), ("refine", "refine"),
                     ("rest", "rest")):
    print(f"  {label:<12}" + "".join(f"{med[rt][key]:>30.2f} s"
                                     for rt, _ in RUNTIMES))
  print(f"  {'peak RSS':<12}" + "".join(f"{med[rt]['max_rss_mb']:>29.0f} MB"
                                        for rt, _ in RUNTIMES))
  print(f"  {'TF imported':<12}" + "".join(
      f"{str(any(r['tensorflow_imported'] for r in runs[rt])):>32}"
      for rt, _ in RUNTIMES))
  print(f"  OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
        f": NumPy's OpenBLAS uses the {ratio_np['openblas']} kernels")
  for name, ratio in (("TF", ratio_tf), ("NumPy", ratio_np)):
    print(f"  {name} warm refine {ratio['refine_warm'] * 1e3:.0f} ms vs bare "
          f"{name} {ratio['precision']} matmuls needed (x W, K-1 = "
          f"{ratio['K'] - 1} x s V, s U) {ratio['matmuls'] * 1e3:.0f} ms "
          f"({ratio['blocks']} blocks, LSTM-{ratio['units']}, K={ratio['K']})"
          f": ratio {ratio['refine_warm'] / ratio['matmuls']:.2f} (medians), "
          f"{ratio['pair_ratio']:.2f} (median of back-to-back pairs), "
          f"{ratio['cpu_ratio']:.2f} (CPU time)")
    print(f"    against K = {ratio['K']} recurrent products "
          f"({ratio['matmuls_k'] * 1e3:.0f} ms): ratio "
          f"{ratio['refine_warm'] / ratio['matmuls_k']:.2f} (medians), "
          f"{ratio['pair_ratio_k']:.2f} (pairs), "
          f"{ratio['cpu_ratio_k']:.2f} (CPU time)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
