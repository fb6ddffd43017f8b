"""Where a study run's evaluation time goes, and the evaluation before / after.

  nice -n 19 python benchmarks/study_eval_profile.py \\
      --model_dir=runs/study10k/size/lstm-jpeg-bptt-seed0 --images=1 \\
      [--record=results/study10k/runs/size/lstm-jpeg-bptt-seed0/record.json]

On the first `--images` test images of the study's size tier (Kodak, 0.37
bpp, K sweep, RD rates), with the run's decoder (loaded once; its load time
is printed):

1. ``split``: seconds per call of each part of the evaluation on the first
   image (codec round trip with its rate search, refinement, PSNR, SSIM and
   MS-SSIM by `tf.image` (`tf_ssim`, `tf_ms_ssim`: before) and by
   `tf_hbd.evaluation.metrics` (after)), the calls of each per image before
   and after, and what SSIM's time is made of: one of the four 11 x 11
   `tf.nn.depthwise_conv2d` calls `tf.image.ssim` makes on a one-channel
   image (timed alone), the same convolution of the four maps stacked as
   channels (what `metrics.ssim` does), the per-call overhead (SSIM of a
   16 x 16 pair), SSIM compiled once as a `tf.function`, and
   `tf.nn.conv2d` with the same filter (faster, but not the same bits).
2. ``before`` / ``cold`` / ``warm``:
   `tf_hbd.workflows.study_runner.evaluate_decoder` scoring every row with
   all three metrics and no cache (the evaluation up to 35b339d), then with
   the metric subsets and an empty metric cache (the study's first run of a
   codec), then again on the filled cache (every
   later run: the decoder's rows computed, the codec's read). Prints the
   wall time of each and whether the three ``test`` sections are identical
   (``--skip=before``: cold and warm only).
3. ``codec_cache``: a later run of the study (the metric cache filled by
   a first run) without a codec cache (the evaluation up to fb03724: every
   run codes the test images again, JPEG 2000's rate search included) and
   with a filled `tf_hbd.evaluation.codec_cache.RoundTripCache`; then the
   codec round trips alone (every image at the test rate and the RD rates)
   coded and read from that cache. Prints the wall times and whether the
   ``test`` sections are identical.
4. With ``--record``: whether the numbers equal that record's for these
   images (a re-evaluation of a committed run).

``--stand_in=jpeg|jp2`` replaces the trained decoder by a 2-pixel blur of
the codec's output (no model needed, refinement nearly free): what remains
is the codec's and the metrics' part of a run's evaluation.

Every time is wall time on a shared machine: run it at the load you report.
"""

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time

from tf_hbd import quiet


def _timed(fn, repeats=2):
  """(median seconds, last result) of `repeats` calls."""
  times, out = [], None
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times), out


def _calls_per_image(tier, trained_k):
  """{phase: {metric function: calls}} per image of one run (decoder and
  codec rows; the warm cache leaves the decoder's)."""
  others = len([k for k in tier.k_sweep if k != trained_k])
  rd = len(tier.rd_bpps)
  rows = 2 + others + 2 * rd
  return {
      "before": {"psnr": rows, "tf_ssim": rows, "tf_ms_ssim": rows},
      "after, cold cache": {"psnr": 2 + others + 2 * rd,
                            "ssim_and_ms_ssim": 2, "ms_ssim": 2 * rd},
      "after, warm cache": {"psnr": 1 + others + rd, "ssim_and_ms_ssim": 1,
                            "ms_ssim": rd}}


