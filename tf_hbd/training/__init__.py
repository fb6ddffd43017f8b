"""Training the decoder.

* `algorithms`: the learning algorithms (BPTT, SAB, RTRL, UORO, SnAp-1);
* `trainer`: the training loop shared by every algorithm (`Trainer`);
* `loop`: the one resumable training loop (`loop.run`) that `Trainer` and
  the baselines' `train_loop` run through, and its machinery (checkpoints,
  budget, timing, stop signals, warm-up, records);
* `distributed`: data-parallel training on `tf.distribute`;
* `checkpoints`: resuming from the newest intact checkpoint;
* `run_decoder`: a run's decoder (final or best) rebuilt from its settings
  and checkpoints, the source of re-exports;
* `exports`: a run's serving export (its one SavedModel) and metadata;
* `calibration`: post-training calibration of a residual decoder;
* `flag_checks`: the training script's flag checks and exit codes.

Import the modules themselves; this package imports nothing.
"""
