"""Spotting a network whose weights carry no information (a zero-filled or constant fake).

A file of the right shape but filled with zeros (or any one value) passes every key,
shape and signature check, then turns every face into the same grey patch. A trained
network always has some weight tensor holding two different values, so a file in which
each floating-point tensor is a single repeated value is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def constant_weights(tensors: Iterable[tuple[str, np.ndarray]]) -> str | None:
    """What was found when every float tensor holds one repeated value; else None.

    Stops at the first tensor with two different values, so a real network costs one
    tensor's scan. Files with no tensor of two or more values are not judged.
    """
    count = 0
    example: tuple[str, float] | None = None  # the first tensor of two or more values
    for name, values in tensors:
        if values.size == 0:
            continue
        flat = values.reshape(-1)
        first = float(flat[0])
        if math.isnan(first):
            if not np.isnan(flat).all():
                return None
        elif not bool((flat == flat[0]).all()):
            return None
        count += 1
        if example is None and values.size > 1:
            example = (name, first)
    if example is None:
        return None
    name, value = example
    return (
        f"all weights equal: each of its {count} weight tensors holds one repeated value "
        f"({name!r} is all {value:g}), which no trained network does"
    )
