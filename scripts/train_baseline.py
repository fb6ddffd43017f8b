"""Trains a neural baseline codec: ``python scripts/train_baseline.py
--family=e2e|goog --train_dir=... --checkpoint_dir=... [flags]``.

A thin wrapper of the library's entry point `tf_hbd.baselines.main` (also
``python -m tf_hbd.baselines`` and the console script ``hbd-train-baseline``);
its docstring and ``--help`` list the flags.
"""

from tf_hbd.baselines import main as baseline_main

if __name__ == "__main__":
  baseline_main.run()
