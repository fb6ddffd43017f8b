"""``python -m tf_hbd.evaluation``: the evaluation entry point (`main`)."""

from tf_hbd.evaluation import main as evaluate_main

if __name__ == "__main__":
  evaluate_main.run()
