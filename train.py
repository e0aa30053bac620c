"""``python train.py …`` in a clone: the same command as the installed ``clnet-train``
(:mod:`clnet_jax.commands.train`)."""
from clnet_jax.commands.train import run

if __name__ == "__main__":
    run()
