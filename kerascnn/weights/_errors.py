"""The one error type of the weight readers."""

from __future__ import annotations


class WeightsFileError(ValueError):
    """A weights file that kerascnn refuses to read: missing, in no accepted format,
    truncated, corrupt, or declaring more data than it holds. The message starts with
    the file's path and is one line (the CLI prints it as it is)."""


__all__ = ["WeightsFileError"]
