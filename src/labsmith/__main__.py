"""``python -m labsmith``: the same command as ``labsmith``."""

from labsmith.cli import main

main(prog_name="labsmith")
