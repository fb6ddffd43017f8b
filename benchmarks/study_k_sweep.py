"""A study run's test evaluation with the K sweep refined per K (before) and
from one pass per image (after, `tf_hbd.evaluation.step_sweep`).

  nice -n 15 python benchmarks/study_k_sweep.py --model_dir=DIR \\
      [--data_root=../shared/data] [--rd] [--order=before,after,before,after]

Loads the run's decoder once (the load time is printed), then runs
`tf_hbd.workflows.study_runner.evaluate_decoder` on the size tier's test set
(the 24 Kodak images at 0.37 bpp, the K sweep; ``--rd``: the RD rates too,
as for seed 0) in the given order, with the study's metric and codec caches
in ``--cache_dir`` (the first evaluation fills them: leave it out of a
comparison), and prints each wall time and whether every ``test`` section is
identical. DIR must hold an export with the ``refine_steps`` signature (a run
trained after it); "before" hides it, so the same decoder is refined at
each K as the evaluation did up to then.

Every time is wall time on a shared machine: report the load with it.
"""

import argparse
import json
import os
import sys
import time

from tf_hbd import quiet


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  p.add_argument("--model_dir", required=True)
  p.add_argument("--data_root", default=os.path.join("..", "shared", "data"))
  p.add_argument("--cache_dir", default=os.path.join("runs", "k_sweep_cache"))
  p.add_argument("--rd", action="store_true", help="the RD rates too")
  p.add_argument("--order", default="fill,before,after,before,after")
  args = p.parse_args(argv)
  quiet.quiet_tensorflow()
  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import codec_cache
  from tf_hbd.evaluation import metric_cache
  from tf_hbd.evaluation import systems
  from tf_hbd.workflows import study_runner as s
  tier = s.STUDIES["study"][0]
  spec, imgs = s._TestSet().get(tier, args.data_root)  # pylint: disable=protected-access
  t0 = time.perf_counter()
  dec = systems.load_trained_decoder(args.model_dir)
  print(f"decoder load {time.perf_counter() - t0:.1f} s")
  steps = dec.refine_steps
  out = {}
  for i, name in enumerate(args.order.split(",")):
    dec.refine_steps = None if name == "before" else steps
    t0 = time.perf_counter()
    out[i] = json.dumps(s.evaluate_decoder(
        dec, tier, spec, imgs, rd=args.rd,
        metric_cache=metric_cache.MetricCache(
            os.path.join(args.cache_dir, "metrics")),
        codec_cache=codec_cache.RoundTripCache(
            os.path.join(args.cache_dir, "codecs"))))
    print(f"{name}: {time.perf_counter() - t0:.1f} s (load average "
          f"{os.getloadavg()[0]:.1f})", flush=True)
  print("identical test sections:", len(set(out.values())) == 1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
