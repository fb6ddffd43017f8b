"""Where inside its d x d patch a JPEG 2000 decoder gains: edge vs interior.

The decoder corrects a d x d target patch from the 3 x 3 block of decoded
patches around it, so a pixel on the target's edge sees d pixels of context
on one side and 2d - 1 on the other, while JPEG 2000's errors (wavelet
ringing and blur) reach further than d = 8 at low rates. If the context is
what limits the decoder, pixels near the patch edge gain less than central
ones (and larger patches, d = 16, or overlapping passes, `hbd enhance
--shifts`, help).

Refines every image of a set (default: the first ``--images`` of BSD68, the
selection set) at each rate with an exported decoder in the NumPy runtime,
without the export's passthrough guards (the flat-block guard stays), and
sums the squared errors of the decoded and the refined image per ring of
the patch: ring 0 = the pixels on the patch edge, ring d/2 - 1 = the 2 x 2
centre. Prints, per rate, the gain in dB of each ring (10 log10 of the
ratio of summed squared errors), the whole set's, and the mean over images
of each image's PSNR gain (what training validation reports).

  python benchmarks/jp2_patch_position_gain.py \\
      --model=tf_hbd/pretrained/hbd-lstm-jp2 --images=16
"""

import argparse
import os
import sys

import numpy as np

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import pipelines as data_lib
from tf_hbd.evaluation import metrics
from tf_hbd.inference import numpy_serving

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "shared", "data")


def rings(shape, d):
  """(H, W) int: each pixel's distance to the edge of its d x d patch."""
  y = np.arange(shape[0]) % d
  x = np.arange(shape[1]) % d
  ry = np.minimum(y, d - 1 - y)
  rx = np.minimum(x, d - 1 - x)
  return np.minimum(ry[:, None], rx[None, :])


def ring_errors(original, decoded, refined, d):
  """(codec, refined) summed squared errors per ring, each (d // 2,)."""
  ring = rings(original.shape, d)
  ref = original.astype(np.float64)
  e_dec = (decoded - ref)**2
  e_out = (refined - ref)**2
  n = d // 2
  return (np.bincount(ring.ravel(), e_dec.ravel(), n),
          np.bincount(ring.ravel(), e_out.ravel(), n))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", default="tf_hbd/pretrained/hbd-lstm-jp2")
  p.add_argument("--set", default=os.path.join(SHARED, "bsd68"))
  p.add_argument("--images", type=int, default=16)
  p.add_argument("--rates", default="0.25,0.37,0.5")
  args = p.parse_args(argv)
  model = numpy_serving.load(args.model, "numpy")
  model.metadata["passthrough"] = {}  # unguarded (the flat guard stays)
  d = int(model.metadata.get("patch_size", 8))
  imgs = list(data_lib.load_images(args.set, limit=args.images))
  print(f"{args.model} (d={d}), {len(imgs)} images of {args.set}, no "
        "passthrough guards; gain (dB) per ring of the patch (0 = edge)")
  print(f"{'bpp':>5s} " + " ".join(f"{'ring ' + str(r):>7s}"
                                   for r in range(d // 2))
        + f" {'all':>7s} {'mean/img':>8s}")
  for rate in (float(r) for r in args.rates.split(",")):
    dec_sum = np.zeros(d // 2)
    out_sum = np.zeros(d // 2)
    per_image = []
    for im in imgs:
      dec, enc = codecs.roundtrip(im.gray, "jp2", bpp=rate)
      st = codec_setting.features(enc.data, "jp2", dec.shape)
      out = model.refine(dec, setting=st)
      per_image.append(float(metrics.psnr(im.gray, out))
                       - float(metrics.psnr(im.gray, dec)))
      a, b = ring_errors(im.gray, dec, out, d)
      dec_sum += a
      out_sum += b
    gains = 10 * np.log10(dec_sum / out_sum)
    total = 10 * np.log10(dec_sum.sum() / out_sum.sum())
    print(f"{rate:5.2f} " + " ".join(f"{g:+7.3f}" for g in gains)
          + f" {total:+7.3f} {np.mean(per_image):+8.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
