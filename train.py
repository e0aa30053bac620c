"""``python train.py …`` in a clone: the same command as the installed ``clnet-train``
(:mod:`clnet_jax.train.cli`)."""
from clnet_jax.train.cli import run

if __name__ == "__main__":
    run()
