"""Entry point of the bundled app: no arguments opens the desktop window, otherwise the CLI."""

import sys

from app.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(main(argv if argv else ["gui"]))
