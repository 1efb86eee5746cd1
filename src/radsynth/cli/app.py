"""The `radsynth` command: one typer app; each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="radsynth",
    help="Generate, edit and score radiological images; procedural phantoms as ground truth.",
    no_args_is_help=True,
    add_completion=False,
)


def _register_commands() -> None:
    # Imported here so `radsynth --help` stays fast and each module owns its command.
    from radsynth.cli import (
        dataset_command,
        diffusion_commands,
        phantoms_command,
        probe_command,
        vocabulary_command,
    )

    for module in (
        phantoms_command,
        vocabulary_command,
        dataset_command,
        diffusion_commands,
        probe_command,
    ):
        module.register(app)
    from radsynth.cli import reader_command  # the reader (radsynth.evaluate.reader)

    reader_command.register(app)
    from radsynth.cli import evaluate_command  # metrics (radsynth.evaluate.metrics)

    evaluate_command.register(app)


_register_commands()


def main() -> None:
    """Entry point of the `radsynth` script and `python -m radsynth`."""
    app()
