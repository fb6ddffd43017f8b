"""Evaluates codecs, neural baselines and trained decoders; writes the tables.

  python scripts/evaluate.py --datasets kodak=../shared/data/kodak \
      --decoders runs/bptt,runs/sab --k_sweep 1,3,5,7,9,11 \
      --rd_bpps 0.2,0.3,0.4,0.5,0.6,0.8,1.0 --out_dir results/mine

A thin wrapper of the library's entry point `tf_hbd.evaluation.main` (also
``python -m tf_hbd.evaluation`` and the console script ``hbd-evaluate``);
its docstring and ``--help`` list the flags.
"""

from tf_hbd.evaluation import main as evaluate_main  # first: quiets TensorFlow

if __name__ == "__main__":
  evaluate_main.run()
