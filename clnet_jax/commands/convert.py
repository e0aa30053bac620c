"""Converts an upstream PyTorch checkpoint (pysot / CLNet .pth, a state dict or a training
snapshot, zip or legacy pickle; or a backbone-only ImageNet ResNet-50) into a clnet_jax
weights directory:

    clnet-convert SRC.pth OUT_DIR [--allow_unmapped]

Exit status 2: the file cannot be read; 3: keys that map to nothing, or a network part
missing (nothing is written).
"""
from __future__ import annotations

import sys

from absl import flags

from clnet_jax.commands import common
from clnet_jax.io import convert
from clnet_jax.model import weights

flags.DEFINE_bool("allow_unmapped", False, "write the checkpoint even if some keys could not "
                  "be mapped")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 3:
        sys.exit("error: usage: clnet-convert SRC.pth OUT_DIR [--allow_unmapped]")
    src, out = argv[1:]
    try:
        lines = weights.convert_checkpoint(src, out, FLAGS.allow_unmapped)
    except convert.UnmappedKeys as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(3)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(lines))


def run(argv: list[str] | None = None) -> None:
    common.run(main, __doc__, __name__, None, argv)


if __name__ == "__main__":
    run()
