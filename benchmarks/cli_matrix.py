"""Issue 16's matrix: every bad-input and fault row, run as a user runs it.

  nice -n 15 python benchmarks/cli_matrix.py [--quick] [--only TEXT] [--keep]

Every row is one command line in its own process (``hbd`` = ``python -m
tf_hbd``, ``train.py`` = ``scripts/train.py``, ``hbd-evaluate`` = ``python
-m tf_hbd.evaluation``, ``hbd-quickstart`` = ``python -m
tf_hbd.workflows.quickstart``, ``hbd-train`` = the console script beside this
Python, ``tfds build``, ``golden.py`` = ``scripts/golden.py``), in a
temporary folder ($T in the table), on tiny
inputs made here; the package imported is this checkout's (PYTHONPATH).
Training rows use a tiny configuration ($TINY below; a few seconds each), so
the whole matrix takes a few minutes (--quick leaves out the quick start and
the Places365 build, about a minute and a half of it).

It prints a Markdown table: the row of the issue, the command, the exit code
(and the documented one), the first line of stderr (or, where the row's
message goes to stdout, that line, marked "stdout:") and what else was
checked (inputs unchanged, output orientation, alpha, permissions, quiet
stderr, ...). Exit 1 when any row's exit code or check differs from the
documented behaviour. BUILD.md's section "Everyday use under bad input
(issue 16 matrix)" is this script's output.
"""

import argparse
import dataclasses
import glob
import io
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from typing import Callable, List, Optional

import numpy as np
from PIL import Image
from PIL import ImageOps

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)
from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top,wrong-import-position

TINY = ["--units=4", "--K=2", "--batch_size=32", "--train_limit=1",
        "--train_max_side=96", "--val_max_side=64", "--steps_per_epoch=4",
        "--epochs=2", "--log_every=2", "--optimizer=momentum", "--lr=0.01",
        "--export=false", "--checkpoint_every=2"]
_PROGRAMS = {
    "hbd": [sys.executable, "-m", "tf_hbd"],
    "train.py": [sys.executable, os.path.join(_ROOT, "scripts", "train.py")],
    "hbd-evaluate": [sys.executable, "-m", "tf_hbd.evaluation"],
    "hbd-quickstart": [sys.executable, "-m", "tf_hbd.workflows.quickstart"],
    "hbd-train": [os.path.join(os.path.dirname(sys.executable), "hbd-train")],
    "tfds": [os.path.join(os.path.dirname(sys.executable), "tfds")],
    "golden.py": [sys.executable, os.path.join(_ROOT, "scripts",
                                               "golden.py")],
}


@dataclasses.dataclass
class Result:
  code: int
  stdout: str
  stderr: str
  seconds: float


@dataclasses.dataclass
class Row:
  """One row: the issue's case, the command, the documented exit code, an
  optional check of the result ('' when fine, else what is wrong, plus a
  note), and the regex of the stdout line to show when stderr is empty."""
  case: str
  command: List[str]
  expected: int
  check: Optional[Callable[[Result], str]] = None
  show: str = ""
  interrupt: str = ""  # "" | "at:<seconds>" | "on:<stdout text>"
  umask: Optional[int] = None
  slow: bool = False
  prepare: Optional[Callable[[], None]] = None
  stderr_line: str = ""  # regex of the stderr line to show (not the first)


def _env():
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # each command is quiet by itself
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _start(argv, umask):
  def child():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a terminal sends it
    if umask is not None:
      os.umask(umask)
  program, args = argv[0], []
  for a in argv[1:]:  # a shell's glob
    args += sorted(glob.glob(a)) if "*" in a else [a]
  return subprocess.Popen(_PROGRAMS[program] + args, env=_env(), cwd=_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, preexec_fn=child)


def run(row: Row) -> Result:
  """Runs `row`'s command (Ctrl-C as the row says); its result."""
  if row.prepare:
    row.prepare()
  t0 = time.time()
  child = _start(row.command, row.umask)
  head = ""
  if row.interrupt.startswith("at:"):
    time.sleep(float(row.interrupt[3:]))
    child.send_signal(signal.SIGINT)
  elif row.interrupt.startswith("on:"):
    for line in child.stdout:
      head += line
      if row.interrupt[3:] in line:
        child.send_signal(signal.SIGINT)
        break
  out, err = child.communicate(timeout=900)
  return Result(child.returncode, head + out, err, time.time() - t0)


