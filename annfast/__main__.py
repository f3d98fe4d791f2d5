"""``python -m annfast``: the same as the ``annfast`` command (without arguments: the demo)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
