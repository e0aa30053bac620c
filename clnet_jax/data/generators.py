"""Which sequence generator makes a split's sequences, by name: one place that knows both.

'lookalike' (:mod:`clnet_jax.data.synthetic`) and the testbed's scenes
(:mod:`clnet_jax.data.scenes`) are independent modules; stores, TFDS builders and reports
ask this one for a sequence or its name.
"""
from __future__ import annotations

from clnet_jax.data import scenes, synthetic
from clnet_jax.data.sequence import Sequence

GENERATORS = ("lookalike", "scenes", "scenes_easy_medium")


def make(generator: str, split: str, index: int, base_seed: int = 0, length: int = 40,
         size: tuple[int, int] = (160, 160)) -> tuple[str, Sequence]:
    """(name, sequence) of a split's ``index``-th sequence, a pure function of the arguments.

    'lookalike': :mod:`clnet_jax.data.synthetic`'s recoloured copies; 'scenes':
    :mod:`clnet_jax.data.scenes` (its frame size comes from the family; the name carries the
    difficulty level, and the 'transfer' split uses the transfer family);
    'scenes_easy_medium': the same without the hard level.
    """
    name = sequence_name(generator, split, index)
    if generator == "lookalike":
        seed = synthetic.split_seed(split, index, base_seed)
        return name, synthetic.make_sequence(seed, length, size)
    family = "transfer" if split == "transfer" else "scenes"
    level = scenes.level_of(index, scenes.LEVEL_SETS[generator])
    return name, scenes.make_sequence(scenes.split_seed(split, index, base_seed), level,
                                      family, length)


def sequence_name(generator: str, split: str, index: int) -> str:
    if generator == "lookalike":
        return f"{split}_{index:05d}"
    if generator in ("scenes", "scenes_easy_medium"):
        return f"{split}_{scenes.level_of(index, scenes.LEVEL_SETS[generator])}_{index:05d}"
    raise ValueError(f"unknown generator {generator!r}; choose one of {GENERATORS}")


def level_of_name(name: str) -> str | None:
    """The difficulty level a scenes sequence's name carries (None for other names)."""
    parts = name.split("_")
    return parts[1] if len(parts) == 3 and parts[1] in scenes.LEVELS else None
