"""Errors raised when a user's file cannot be read as an image."""

from __future__ import annotations

from pathlib import Path


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names the file, the problem and a fix.

    `path` is the file, `problem` the reason in words (without the path).
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
