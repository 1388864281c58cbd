"""Entry point of the bundled app: no arguments opens the desktop window, otherwise the CLI."""

import sys

from app.cli import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv == ["--sepsum-pdf-worker"]:  # the time-limited PDF reader (app.ingest.pdf_worker)
        from app.ingest.pdf_worker import worker_main

        worker_main()
        sys.exit(0)
    sys.exit(main(argv if argv else ["gui"]))
