"""The whole study at a named scale (tiny / cpu / paper).

  python scripts/reproduce.py --scale=tiny
  python scripts/reproduce.py --scale=cpu            # about an hour on 2 cores
  python scripts/reproduce.py --scale=paper --data_root=/data/hbd
  python scripts/reproduce.py --scale=study          # = scripts/study.py

Writes results/<scale>/ (tables, figures, JSON, README.md with the command,
date and machine). Training runs live in --work_dir and are resumed/skipped
when the command is rerun. A thin wrapper of
`tf_hbd.workflows.reproduce.main` (also
``python -m tf_hbd.workflows.reproduce`` and ``hbd-reproduce``).
"""

import sys

from tf_hbd.data import roots
from tf_hbd.workflows import reproduce

# In this checkout the data sets live in ../shared/data (the library itself
# takes only --data_root or $TF_HBD_DATA).
CHECKOUT_DATA_ROOT = "../shared/data"

if __name__ == "__main__":
  sys.exit(reproduce.main(roots.with_default(sys.argv[1:], CHECKOUT_DATA_ROOT)))
