"""Build hook: the wheel carries what the product needs beside the code.

The repository keeps ``data/`` and ``course/`` at the top; the build copies the Fashion-MNIST
file and the learner's course (chapters, learner versions of the exercise notebooks, the
course README) into the package, where ``gluon_opt._resources`` finds them once installed.
The instructor notebooks (``course/instructor/``: solutions and hidden tests) are not
copied: every student installs this wheel. They are the classroom distribution, built from
``classroom/`` (``pip wheel ./classroom``). Everything else is in setup.cfg.
"""
import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
#: (files in the repository, folder inside gluon_opt/ in the wheel)
PRODUCT_FILES = [
    ('data/fashion_mnist.npz', '_data'), ('data/README.md', '_data'),
    ('course/[0-9][0-9]_*.ipynb', '_course'), ('course/[0-9][0-9]x_*.ipynb', '_course'),
    ('course/README.md', '_course'),
]


class BuildWithProductFiles(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads data/ and course/ in place
            return
        for pattern, folder in PRODUCT_FILES:
            paths = sorted(glob.glob(os.path.join(HERE, pattern)))
            if not paths:
                raise SystemExit('setup.py: nothing matches %s: the wheel would lack it' % pattern)
            target = os.path.join(self.build_lib, 'gluon_opt', folder)
            os.makedirs(target, exist_ok=True)
            for path in paths:
                shutil.copy(path, target)


setup(cmdclass={'build_py': BuildWithProductFiles})
