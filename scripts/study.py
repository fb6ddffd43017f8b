"""The study of issue 14: seeded runs that accumulate into decided claims.

  python scripts/study.py --estimate_only      # the plan and its CPU hours
  python scripts/study.py                      # run (or resume) everything
  python scripts/study.py --max_runs=4         # at most 4 runs, then report
  python scripts/study.py --report_only        # tables, figures, claims
  python scripts/study.py --study=tiny --out_dir=/tmp/s --work_dir=/tmp/w
  python scripts/study.py --study=study10k ...  # an earlier setting

Records go to results/<study>/runs/<tier>/<config>-seed<N>/ (small JSON, no
weights); model dirs to runs/<study>/ (rerun the same command to skip recorded
runs and resume an interrupted one from its checkpoint; a record or model dir
of other flags is neither counted nor overwritten). The estimate counts
training and evaluation (decoder load, refinement, metrics; the codec's rows
once per study). The codec's own
metrics, the same for every run, are kept in ~/.cache/tf_hbd/metrics
(--metric_cache=DIR or $TF_HBD_METRIC_CACHE elsewhere, 'none' to recompute),
its round trips of the test images in ~/.cache/tf_hbd/codecs
(--codec_cache=DIR or $TF_HBD_CODEC_CACHE, 'none'). Same as
``python scripts/reproduce.py --scale=study``. A thin wrapper of
`tf_hbd.workflows.study_runner.main`; BUILD.md, "The study (issue 14)".
"""

import sys

from tf_hbd.data import roots
from tf_hbd.workflows import study_runner

# In this checkout the data sets live in ../shared/data (the library itself
# takes only --data_root or $TF_HBD_DATA).
CHECKOUT_DATA_ROOT = "../shared/data"

if __name__ == "__main__":
  sys.exit(study_runner.main(roots.with_default(sys.argv[1:], CHECKOUT_DATA_ROOT)))
