"""``python -m headwater.engine`` runs the ``headwater`` command line."""

import sys

from .cli import main

sys.exit(main())
