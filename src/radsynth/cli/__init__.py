"""radsynth's command line (typer). Each command module parses arguments and calls library code."""
