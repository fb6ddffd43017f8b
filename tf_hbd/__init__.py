"""tf_hbd: a hybrid neural iterative decoder that refines JPEG / JPEG 2000.

Reproduces and extends Mali, Ororbia, Kifer, Giles, "An Empirical Analysis of
Recurrent Learning Algorithms in Neural Lossy Image Compression Systems".

Data flows one way: image -> codec -> patches/blocks -> model -> refined
image -> metrics. Modules, in that order: `images` (reading, gray
conversion), `codecs` (JPEG / JPEG 2000 at a quality or a target bpp),
`patches` (patch grids and 3x3 blocks), `blocks_dataset` / `data` (patch-block
TFRecords and input pipelines), `cells` / `decoder` / `losses` (the HBD
model, SNE, eq. 17-19), `algorithms` (BPTT, SAB, RTRL, UORO), `training` /
`distributed` (the training loop, tf.distribute), `refine` / `graph_refine`
/ `serving` / `calibration` (whole-image refinement and export), `baselines`
(GOOG, E2E), `metrics` / `evaluation` / `study` / `reproduce` / `plots` (the
paper's tables and figures), `golden` (pinned figures of the shipped
models), `cli` (`hbd`); `checkpoints` (resume from the newest intact
checkpoint), `flag_checks` (train.py's flags and exit codes) and `quiet`
(TensorFlow's log lines off unless --verbose) serve the entry points.
"""

__version__ = "0.1.0"
