"""The whole study at a named scale (tiny / cpu / paper).

  python scripts/reproduce.py --scale=tiny
  python scripts/reproduce.py --scale=cpu            # about an hour on 2 cores
  python scripts/reproduce.py --scale=paper --data_root=/data/hbd

Writes results/<scale>/ (tables, figures, JSON, README.md with the command,
date and machine). Training runs live in --work_dir and are resumed/skipped
when the command is rerun.
"""

import sys

from absl import app
from absl import flags

from tf_hbd import reproduce

_SCALE = flags.DEFINE_enum("scale", "tiny", sorted(reproduce.SCALES),
                           "Which scale to run.")
_OUT_DIR = flags.DEFINE_string("out_dir", "", "Results folder (default "
                               "results/<scale>).")
_WORK_DIR = flags.DEFINE_string("work_dir", "", "Training runs (default "
                                "runs/reproduce/<scale>).")
_DATA_ROOT = flags.DEFINE_string("data_root", reproduce.SHARED,
                                 "Folder holding the evaluation sets "
                                 "(kodak, bsd68, train400, ...).")
_ALGOS = flags.DEFINE_list("algorithms", list(reproduce.ALGORITHMS),
                           "Learning algorithms to train.")


def main(argv):
  del argv
  scale = _SCALE.value
  reproduce.run_scale(
      scale, _OUT_DIR.value or f"results/{scale}",
      _WORK_DIR.value or f"runs/reproduce/{scale}", _DATA_ROOT.value,
      algorithms=_ALGOS.value, command="python " + " ".join(sys.argv))
  return 0


if __name__ == "__main__":
  app.run(main)