def _ssim_parts(a, b, repeats):
  """What one SSIM call of `a`, `b` (uint8, H x W) spends its time on."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
  x = tf.constant(a[None, :, :, None], tf.float32)
  g = np.exp(-((np.arange(11) - 5) ** 2) / 4.5)  # sigma 1.5
  kernel = tf.constant((np.outer(g, g) / g.sum() ** 2)[:, :, None, None],
                       tf.float32)
  dw, out_dw = _timed(lambda: tf.nn.depthwise_conv2d(
      x, kernel, [1, 1, 1, 1], "VALID").numpy(), repeats)
  x4 = tf.concat([x] * 4, axis=-1)
  dw4, out_dw4 = _timed(lambda: tf.nn.depthwise_conv2d(
      x4, tf.tile(kernel, [1, 1, 4, 1]), [1, 1, 1, 1], "VALID").numpy(),
                        repeats)
  cv, out_cv = _timed(lambda: tf.nn.conv2d(x, kernel, 1, "VALID").numpy(),
                      repeats)
  small, _ = _timed(lambda: metrics.tf_ssim(a[:16, :16], b[:16, :16]),
                    repeats)
  fa, fb = (tf.constant(v[None, :, :, None], tf.float32) for v in (a, b))
  graph = tf.function(lambda p, q: tf.image.ssim(p, q, max_val=255.0))
  graph(fa, fb)  # trace once
  gs, g_val = _timed(lambda: float(graph(fa, fb)[0]), repeats)
  return {
      "one-channel depthwise_conv2d 11x11 (x4 in SSIM)": dw,
      "4 channels stacked, one depthwise_conv2d": dw4,
      "  each channel == the one-channel result": all(
          np.array_equal(out_dw4[..., i], out_dw[..., 0]) for i in range(4)),
      "the same filter by conv2d": cv,
      "  conv2d max |difference| (not the same bits)": float(
          np.abs(out_dw - out_cv).max()),
      "tf.image.ssim of a 16 x 16 pair (overhead)": small,
      "tf.image.ssim traced once as a tf.function": gs,
      "  tf.function value == eager value": g_val == metrics.tf_ssim(a, b)}


def split(dec, tier, imgs, repeats=2):
  """Prints the per-call times of the evaluation's parts on imgs[0]."""
  from tf_hbd.codecs import legacy  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
  img = imgs[0].gray
  print(f"split on {imgs[0].name} {img.shape} ({repeats} calls each, "
        "median):")
  times = {}
  for codec in ("jpeg", "jp2"):
    times[f"codec {codec} round trip + rate search"], _ = _timed(
        lambda c=codec: legacy.roundtrip(img, c, bpp=tier.test_bpp), repeats)
  decoded, enc = legacy.roundtrip(img, dec.codec, bpp=tier.test_bpp)
  dec.refine(decoded, encoded=enc)  # first call: the signature's warm-up
  times[f"refine K={dec.K}"], out = _timed(
      lambda: dec.refine(decoded, encoded=enc), repeats)
  for name in ("psnr", "tf_ssim", "tf_ms_ssim", "ssim", "ms_ssim",
               "ssim_and_ms_ssim"):
    fn = getattr(metrics, name)
    times[name], _ = _timed(lambda f=fn: f(img, out), repeats)
  for k, v in times.items():
    print(f"  {k:<45} {v:8.3f} s")
  for k, v in _ssim_parts(img, out, repeats).items():
    print(f"  {k:<45} " + (f"{v:8.3f} s" if isinstance(v, float) and
                            "difference" not in k else f"{v}"))
  print("metric calls per image of one run, and their seconds at these "
        "per-call times:")
  for phase, calls in _calls_per_image(tier, dec.K).items():
    secs = sum(n * times[m] for m, n in calls.items())
    print(f"  {phase:<18} " + ", ".join(f"{m} {n}" for m, n in
                                          calls.items()) + f": {secs:.1f} s")
  return times


def before_after(dec, tier, spec, imgs, before=True):
  """Times the three evaluations (`before`: False skips the first); returns
  their ``test`` sections and whether they are identical."""
  from tf_hbd.workflows import study_runner  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metric_cache  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
  out = {}
  if before:
    t0 = time.perf_counter()
    out["before"] = study_runner.evaluate_decoder(
        dec, tier, spec, imgs, every_metric=metrics.tf_metrics)
    print(f"before: {time.perf_counter() - t0:.1f} s for {len(imgs)} "
          "images (all three metrics on every row)", flush=True)
  with tempfile.TemporaryDirectory() as d:
    for how in ("cold", "warm"):
      cache = metric_cache.MetricCache(d)
      t0 = time.perf_counter()
      out[how] = study_runner.evaluate_decoder(dec, tier, spec, imgs,
                                               metric_cache=cache)
      print(f"{how}: {time.perf_counter() - t0:.1f} s for {len(imgs)} "
            f"images (codec metrics: {dict(cache.hits)} cached, "
            f"{dict(cache.computed)} computed)", flush=True)
  same = len({json.dumps(v) for v in out.values()}) == 1
  print(f"identical test sections ({' / '.join(out)}): {same}")
  return out, same


