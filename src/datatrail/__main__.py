"""``python -m datatrail`` runs the CLI."""

from datatrail.cli.app import main

main()
