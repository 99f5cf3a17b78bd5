"""``python -m gluon_opt.teaching.quiz [chapter]``: the terminal quiz."""
import sys

from .cli import main

sys.exit(main())
