"""The module paths from before the three rooms, kept importable.

``gluon_opt.compare`` is now ``gluon_opt.experiments.compare``, ``gluon_opt.quiz``
``gluon_opt.teaching.quiz``, and so on (``MOVED``). Code written against the old paths keeps
working, and must: the exercise notebooks students already hold import ``gluon_opt.grading``
in cells nbgrader locks. ``install()`` (called by ``import gluon_opt``) puts a finder first on
``sys.meta_path`` that answers an old name, or a submodule of one (``gluon_opt.quiz.cli``),
with the new module itself: one module object under two names, so monkeypatching,
``isinstance`` and pickles behave as before. It prints nothing and imports nothing until an
old name is imported, so ``import gluon_opt`` still loads the library alone. ``python -m <old
name>`` runs the new module.
"""
import importlib
import importlib.abc
import importlib.util
import sys

#: old module (or package) -> new one
MOVED = {
    'gluon_opt.bench': 'gluon_opt.experiments.bench',
    'gluon_opt.compare': 'gluon_opt.experiments.compare',
    'gluon_opt.data': 'gluon_opt.experiments.data',
    'gluon_opt.distributed': 'gluon_opt.experiments.distributed',
    'gluon_opt.models': 'gluon_opt.experiments.models',
    'gluon_opt.outputs': 'gluon_opt.experiments.outputs',
    'gluon_opt.plotting': 'gluon_opt.experiments.plotting',
    'gluon_opt.training': 'gluon_opt.experiments.training',
    'gluon_opt.assignment': 'gluon_opt.teaching.assignment',
    'gluon_opt.checking': 'gluon_opt.teaching.checking',
    'gluon_opt.course_plots': 'gluon_opt.teaching.course_plots',
    'gluon_opt.grading': 'gluon_opt.teaching.grading',
    'gluon_opt.landscapes': 'gluon_opt.teaching.landscapes',
    'gluon_opt.quiz': 'gluon_opt.teaching.quiz',
}


def new_name(name):
    """The current name of module ``name``, or None when it did not move."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + '.'):
            return new + name[len(old):]
    return None


class _Alias(importlib.abc.Loader):
    def __init__(self, new):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module):
        pass  # the new module is already executed

    def get_code(self, name):  # what runpy runs for python -m <old name>
        return compile('import runpy\nrunpy.run_module(%r, run_name="__main__", alter_sys=True)'
                       % self.new, '<%s, now %s>' % (name, self.new), 'exec')


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        new = new_name(name)
        found = new and importlib.util.find_spec(new)
        if not found:
            return None
        return importlib.util.spec_from_loader(
            name, _Alias(new), is_package=found.submodule_search_locations is not None)


def install():
    """Answer the old names (once, however often it is called)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        # first: the path finder would load a submodule of an old package a second time
        sys.meta_path.insert(0, _Finder())
