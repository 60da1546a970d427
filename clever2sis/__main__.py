"""``python -m clever2sis``: the same command line as the ``clever2sis`` script."""

from clever2sis.cli import main

main(prog_name="clever2sis")
