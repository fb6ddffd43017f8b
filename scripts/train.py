"""Trains the HBD decoder: ``python scripts/train.py --model_dir=... [flags]``.

A thin wrapper of the library's entry point `tf_hbd.training.main` (also
``python -m tf_hbd.training`` and the console script ``hbd-train``); its
docstring and ``--help`` list the flags.
"""

import sys

from tf_hbd.training import main as train_main  # first: quiets TensorFlow
from tf_hbd.data import roots  # pylint: disable=g-bad-import-order

# In this checkout the data sets live in ../shared/data (--config's {data};
# the library itself takes only --data_root or $TF_HBD_DATA).
CHECKOUT_DATA_ROOT = "../shared/data"

if __name__ == "__main__":
  train_main.run(roots.with_default(sys.argv, CHECKOUT_DATA_ROOT))
