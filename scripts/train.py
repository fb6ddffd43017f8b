"""Trains the HBD decoder: ``python scripts/train.py --model_dir=... [flags]``.

A thin wrapper of the library's entry point `tf_hbd.training.main` (also
``python -m tf_hbd.training`` and the console script ``hbd-train``); its
docstring and ``--help`` list the flags.
"""

from tf_hbd.training import main as train_main  # first: quiets TensorFlow

if __name__ == "__main__":
  train_main.run()
