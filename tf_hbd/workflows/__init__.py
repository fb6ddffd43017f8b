"""Workflows: programs that compose the layers below into whole jobs.

Each runs data preparation, training (``python -m tf_hbd.training`` in its
own process) and evaluation (`tf_hbd.evaluation`) in order, resumably:

* `quickstart`: the quick start on the sample photographs that pip installs
  (``hbd-quickstart``, ``python -m tf_hbd.workflows.quickstart``,
  ``make quickstart``);
* `reproduce`: the whole study at a named scale (``hbd-reproduce``,
  ``python -m tf_hbd.workflows.reproduce``, ``scripts/reproduce.py``);
* `study_runner`: issue 14's seeded study, run records that accumulate,
  skip and resume (``scripts/study.py``, ``hbd-reproduce --scale=study``).

Their training processes start through `children.run`, which forwards
SIGINT / SIGTERM to them and waits for their checkpoint (exit 130, one line).

They sit above `tf_hbd.training` and `tf_hbd.evaluation` (which do not
import them). Import the modules themselves; this package imports nothing.
"""