# ------------------------------------------------------------------ inputs

def _jpeg(array, quality=20, **kwargs) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(array).save(buf, format="JPEG", quality=quality, **kwargs)
  return buf.getvalue()


def _write(path, data: bytes) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(data)
  return path


def _claiming(gray, width, height) -> bytes:
  """A small real JPEG whose frame header claims width x height."""
  data = bytearray(_jpeg(gray[:16, :16]))
  sof = data.index(b"\xff\xc0")
  data[sof + 5:sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
  return bytes(data)


def make_inputs(t: str) -> None:
  """The tiny files of every row, under `t`."""
  gray = sample_images.load_sample("camera")
  small = _jpeg(gray[:48, :64])
  for name in ("x.jpg", "a/x.jpg", "b/x.jpg", "d/photo.png", "imgs/x.jpg",
               "eval/x.png"):
    _write(os.path.join(t, name), small)
  Image.fromarray(gray[:64, :96]).save(os.path.join(t, "eval", "x.png"))
  _write(os.path.join(t, "big.jpg"), _claiming(gray, 12000, 12000))
  _write(os.path.join(t, "huge.jpg"), _claiming(gray, 60000, 60000))
  exif = Image.Exif()
  exif[0x0112] = 6  # stored landscape, shown turned 90 degrees clockwise
  _write(os.path.join(t, "rotated.jpg"), _jpeg(gray[:48, :80], exif=exif))
  rgb = np.asarray(Image.open(sample_images.sample_path("astronaut")).convert(
      "RGB"))[:64, :64]
  alpha = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4,
                  (64, 1, 1))
  Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA").save(
      os.path.join(t, "alpha.jp2"), quality_mode="rates",
      quality_layers=[20])
  full = _jpeg(gray[:256, :256])
  _write(os.path.join(t, "truncated.jpg"), full[:len(full) // 2])
  corrupt = bytearray(full)
  sos = corrupt.index(b"\xff\xda")
  corrupt[sos + 2:sos + 4] = b"\x00\x01"  # an impossible scan header
  _write(os.path.join(t, "corrupt.jpg"), bytes(corrupt))
  _write(os.path.join(t, "a_file"), b"x")
  _write(os.path.join(t, "noimages", "notes.txt"), b"no images here\n")
  for i in range(200):  # far more work than a Ctrl-C takes to arrive
    _write(os.path.join(t, "many", f"img{i:03d}.jpg"), full)
  for folder in ("good", "bad"):
    _write(os.path.join(t, folder, "text.png"), b"not an image\n")
    _write(os.path.join(t, folder, "cut.jpg"), full[:300])
  Image.fromarray(gray[:96, :96]).save(os.path.join(t, "good", "photo.png"))


# ------------------------------------------------------------------ checks

def _unchanged(path):
  """A check: `path` still holds what it held when the check was made."""
  with open(path, "rb") as f:
    before = f.read()

  def check(_):
    with open(path, "rb") as f:
      return ("input unchanged" if f.read() == before else
              f"FAIL: {path} changed")
  return check


def _absent(path):
  """A check: no file written under `path` (an empty folder may exist)."""
  def check(_):
    files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
    return f"FAIL: {files[0]} written" if files else "nothing written"
  return check


def _quiet(r: Result) -> str:
  return "stderr empty" if not r.stderr.strip() else "FAIL: stderr not empty"


def _complete_pngs(folder):
  """A check: every file in `folder` is a whole PNG (no partial output)."""
  def check(_):
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in names:
      try:
        with Image.open(os.path.join(folder, name)) as img:
          img.load()
      except OSError:
        return f"FAIL: {name} is not a whole image"
    return f"{len(names)} whole PNGs of 200, no partial file"
  return check


def _exif_check(t):
  def check(_):
    shown = ImageOps.exif_transpose(Image.open(os.path.join(t, "rotated.jpg")))
    out = Image.open(os.path.join(t, "o_exif", "rotated.png"))
    if out.size != shown.size or out.getexif().get(0x0112):
      return f"FAIL: output {out.size}, shown {shown.size}"
    return f"output {out.size[0]}x{out.size[1]} as shown (stored 80x48)"
  return check


def _alpha_check(t):
  def check(_):
    out = Image.open(os.path.join(t, "o_alpha", "alpha.png"))
    alpha = np.asarray(Image.open(os.path.join(t, "alpha.jp2")).getchannel(
        "A"))
    if out.mode != "RGBA" or not np.array_equal(
        np.asarray(out.getchannel("A")), alpha):
      return f"FAIL: output mode {out.mode}"
    return "RGBA output, alpha equal to the input's"
  return check


def _mode_check(path, want):
  def check(_):
    mode = stat.S_IMODE(os.stat(path).st_mode)
    return (f"mode {mode:04o} under umask 022" if mode == want else
            f"FAIL: mode {mode:04o}, want {want:04o}")
  return check


def _all(*checks):
  def check(r):
    notes = [c(r) for c in checks]
    fails = [n for n in notes if n.startswith("FAIL")]
    return "; ".join(fails) if fails else "; ".join(n for n in notes if n)
  return check


def _stdout_has(*texts):
  def check(r):
    missing = [x for x in texts if x not in r.stdout]
    return f"FAIL: stdout lacks {missing[0]!r}" if missing else ""
  return check


def _one_stderr_line(r: Result) -> str:
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  return ("one line on stderr" if len(lines) == 1 else
          f"FAIL: {len(lines)} lines on stderr")


def _no_stdout_warning(r: Result) -> str:
  return ("FAIL: a warning on stdout" if "warning" in r.stdout else
          "warnings on stderr")


def _set_aside(ckpt, suffix):
  """A check: the damaged ckpt-8 file was renamed ``.damaged`` (kept as
  it was: 20 bytes), and a new intact ckpt-8 written beside it."""
  def check(_):
    damaged = os.path.join(ckpt, "ckpt-8" + suffix + ".damaged")
    if not os.path.exists(damaged) or os.path.getsize(damaged) != 20:
      return f"FAIL: no 20-byte {damaged}"
    if os.path.getsize(os.path.join(ckpt, "ckpt-8" + suffix)) <= 20:
      return "FAIL: no new ckpt-8"
    return f"damaged file kept as ckpt-8{suffix}.damaged, new ckpt-8 written"
  return check


def _stderr_count(text, want, note):
  def check(r):
    n = r.stderr.count(text)
    return note if n == want else f"FAIL: {text!r} {n} times, want {want}"
  return check


# ------------------------------------------------------------------ rows

def _damage(t, name, how):
  """A prepare step: $T/<name> = a copy of the tiny run, damaged `how`."""
  def prepare():
    run_dir = os.path.join(t, name)
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(os.path.join(t, "run"), run_dir)
    ckpt = os.path.join(run_dir, "checkpoints")
    if how in ("empty", "garbled"):
      with open(os.path.join(ckpt, "checkpoint"), "w") as f:
        f.write("" if how == "empty" else "{{ garbage \x01")
    else:  # truncate the newest checkpoint's data or index file
      suffix = ".index" if how == "index" else ".data-00000-of-00001"
      with open(os.path.join(ckpt, "ckpt-8" + suffix), "r+b") as f:
        f.truncate(20)
  return prepare


def training_rows(t) -> List[Row]:
  """Issue rows 1 and 5 (train.py), 6 (its noise)."""
  train = lambda *a: ["train.py", *a]
  rows = [Row("6 tiny training run: quiet by default",
              train(f"--model_dir={t}/run", *TINY), 0, _quiet,
              show=r"^finished")]
  for how, resumed in (("empty", 8), ("garbled", 8), ("data", 6),
                       ("index", 6)):
    what = {"empty": "empty checkpoint state file",
            "garbled": "garbled checkpoint state file",
            "data": "truncated newest checkpoint data file",
            "index": "truncated newest checkpoint index file"}[how]
    checks = [_stdout_has(f"at batch {resumed}"),
              lambda r: "" if "from batch 0" not in r.stdout else
              "FAIL: started from batch 0",
              lambda r, n=resumed: f"resumed at batch {n}",
              _no_stdout_warning]
    if how in ("data", "index"):
      checks.append(_set_aside(f"{t}/{how}/checkpoints", {
          "data": ".data-00000-of-00001", "index": ".index"}[how]))
    rows.append(Row(
        f"1 {what}", train(f"--model_dir={t}/{how}", *TINY, "--epochs=3"), 0,
        _all(*checks), show=r"^(warning|falling back)",
        prepare=_damage(t, how, how)))
  for flag in ("--units=0", "--K=0", "--batch_size=0", "--model_dir=",
               "--dataset=folder:/no/such/dir", f"--dataset={t}/imgs",
               "--dataset=/no/such/dir", "--no_such_flag=1",
               "--units=abc"):
    rows.append(Row("5 train.py bad flag", train(f"--model_dir={t}/f",
                                                  flag), 2,
                    _absent(f"{t}/f")))
  rows += [
      Row("5 one corrupt image among good ones", train(
          f"--model_dir={t}/g", f"--dataset=folder:{t}/good", *TINY,
          "--train_limit=0", "--epochs=1"), 0),
      Row("5 every training image corrupt", train(
          f"--model_dir={t}/h", f"--dataset=folder:{t}/bad", *TINY,
          "--train_limit=0"), 1),
      Row("5 Ctrl-C while train.py starts", train(f"--model_dir={t}/i"), 130,
          interrupt="at:0.5"),
      Row("5 Ctrl-C while training", train(
          f"--model_dir={t}/j", *TINY, "--steps_per_epoch=100000",
          "--log_every=1"), 130, interrupt="on:step 2/100000"),
      Row("5 Ctrl-C while hbd-train starts", ["hbd-train",
                                             f"--model_dir={t}/k"], 130,
          interrupt="at:0.5"),
      Row("5 hbd-train unknown flag", ["hbd-train", "--bogus"], 2),
  ]
  return rows


def hbd_rows(t) -> List[Row]:
  """Issue rows 2-5 of `hbd`, and 6 (its noise)."""
  o = f"{t}/out"
  return [
      Row("2 two inputs, one output name", ["hbd", "enhance", f"{t}/a/x.jpg",
                                            f"{t}/b/x.jpg", "-o", o,
                                            "--force"], 2, _absent(o)),
      Row("2 output would overwrite its input (JPEG named .png)",
          ["hbd", "enhance", f"{t}/d/photo.png", "-o", f"{t}/d", "--force"],
          2, _unchanged(f"{t}/d/photo.png")),
      Row("3 header claims 12000x12000", ["hbd", "enhance", f"{t}/big.jpg",
                                          "-o", o], 1,
          lambda r: f"refused in {r.seconds:.1f} s (process)"),
      Row("3 hbd info, header claims 60000x60000", ["hbd", "info",
                                                    f"{t}/huge.jpg"], 1),
      Row("4 EXIF orientation 6", ["hbd", "enhance", f"{t}/rotated.jpg", "-o",
                                   f"{t}/o_exif"], 0, _exif_check(t),
          show=r"^\["),
      Row("4 RGBA JPEG 2000", ["hbd", "enhance", f"{t}/alpha.jp2", "-o",
                               f"{t}/o_alpha"], 0, _alpha_check(t),
          show=r"^\["),
      Row("4 output permissions", ["hbd", "enhance", f"{t}/x.jpg", "-o",
                                   f"{t}/o_mode"], 0,
          _mode_check(f"{t}/o_mode/x.png", 0o644), show=r"^\[", umask=0o022),
      Row("4 --model trained for the other codec", [
          "hbd", "enhance", f"{t}/x.jpg", "-o", o, "--model",
          os.path.join(_ROOT, "tf_hbd", "pretrained", "hbd-lstm-jp2")], 1,
          _absent(o)),
      Row("5 -o is a file", ["hbd", "enhance", f"{t}/x.jpg", "-o",
                             f"{t}/a_file"], 2),
      Row("5 -o is empty", ["hbd", "enhance", f"{t}/x.jpg", "-o", ""], 2),
      Row("5 -o cannot be created", ["hbd", "enhance", f"{t}/x.jpg", "-o",
                                     "/proc/hbd_out"], 2),
      Row("5 hbd info, truncated file", ["hbd", "info",
                                         f"{t}/truncated.jpg"], 1),
      Row("5 hbd info, corrupt file", ["hbd", "info", f"{t}/corrupt.jpg"], 1),
      Row("5 directory as input", ["hbd", "enhance", f"{t}/a", "-o", o], 1),
      Row("5 --K 1000", ["hbd", "enhance", f"{t}/x.jpg", "-o", o, "--K",
                         "1000"], 2),
      Row("5 hbd unknown argument", ["hbd", "enhance", f"{t}/x.jpg", "-o", o,
                                     "--bogus"], 2,
          _all(_one_stderr_line, _absent(o))),
      Row("5 hbd bad argument value", ["hbd", "enhance", f"{t}/x.jpg", "-o",
                                       o, "--shifts", "3"], 2,
          _one_stderr_line),
      Row("5 Ctrl-C during hbd enhance", ["hbd", "enhance",
                                          f"{t}/many/*.jpg", "-o",
                                          f"{t}/o_many"], 130,
          _complete_pngs(f"{t}/o_many"), interrupt="on:[1/"),
      Row("6 hbd enhance (TensorFlow runtime): quiet", [
          "hbd", "enhance", f"{t}/x.jpg", "-o", f"{t}/o_tf", "--runtime",
          "tf"], 0, _quiet, show=r"^\["),
      Row("6 the same with --verbose", [
          "hbd", "enhance", f"{t}/x.jpg", "-o", f"{t}/o_tfv", "--runtime",
          "tf", "--verbose"], 0,
          lambda r: "TensorFlow's log lines shown" if "tensorflow/" in
          r.stderr else "FAIL: no TensorFlow log line"),
  ]


def other_rows(t) -> List[Row]:
  """hbd-evaluate, the quick start and the Places365 build."""
  return [
      Row("6 hbd-evaluate: quiet", ["hbd-evaluate", f"--datasets={t}/eval",
                                    "--systems=jpeg",
                                    f"--out_dir={t}/o_eval"], 0, _quiet,
          show=r"^wrote"),
      Row("5 Ctrl-C while hbd-evaluate starts", [
          "hbd-evaluate", f"--datasets={t}/eval", f"--out_dir={t}/o_ev2"],
          130, interrupt="at:0.5"),
      Row("5 hbd-evaluate bad flag value", ["hbd-evaluate",
                                            f"--datasets={t}/eval",
                                            "--max_images=x"], 2),
      Row("5 hbd-quickstart bad argument value", [
          "hbd-quickstart", f"--out={t}/o_qbad", "--minutes=x"], 2,
          _all(_one_stderr_line, _absent(f"{t}/o_qbad"))),
      Row("5 scripts/golden.py unknown argument", ["golden.py", "--bogus"],
          2, _one_stderr_line),
      Row("5 folder_patches build, --manual_dir missing", [
          "tfds", "build", os.path.join(_ROOT, "data_builders",
                                        "folder_patches"), "--config",
          "jpeg", "--manual_dir", f"{t}/nowhere", "--data_dir",
          f"{t}/tfds_f"], 1,
          _all(_stderr_count(f"{t}/nowhere: the --manual_dir folder does not "
                             "exist or is empty", 1, "folder named once"),
               lambda r: "FAIL: chained" if "During handling" in r.stderr
               else "no chained traceback"),
          stderr_line=r"^tf_hbd\S*ManualDataError:"),
      Row("5 folder_patches build, a folder without images", [
          "tfds", "build", os.path.join(_ROOT, "data_builders",
                                        "folder_patches"), "--config",
          "jpeg", "--manual_dir", f"{t}/noimages", "--data_dir",
          f"{t}/tfds_n"], 1,
          _stderr_count(f"{t}/noimages: no image files", 1,
                        "folder named once"),
          stderr_line=r"^tf_hbd\S*ManualDataError:"),
      Row("6 hbd-quickstart (tiny): quiet", [
          "hbd-quickstart", f"--out={t}/o_quick", "--minutes=0",
          "--units=8"], 0,
          _all(_quiet, lambda r: "FAIL: TFDS lines" if "Downloading and "
               "preparing" in r.stdout else "no TFDS lines"),
          show=r"^Done in", slow=True),
      Row("5 Places365 build without its manual data", [
          "tfds", "build", os.path.join(_ROOT, "data_builders",
                                        "places_patches"), "--config", "jpeg",
          "--manual_dir", f"{t}/nowhere", "--data_dir", f"{t}/tfds"], 1,
          _all(_stderr_count("MANUAL_DIR/places365/val_large.tar", 1,
                             "instructions printed once"),
               lambda r: "FAIL: chained" if "During handling" in r.stderr
               else "no chained traceback"),
          stderr_line=r"^tf_hbd\S*ManualDataError:", slow=True),
  ]


# ------------------------------------------------------------------ table

def message(row: Row, r: Result) -> str:
  """The row's message: the first stderr line (or the one `stderr_line`
  picks), else the stdout line `show` picks, marked "stdout:"."""
  err = [l for l in r.stderr.splitlines() if l.strip()]
  if row.stderr_line:
    picked = [l for l in err if re.search(row.stderr_line, l)]
    if picked:
      return f"(line {err.index(picked[0]) + 1} of {len(err)}) {picked[0]}"
  if err:
    return err[0]
  picked = [l for l in r.stdout.splitlines() if row.show and
            re.search(row.show, l)]
  return f"stdout: {picked[0]}" if picked else ""


def _cell(text: str, t: str, limit: int = 240) -> str:
  text = text.replace(t, "$T").replace(_ROOT + "/", "").replace(_ROOT, ".")
  text = text.replace(" ".join(TINY), "$TINY").replace("|", "\\|")
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _command(row: Row) -> str:
  args = [a if a else "''" for a in row.command]
  extra = {"at:": " (Ctrl-C after {} s)", "on:": " (Ctrl-C on '{}')"}
  tail = ""
  for key, form in extra.items():
    if row.interrupt.startswith(key):
      tail = form.format(row.interrupt[3:])
  return " ".join(args) + tail


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  p.add_argument("--quick", action="store_true",
                 help="leave out the quick start and the Places365 build")
  p.add_argument("--only", default="", help="rows whose case contains this")
  p.add_argument("--keep", action="store_true", help="keep the temp folder")
  args = p.parse_args(argv)
  t = tempfile.mkdtemp(prefix="hbd_matrix_")
  make_inputs(t)
  rows = [r for r in training_rows(t) + hbd_rows(t) + other_rows(t)
          if args.only in r.case and not (args.quick and r.slow)]
  lines, failed, t0 = [], 0, time.time()
  for i, row in enumerate(rows, 1):
    r = run(row)
    note = row.check(r) if row.check else ""
    bad = r.code != row.expected or note.startswith("FAIL")
    failed += bad
    code = f"{r.code}" + ("" if r.code == row.expected else
                          f" (documented: {row.expected})")
    lines.append(f"| {row.case} | `{_cell(_command(row), t)}` | {code} | "
                 f"{_cell(message(row, r), t)} | {_cell(note, t)} |")
    print(f"[{i}/{len(rows)}] {'FAIL' if bad else 'ok'} {row.case} "
          f"({r.seconds:.1f} s)", file=sys.stderr, flush=True)
  print(f"$TINY = `{' '.join(TINY)}`; $T = a temporary folder; issue 16's "
        f"row numbers. {len(rows)} rows, {len(rows) - failed} as documented, "
        f"{time.time() - t0:.0f} s.\n")
  print("| row | command | exit | first line of stderr | checked |")
  print("|---|---|---|---|---|")
  print("\n".join(lines))
  if not args.keep:
    shutil.rmtree(t, ignore_errors=True)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
