"""Argument types the benchmark scripts share. Free of JAX and torch: pysot's side of a
comparison imports its script under the Python that has torch."""
from __future__ import annotations

import argparse
from typing import Callable


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``low``, so that a count such as
    ``--rounds 0`` is refused at once instead of failing after minutes of measuring."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below {low}")
        return value
    parse.__name__ = "integer"
    return parse
