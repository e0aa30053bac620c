"""``python track.py …`` in a clone: the same command as the installed ``clnet-track``
(:mod:`clnet_jax.commands.track`)."""
from clnet_jax.commands.track import run

if __name__ == "__main__":
    run()
