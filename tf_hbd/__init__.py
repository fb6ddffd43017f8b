"""tf_hbd: a hybrid neural iterative decoder that refines JPEG / JPEG 2000.

Reproduces and extends Mali, Ororbia, Kifer, Giles, "An Empirical Analysis of
Recurrent Learning Algorithms in Neural Lossy Image Compression Systems".

Data flows one way: image -> codec -> patches/blocks -> model -> refined
image -> metrics. The subpackages, in that order:

* `tf_hbd.codecs`: `images` (reading, gray conversion), `legacy` (JPEG /
  JPEG 2000 at a quality or a target bpp), `codec_setting`,
  `jpeg_constraint`, `patches` (patch grids and 3x3 blocks);
* `tf_hbd.data`: `blocks_dataset` (the patch-block datasets' shared logic),
  `pipelines` (input pipelines, image folders), `recompress`, `train_inputs`,
  `sample_images`, `synthetic`, `stress_set`;
* `tf_hbd.model`: `cells`, `decoder`, `losses` (the HBD model, SNE,
  eqs. 17-19);
* `tf_hbd.training`: `algorithms` (BPTT, SAB, RTRL, UORO, SnAp-1), `trainer`
  (the decoder's training loop), `loop` (what it shares with the baselines'
  loop: checkpoints, budget, timing, warm-up, records), `distributed` (tf.distribute), `checkpoints` (resume
  from the newest intact checkpoint), `calibration`, `flag_checks`
  (train.py's flags and exit codes), `config` (run settings as data:
  `RunConfig`, the named configurations), `exports` (a run's serving
  export and its metadata);
* `tf_hbd.inference`: `refine` / `graph_refine` / `serving` (whole-image
  refinement and export), `guards`, `cli` (`hbd`, also ``python -m tf_hbd``);
* `tf_hbd.evaluation`: `metrics`, `systems` (the one `evaluate`: codecs,
  baselines and decoders on image folders), `study` (the paper's tables and
  figures), `main` (its entry point: ``hbd-evaluate``,
  ``python -m tf_hbd.evaluation``), `cards` (model cards' gains), `plots`, `no_harm`, `golden`
  (pinned figures of the shipped models), `stats` (bootstrap intervals over
  seeds and images), `claims` and `study_report` (issue 14's claims, tables
  and figures from run records);
* `tf_hbd.baselines`: the neural baseline codecs GOOG and E2E, `training`
  (their loop, on `tf_hbd.training.loop`) and `main` (their training entry
  point: ``hbd-train-baseline``, ``python -m tf_hbd.baselines``);
* `tf_hbd.workflows`: whole jobs composed of the subpackages above (each
  training run ``python -m tf_hbd.training`` in its own process):
  `quickstart` (``hbd-quickstart``), `reproduce` (the whole study at a named
  scale, ``hbd-reproduce``), `study_runner` (issue 14's seeded study: run
  records that accumulate, skip and resume).

At the top: `errors` (exception types), `quiet` (TensorFlow's log lines off
unless --verbose; `run_app`, the absl entry points' start). Shipped decoders live in ``tf_hbd/pretrained/``.
"""

__version__ = "0.1.0"
