"""The quick-start main job on the embedded default (scikit-image photos).

Run with ``make quickstart`` or ``python -m tf_hbd.quickstart``.
"""

import sys

from tf_hbd import codecs, metrics, sample_images


def main(argv=None):
  del argv
  bpp = 0.37
  print(f"Codecs at a target of {bpp} bpp on the held-out sample images:")
  print(f"{'image':<12}{'codec':<6}{'bpp':>7}{'PSNR':>8}{'SSIM':>8}{'MS-SSIM':>9}")
  for name in sample_images.sample_names("test"):
    img = sample_images.load_sample(name)
    for codec in codecs.CODECS:
      dec, enc = codecs.roundtrip(img, codec, bpp=bpp)
      m = metrics.all_metrics(img, dec)
      print(f"{name:<12}{codec:<6}{enc.bpp:7.3f}{m['psnr']:8.2f}"
            f"{m['ssim']:8.4f}{m['ms-ssim']:9.4f}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