def codec_cache_before_after(dec, tier, spec, imgs):
  """Times a later run without / with a filled codec cache, then the codec
  round trips alone; returns whether the ``test`` sections are identical."""
  # pylint: disable=g-import-not-at-top
  from tf_hbd.workflows import study_runner
  from tf_hbd.codecs import legacy
  from tf_hbd.evaluation import codec_cache
  from tf_hbd.evaluation import metric_cache
  out = {}
  with tempfile.TemporaryDirectory() as d:
    def run(how, codecs):
      ccache = codec_cache.RoundTripCache(os.path.join(d, "codecs")) \
          if codecs else None
      t0 = time.perf_counter()
      out[how] = study_runner.evaluate_decoder(
          dec, tier, spec, imgs, codec_cache=ccache,
          metric_cache=metric_cache.MetricCache(os.path.join(d, "metrics")))
      got = (f"; codec round trips {ccache.hits} cached, {ccache.computed} "
             "coded" if ccache else "")
      print(f"{how}: {time.perf_counter() - t0:.1f} s for {len(imgs)} "
            f"images{got}", flush=True)
      return ccache

    run("first run (both caches empty)", True)
    run("later run, no codec cache", False)
    cache = run("later run, codec cache filled", True)
    rates = (tier.test_bpp,) + tuple(tier.rd_bpps)
    for how, roundtrip in (("coded", legacy.roundtrip),
                           ("read from the codec cache", cache.roundtrip)):
      t0 = time.perf_counter()
      for img in imgs:
        for bpp in rates:
          roundtrip(img.gray, dec.codec, bpp=bpp)
      print(f"{dec.codec} round trips {how}: {time.perf_counter() - t0:.2f} "
            f"s for {len(imgs)} images x {len(rates)} rates", flush=True)
  same = len({json.dumps(v) for v in out.values()}) == 1
  print(f"identical test sections ({' / '.join(out)}): {same}")
  return same


def stand_in_decoder(codec):
  """A `LoadedDecoder` of `codec` that blurs its output (no model)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top

  def refine(img, K=None, encoded=None, ensemble=False):
    del encoded, ensemble
    out = img.astype(np.float64)
    for _ in range(K or 4):
      out = (out + np.roll(out, 1, axis=1)) / 2
    return np.clip(np.round(out), 0, 255).astype(np.uint8)

  return systems.LoadedDecoder(f"stand-in {codec}", codec, refine, 4, None,
                               "stand-in")


def compare_record(test, path):
  """True if `test`'s numbers equal the record's for the same images."""
  with open(path) as f:
    rec = json.load(f)["test"]
  idx = [rec["images"].index(n) for n in test["images"]]

  def pick(a, b):
    if isinstance(a, dict):
      return all(pick(a[k], b[k]) for k in a)
    if isinstance(a, list):
      return [b[i] for i in idx] == a
    return a == b

  same = all(pick(test[k], rec[k]) for k in ("codec", "decoder", "k_sweep",
                                             "rd"))
  print(f"equal to {path} on {test['images']}: {same}")
  return same


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  p.add_argument("--model_dir", default="", help="a study run's model "
                 "dir (or its serving export)")
  p.add_argument("--stand_in", default="", choices=("", "jpeg", "jp2"),
                 help="instead of --model_dir: a blur of this codec's "
                 "output as the decoder")
  p.add_argument("--data_root", default=os.path.join("..", "shared", "data"))
  p.add_argument("--images", type=int, default=1)
  p.add_argument("--repeats", type=int, default=2)
  p.add_argument("--record", default="", help="a committed record of the "
                 "same run to compare with")
  p.add_argument("--skip", default="", help="comma-separated parts to "
                 "skip: split, before (the evaluation before), "
                 "before_after (all three), codec_cache")
  args = p.parse_args(argv)
  quiet.quiet_tensorflow()
  from tf_hbd.workflows import study_runner  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
  tier = dataclasses.replace(study_runner.STUDIES["study10k"][0],
                             test_max_images=args.images)
  spec, imgs = study_runner._TestSet().get(tier, args.data_root)  # pylint: disable=protected-access
  t0 = time.perf_counter()
  if not args.model_dir and not args.stand_in:
    p.error("give --model_dir or --stand_in")
  dec = (stand_in_decoder(args.stand_in) if args.stand_in else
         systems.load_trained_decoder(args.model_dir))
  print(f"decoder load: {time.perf_counter() - t0:.1f} s (once per run)",
        flush=True)
  skip = set(filter(None, args.skip.split(",")))
  if "split" not in skip:
    split(dec, tier, imgs, args.repeats)
  ok = True
  if "before_after" not in skip:
    out, ok = before_after(dec, tier, spec, imgs, "before" not in skip)
    if args.record:
      ok = compare_record(out["warm"], args.record) and ok
  if "codec_cache" not in skip:
    ok = codec_cache_before_after(dec, tier, spec, imgs) and ok
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
