"""``python -m tf_hbd.baselines``: the baselines' training entry point
(`main`)."""

from tf_hbd.baselines import main as baseline_main

if __name__ == "__main__":
  baseline_main.run()
