"""``python -m gluon_opt.quiz [chapter]``: the terminal quiz."""
import sys

from .cli import main

sys.exit(main())
