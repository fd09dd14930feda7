"""``python -m carebot`` is the ``carebot`` command."""

from carebot.cli import main

main()
