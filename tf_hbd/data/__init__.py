"""Training and evaluation data.

* `blocks_dataset`: the patch-block datasets' shared logic (specs, tiles,
  per-image rates) used by the TFDS builders in ``data_builders/``;
* `pipelines`: records -> training batches (`training_dataset`), blocks made
  in memory, image folders for evaluation (`load_images`);
* `recompress`: a stream that compresses every image afresh each epoch;
* `train_inputs`: the training and validation inputs named by train flags;
* `sample_images`: the embedded default photographs (scikit-image);
* `synthetic`, `stress_set`: synthetic gray images and the do-no-harm stress
  set.

Import the modules themselves; this package imports nothing.
"""
