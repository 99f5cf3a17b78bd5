"""gluon-opt-classroom: the instructor versions of the course's exercise notebooks.

Solutions and hidden tests, kept out of the ``gluon-opt`` wheel that students install;
instructors install this beside it, and ``gluon-opt assignment release|grade`` finds the
notebooks here (``gluon_opt._resources.instructor_dir``). Build from the repository root::

    pip wheel --no-deps ./classroom -w dist/
"""
import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
INSTRUCTOR = os.path.join(os.path.dirname(HERE), 'course', 'instructor')


class BuildWithNotebooks(build_py):
    def run(self):
        super().run()
        paths = sorted(glob.glob(os.path.join(INSTRUCTOR, '[0-9][0-9]x_*.ipynb')))
        if not paths:
            raise SystemExit('classroom/setup.py: no instructor notebooks in %s' % INSTRUCTOR)
        target = os.path.join(self.build_lib, 'gluon_opt_classroom', 'instructor')
        os.makedirs(target, exist_ok=True)
        for path in paths + [os.path.join(os.path.dirname(INSTRUCTOR), 'ASSIGNMENTS.md')]:
            shutil.copy(path, target)


setup(name='gluon-opt-classroom', version='0.1.0',
      description='Instructor versions (solutions, hidden tests) of the gluon-opt course '
                  'exercises, for gluon-opt assignment release|grade',
      license='Apache-2.0', packages=['gluon_opt_classroom'], python_requires='>=3.8',
      install_requires=['gluon-opt==0.1.0'],
      cmdclass={'build_py': BuildWithNotebooks})
