"""``python -m dialogym``: the same CLI as the ``dialogym`` command."""

from dialogym.cli import main

main()
