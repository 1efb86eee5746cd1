"""Checks the commands share, made before any work."""

from __future__ import annotations

from pathlib import Path

import typer

# The file `radsynth phantoms` keeps a folder's options in (for --resume); it marks a phantoms
# folder to the other commands.
PHANTOMS_SETTINGS_NAME = "phantoms.json"


def check_out(out: Path) -> None:
    """The output folder must be a folder or not exist yet: a file there is a usage error
    (it was a traceback, in some commands after all the work was done)."""
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"--out {out} is a file; give a folder")


def was_interrupted(error: BaseException) -> bool:
    """Ctrl-C: a KeyboardInterrupt, or the SystemError it becomes when it arrives inside a
    compiled (numba) projection kernel."""
    if isinstance(error, KeyboardInterrupt):
        return True
    return isinstance(error, SystemError) and isinstance(
        error.__context__ or error.__cause__, KeyboardInterrupt
    )
