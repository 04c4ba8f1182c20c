"""``python -m datatrail`` runs the CLI."""

from datatrail.cli import main

main()
