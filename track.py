"""``python track.py …`` in a clone: the same command as the installed ``clnet-track``
(:mod:`clnet_jax.track.cli`)."""
from clnet_jax.track.cli import run

if __name__ == "__main__":
    run()
