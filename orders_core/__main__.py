"""`python -m orders_core`: the command line (see orders_core/cli.py)."""
import sys

from .cli import main

sys.exit(main())
