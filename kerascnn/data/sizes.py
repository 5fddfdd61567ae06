"""The one ``(height, width)`` rule for a size argument.

``hw(7)`` is ``(7, 7)``; ``hw((7, 9))`` (any pair of integers, numpy's too) is
``(7, 9)``. Anything else, or a side below 1, is a ``ValueError`` naming the argument:
``crop_size``, ``image_size``... Every function that takes an image size reads it here.
Standard library only.
"""

from __future__ import annotations

import numbers

__all__ = ["hw"]


def hw(value, name="image_size") -> tuple[int, int]:
    """``value`` (an int or a pair ``(height, width)``) as a pair of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a positive int or (height, width). "
                         f"Received: {name}={value!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"`{name}` must be a positive int or (height, width). "
                         f"Received: {name}={value!r}")
    return h, w
