"""`python -m pipeline` runs the `stpe` command."""

from pipeline.cli import main

main()
