"""``python -m gluon_opt ...`` is the ``gluon-opt`` command."""
import sys

from .cli import main

sys.exit(main())
