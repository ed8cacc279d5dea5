"""``python -m initlab`` runs the command line."""

import sys

from initlab.cli import main

sys.exit(main())
