"""``python -m tf_hbd``: the `hbd` command (`tf_hbd.inference.cli`)."""

from tf_hbd.inference import cli

if __name__ == "__main__":
  cli.run()
