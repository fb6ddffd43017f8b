"""How TensorFlow's bfloat16 matmul rounds on this CPU (BUILD.md, "TensorFlow's
bfloat16 products depend on the CPU").

  python benchmarks/bfloat16_rounding.py

Prints, for one 256 x 576 by 576 x 512 product of random bfloat16 matrices
(`tf_hbd.model.cells.bfloat16_matmul_rounding`), the fraction of products
equal to the exact sum truncated to bfloat16 and the fraction that differ
from it rounded to nearest, and the CPU's bfloat16 flags.
"""

from tf_hbd import quiet  # first: TF's log lines off

quiet.quiet_tensorflow(False)

# pylint: disable=g-import-not-at-top,wrong-import-position
from tf_hbd.model import cells


def _cpu_flags() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      flags = next((line for line in f if line.startswith("flags")), "")
  except OSError:
    return "unknown"
  wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
  return " ".join(w for w in wanted if f" {w}" in flags) or "none of " + (
      ", ".join(wanted))


def main():
  r = cells.bfloat16_matmul_rounding()
  print(f"CPU flags: {_cpu_flags()}")
  print(f"{r['products']:,} products: {100 * r['truncated']:.2f} % equal the "
        f"truncated exact sum, {100 * r['off_nearest']:.2f} % differ from "
        f"it rounded to nearest")
  print("TF truncates" if r["off_nearest"] > 0.1 else
        "TF rounds to nearest")


if __name__ == "__main__":
  main()
