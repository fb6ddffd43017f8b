"""tf_hbd: a hybrid neural iterative decoder that refines JPEG / JPEG 2000.

Reproduces and extends Mali, Ororbia, Kifer, Giles, "An Empirical Analysis of
Recurrent Learning Algorithms in Neural Lossy Image Compression Systems".

Data flows one way: image -> codec -> patches/blocks -> model -> refined
image -> metrics. Modules: `images` (reading, gray conversion), `codecs`
(JPEG / JPEG 2000 at a quality or a target bpp), `patches` (patch grids and
3x3 blocks), `metrics` (PSNR / SSIM / MS-SSIM).
"""

__version__ = "0.1.0"
