"""``python -m melodybot``: the same command line as the installed ``melodybot`` script."""

from melodybot.cli import main

main(prog_name="melodybot")
