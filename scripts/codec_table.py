"""Mean achieved bpp / PSNR / SSIM / MS-SSIM of JPEG and JPEG 2000 at a target.

  python scripts/codec_table.py --images ../shared/data/kodak --bpp 0.37
"""

from absl import app
from absl import flags
import numpy as np

from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import images
from tf_hbd.evaluation import metrics

_IMAGES = flags.DEFINE_string("images", None, "Folder or glob of images.")
_BPP = flags.DEFINE_float("bpp", 0.37, "Target bits per pixel.")
_CODECS = flags.DEFINE_list("codecs", list(codecs.CODECS), "Codecs to run.")
flags.mark_flag_as_required("images")


def main(argv):
  del argv
  files = images.list_images(_IMAGES.value)
  print(f"{len(files)} images from {_IMAGES.value}, target {_BPP.value} bpp")
  print(f"{'codec':<6}{'bpp':>8}{'PSNR':>9}{'SSIM':>8}{'MS-SSIM':>9}")
  for codec in _CODECS.value:
    rows = []
    for f in files:
      img = images.load_image(f).gray
      dec, enc = codecs.roundtrip(img, codec, bpp=_BPP.value)
      m = metrics.all_metrics(img, dec)
      rows.append((enc.bpp, m["psnr"], m["ssim"], m["ms-ssim"]))
    mean = np.mean(rows, axis=0)
    print(f"{codec:<6}{mean[0]:8.4f}{mean[1]:9.3f}{mean[2]:8.4f}{mean[3]:9.4f}")


if __name__ == "__main__":
  app.run(main)
