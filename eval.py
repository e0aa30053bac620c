"""``python eval.py …`` in a clone: the same command as the installed ``clnet-eval``
(:mod:`clnet_jax.commands.eval`)."""
from clnet_jax.commands.eval import run

if __name__ == "__main__":
    run()
