"""`radsynth phantoms`: write phantom cases or a contact sheet."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `phantoms` command to `app`."""
