"""``python -m flowaudit`` runs the CLI."""

from flowaudit.cli import main

main()
