"""`python -m orders_core`: the command line (see orders_core/cli/__init__.py)."""

import sys

from .cli import main

sys.exit(main())
