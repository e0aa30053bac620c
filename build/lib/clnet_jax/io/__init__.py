"""Weights in and out: the torch-free .pth reader, the upstream-name converter and orbax
checkpoints (``clnet-convert``)."""
