"""``python -m app`` runs the ``sepsum`` command."""

import sys

from app.cli import main

sys.exit(main())
