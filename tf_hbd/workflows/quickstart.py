"""The quick-start main job on the embedded default (scikit-image photos).

Run with ``make quickstart`` (or ``hbd-quickstart``, or
``python -m tf_hbd.workflows.quickstart``). On a fresh machine, with no data
beyond what pip installed, it:

1. builds the sample patch-block TFRecords (`sample_patches/jpeg`, TFDS) from
   the ``train`` split of the photographs that scikit-image ships;
2. trains a small LSTM decoder with BPTT on them for about two minutes
   (``python -m tf_hbd.training``; validation on the ``validation`` split);
3. evaluates it against JPEG at 0.37 bpp on the held-out ``test`` split
   (PSNR / SSIM / MS-SSIM, JSON and a Markdown table);
4. runs ``hbd enhance`` on one held-out JPEG with the trained model;

and prints where everything is. Outputs go to ``quickstart_out/`` (override
with ``--out``). A rerun resumes or reuses what is already there. Ctrl-C (or
SIGTERM) during training: the training run saves a checkpoint at its batch,
then the quick start exits 130 with one line (`tf_hbd.workflows.children`,
`tf_hbd.errors.exit_on_interrupt`).
"""

import os
import sys
import time

from tf_hbd import arguments  # the standard library only

RESUME_HINT = ("rerun the same command to resume: training continues from "
               "its last checkpoint")


def _step(n, text):
  print(f"\n== {n}. {text}", flush=True)


def main(argv=None):
  p = arguments.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", default="quickstart_out", help="output folder")
  p.add_argument("--minutes", type=float, default=2.0,
                 help="training budget in minutes (approximate)")
  p.add_argument("--units", type=int, default=128, help="LSTM state size")
  p.add_argument("--verbose", action="store_true",
                 help="show TensorFlow's own log lines")
  args = p.parse_args(argv)
  from tf_hbd import errors  # pylint: disable=g-import-not-at-top
  from tf_hbd import quiet  # pylint: disable=g-import-not-at-top
  quiet.quiet_tensorflow(args.verbose)  # before TensorFlow is imported
  return errors.exit_on_interrupt(lambda: _job(args), "quickstart",
                                  RESUME_HINT)


def _job(args):
  """The four steps; 0 when done."""
  out = os.path.abspath(args.out)
  os.makedirs(out, exist_ok=True)
  t0 = time.time()

  from tf_hbd.inference import cli  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
  from tf_hbd.data import pipelines as data  # pylint: disable=g-import-not-at-top
  from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import study  # pylint: disable=g-import-not-at-top
  from tf_hbd.workflows import children  # pylint: disable=g-import-not-at-top

  _step(1, "Building the sample patch-block TFRecords (sample_patches/jpeg)")
  data_dir = os.path.join(out, "tensorflow_datasets")
  builder = data.sample_dataset("jpeg", data_dir=data_dir)
  size = data.dataset_size(builder, "train")
  print(f"   {size['blocks']} training blocks, {size['bytes_per_block']:.0f} "
        f"bytes/block in {builder.data_dir}")

  _step(2, f"Training an LSTM-{args.units} decoder with BPTT "
        f"(~{args.minutes:g} min)")
  model_dir = os.path.join(out, "model")
  # ~25 batches/s of 128 blocks for LSTM-128 on 2 cores, 10 epochs.
  steps = max(20, int(args.minutes * 60 * 20 / 10))
  cmd = [sys.executable, "-m", "tf_hbd.training",
         "--algo=bptt", "--cell=lstm", f"--units={args.units}", "--K=4",
         "--codec=jpeg", "--dataset=sample_patches/jpeg",
         f"--data_dir={data_dir}", "--batch_size=128", "--optimizer=adam",
         "--lr=1e-3", "--epochs=10", f"--steps_per_epoch={steps}",
         "--val_max_images=2", "--val_bpp=0.37", f"--log_every={steps}",
         f"--model_dir={model_dir}"] + (["--verbose"] if args.verbose else [])
  print("   " + " ".join(cmd[1:]), flush=True)
  code = children.run(cmd)  # Ctrl-C: it checkpoints, then ChildStopped
  if code != 0:  # the training run said why on stderr
    raise SystemExit(code)

  _step(3, "Evaluating against JPEG at 0.37 bpp on the held-out photos")
  results = os.path.join(out, "results")
  study.run([study.parse_dataset("sample_test=sample:test")], results,
            systems=("jpeg",), decoders=[model_dir])

  _step(4, "hbd enhance on a held-out JPEG")
  photo = sample_images.load_sample(sample_images.sample_names("test")[1])
  enc = codecs.encode(photo, "jpeg", bpp=0.37)
  jpg = os.path.join(out, "camera_0.37bpp.jpg")
  with open(jpg, "wb") as f:
    f.write(enc.data)
  enhanced = os.path.join(out, "enhanced")
  code = cli.main(["enhance", jpg, "-o", enhanced, "--force", "--model",
                   os.path.join(model_dir, "serving")]
                  + (["--verbose"] if args.verbose else []))
  if code != 0:
    raise SystemExit(code)

  print(f"\nDone in {(time.time() - t0) / 60:.1f} min. Outputs:")
  print(f"   model (checkpoints, log.json, TensorBoard, serving export): "
        f"{model_dir}")
  print(f"   results table: {os.path.join(results, 'table3.md')}")
  print(f"   input JPEG: {jpg}")
  print(f"   enhanced:   {enhanced}/")
  with open(os.path.join(results, "table3.md")) as f:
    print("\n" + f.read())
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
