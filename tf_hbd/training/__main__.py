"""``python -m tf_hbd.training``: the training entry point (`main`)."""

from tf_hbd.training import main as train_main

if __name__ == "__main__":
  train_main.run()
