"""The default study's estimate next to the cuts it makes, undone one at a
time (BUILD.md, "The study (issue 14)": the variants table).

  nice -n 19 python benchmarks/study_variants.py [--data_root=../shared/data]

Reads the committed measurements (``results/study/step_times.json``: step
times per key and the evaluation's costs) and prints, per variant, the runs
and `tf_hbd.workflows.study_runner.estimate_parts` summed: hours in total, in
training and in the rest (start-up, validation, decoder load, test, the
codec's rows once). Nothing is trained or measured.
"""

import argparse
import json
import os
import sys

from tf_hbd import quiet


def variants():
  """{name: tiers}: the default study and the cuts undone one at a time."""
  from tf_hbd.workflows import study_runner as s  # pylint: disable=g-import-not-at-top
  size = dict(units=128, precision="float32", checkpoint_every=400,
              sne_codecs=("jpeg",), rd_seeds=1)
  exact = dict(codecs=("jpeg",), rd_seeds=1)
  out = {"the default (STUDIES['study'])": s.STUDIES["study"]}
  for name, (sz, ex, ep, steps) in {
      "10 epochs x 400 batches": ({}, {}, 10, 400),
      "SNE with JPEG 2000 too": ({"sne_codecs": ("jpeg", "jp2")}, {}, 8,
                                 400),
      "exact tier with JPEG 2000 too": ({}, {"codecs": ("jpeg", "jp2")}, 8,
                                        400),
      "RD rates for every seed": ({"rd_seeds": None}, {"rd_seeds": None}, 8,
                                  400),
      "10 epochs x 1,000 batches": ({"checkpoint_every": 500}, {}, 10,
                                    1000)}.items():
    out[name] = (s.size_tier(epochs=ep, steps_per_epoch=steps,
                             **dict(size, **sz)),
                 s.exact_tier(8, 250, **dict(exact, **ex)))
  out["STUDIES['study10k']"] = s.STUDIES["study10k"]
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  p.add_argument("--data_root", default=os.path.join("..", "shared", "data"))
  p.add_argument("--times", default=os.path.join("results", "study",
                                                 "step_times.json"))
  args = p.parse_args(argv)
  quiet.quiet_tensorflow()
  from tf_hbd.workflows import study_runner as s  # pylint: disable=g-import-not-at-top
  with open(args.times) as f:
    times = json.load(f)
  testsets = s._TestSet()  # pylint: disable=protected-access
  print("| variant | runs | estimate (h) | training (h) | the rest (h) |")
  print("|---|---|---|---|---|")
  for name, tiers in variants().items():
    tests = {t.name: s._test_set_size(t, args.data_root, testsets)  # pylint: disable=protected-access
             for t in tiers}
    parts = s.estimate_parts(s.plan(tiers), times, tests,
                             s.validation_mpixels(tiers[0]))
    total = sum(sum(p.values()) for p in parts.values()) / 3600
    train = sum(p.get("train", 0.0) for p in parts.values()) / 3600
    print(f"| {name} | {len(s.plan(tiers))} | {total:.1f} | {train:.1f} | "
          f"{total - train:.1f} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
