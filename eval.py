"""``python eval.py …`` in a clone: the same command as the installed ``clnet-eval``
(:mod:`clnet_jax.evaluate.cli`)."""
from clnet_jax.evaluate.cli import run

if __name__ == "__main__":
    run()
