"""Training the decoder.

* `algorithms`: the learning algorithms (BPTT, SAB, RTRL, UORO, SnAp-1);
* `trainer`: the training loop shared by every algorithm (`Trainer`);
* `distributed`: data-parallel training on `tf.distribute`;
* `checkpoints`: resuming from the newest intact checkpoint;
* `calibration`: post-training calibration of a residual decoder;
* `flag_checks`: the training script's flag checks and exit codes.

Import the modules themselves; this package imports nothing.
"""
