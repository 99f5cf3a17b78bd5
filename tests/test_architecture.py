"""The layout is the architecture (GUIDE.md, "Layout shows the architecture"): three rooms, and
imports go one way only.

* the library: ``gluon_opt`` itself (``__init__``, ``optimizers/``, ``kernels/``, the Trainer,
  ``states``, ``hvp``, ``_compat``) imports neither room;
* the experiments, ``gluon_opt.experiments``, import the library and never the teaching;
* the teaching, ``gluon_opt.teaching``, imports both;
* the command line (``gluon_opt.cli``, ``gluon_opt.__main__``) is the front door: it may name
  every room, and nothing in them imports it.

And no import cycle between gluon_opt modules. Every module under gluon_opt/ is read with
``ast``, nothing is imported: ``import`` statements at any depth (inside functions too, where
the lazy imports are), relative ones resolved; ``from package import name`` is the submodule
``name`` where there is one, else the package, whose ``__init__`` runs with all it re-exports;
importing a module from outside its package runs that package's ``__init__`` too. A string
that names a gluon_opt module (``importlib.import_module('gluon_opt.experiments.bench')``, the
CLI's table; not ``'gluon_opt'`` alone, a prefix) counts as an import, except in
``gluon_opt._legacy``, which maps the modules' old paths (``gluon_opt.compare``) to the new
ones and imports them only when old code asks.
"""
import ast
import importlib
import os
import subprocess
import sys

import pytest

# no floating-point result: the instruction set cannot change the outcome
pytestmark = pytest.mark.isa_independent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(ROOT, 'gluon_opt')

LIBRARY, EXPERIMENTS, TEACHING, ENTRY = 'library', 'experiments', 'teaching', 'command line'
#: what each room may import
ALLOWED = {LIBRARY: {LIBRARY}, EXPERIMENTS: {LIBRARY, EXPERIMENTS},
           TEACHING: {LIBRARY, EXPERIMENTS, TEACHING},
           ENTRY: {LIBRARY, EXPERIMENTS, TEACHING, ENTRY}}
ENTRY_MODULES = ('gluon_opt.cli', 'gluon_opt.__main__')
#: the one module whose strings name the rooms without importing them (old paths -> new)
ALIASES = 'gluon_opt._legacy'


def room(module):
    if module in ENTRY_MODULES:
        return ENTRY
    for name in (EXPERIMENTS, TEACHING):
        prefix = 'gluon_opt.' + name
        if module == prefix or module.startswith(prefix + '.'):
            return name
    return LIBRARY


def _modules():
    """``{dotted name: path}`` of every module under gluon_opt/ (a package as its __init__)."""
    out = {}
    for folder, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for f in files:
            if f.endswith('.py'):
                path = os.path.join(folder, f)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts.pop()
                out['.'.join(parts)] = path
    return out


def _parents_run(importer, target, modules):
    """The packages whose ``__init__`` importing ``target`` from ``importer`` runs: every
    package above ``target`` that ``importer`` is not inside (its own are running already)."""
    parts = target.split('.')
    for i in range(1, len(parts)):
        package = '.'.join(parts[:i])
        if package in modules and not (importer + '.').startswith(package + '.'):
            yield package


def imports(modules=None):
    """``[(importer, imported, line, how)]``: every reference from a gluon_opt module to
    another, as described at the top of this file."""
    modules = modules or _modules()
    edges = []
    for name, path in sorted(modules.items()):
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(a.name, node.lineno, 'import') for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split('.')
                    base = base[:len(base) - node.level + 1]
                    base = '.'.join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                for alias in node.names:
                    sub = '%s.%s' % (base, alias.name)
                    found.append((sub if sub in modules else base, node.lineno, 'from'))
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in modules and '.' in node.value and name != ALIASES):
                found.append((node.value, node.lineno, 'string'))
        for target, line, how in found:
            if target in modules:
                for parent in _parents_run(name, target, modules):
                    edges.append((name, parent, line, how + ' (its package)'))
            while target and target not in modules:  # import a.b.c names a.b.c, or a parent
                target = target.rpartition('.')[0]
            if target and target != name:
                edges.append((name, target, line, how))
    return edges


def _where(modules, importer, line):
    return '%s:%d' % (os.path.relpath(modules[importer], ROOT), line)


def test_the_rooms_are_where_the_guide_puts_them():
    modules = _modules()
    assert room('gluon_opt.experiments.compare') == EXPERIMENTS
    assert room('gluon_opt.teaching.quiz.engine') == TEACHING
    assert room('gluon_opt.trainer') == room('gluon_opt.optimizers.base') == LIBRARY
    for name in ENTRY_MODULES + (ALIASES,):
        assert name in modules, name
    from gluon_opt import _legacy
    left_at_the_top = set(_legacy.MOVED) & set(modules)  # and answered by the alias first
    assert not left_at_the_top


def test_imports_go_one_way_only():
    modules = _modules()
    wrong = ['%s: %s (%s) imports %s (%s) [%s]' % (_where(modules, a, line), a, room(a), b,
                                                   room(b), how)
             for a, b, line, how in imports(modules)
             if room(b) not in ALLOWED[room(a)] or (room(b) == ENTRY and a not in ENTRY_MODULES)]
    assert not wrong, 'imports against the direction library <- experiments <- teaching:\n' + \
        '\n'.join(wrong)


def _cycles(graph):
    """One cycle (a list of modules, the first repeated last) through each strongly
    connected component of more than one module (Tarjan's algorithm, then a breadth-first
    search inside the component for the shortest way back)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while v not in component:
                component.add(stack.pop())
            on_stack.difference_update(component)
            if len(component) > 1:
                components.append(component)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for component in components:
        start = min(component)
        came_from, queue = {start: None}, [start]
        for v in queue:  # breadth first: the first module found that imports start closes
            if start in graph[v]:  # the shortest cycle through it
                break
            for w in sorted(graph[v] & component):
                if w not in came_from:
                    came_from[w] = v
                    queue.append(w)
        path = [start]
        while v is not None:
            path.append(v)
            v = came_from[v]
        cycles.append(path[::-1])
    return cycles


def test_no_import_cycles():
    modules = _modules()
    graph, where = {}, {}
    for a, b, line, how in imports(modules):
        graph.setdefault(a, set()).add(b)
        where.setdefault((a, b), '%s %s' % (_where(modules, a, line), how))
    for v in list(graph.values()):
        for w in v:
            graph.setdefault(w, set())
    cycles = _cycles(graph)
    assert not cycles, 'import cycles:\n' + '\n'.join(
        '  ' + c[0] + ''.join('\n    -> %s (%s)' % (b, where[a, b]) for a, b in zip(c, c[1:]))
        for c in cycles)


@pytest.mark.parametrize('source, expected', [
    ('from ..experiments import data\n', 'gluon_opt.experiments.data'),
    ('def f():\n    from gluon_opt.teaching import quiz\n', 'gluon_opt.teaching.quiz'),
    ("importlib.import_module('gluon_opt.experiments.bench')\n", 'gluon_opt.experiments.bench'),
    ('import gluon_opt.experiments.training.train\n', 'gluon_opt.experiments.training'),
])
def test_the_scan_sees_every_kind_of_import(tmp_path, source, expected):
    modules = _modules()
    path = tmp_path / 'probe.py'
    path.write_text(source)
    modules = dict(modules, **{'gluon_opt.optimizers.probe': str(path)})
    found = {b for a, b, _, _ in imports(modules) if a == 'gluon_opt.optimizers.probe'}
    assert expected in found


# ---------------------------------------------------------------------------------------------
# What runs: import gluon_opt loads the library alone; the old paths are the new modules

def test_import_gluon_opt_loads_the_library_alone():
    code = ('import sys, gluon_opt\n'
            'print(" ".join(m for m in sys.modules if m.startswith("gluon_opt")))')
    out = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT)).stdout.split()
    assert 'gluon_opt.optimizers' in out
    assert [m for m in out if room(m) != LIBRARY] == []


def test_old_paths_are_the_new_modules():
    import gluon_opt
    from gluon_opt import _legacy
    for old, new in _legacy.MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    assert importlib.import_module('gluon_opt.quiz.cli') is importlib.import_module(
        'gluon_opt.teaching.quiz.cli')
    from gluon_opt import grading, landscapes, quiz  # the exercise notebooks' locked cells
    assert grading.check_quiz is gluon_opt.teaching.grading.check_quiz
    assert quiz.render_text and landscapes.trajectory
    with pytest.raises(ImportError):
        importlib.import_module('gluon_opt.quiz.no_such_module')


def test_old_paths_run_with_python_dash_m():
    out = subprocess.run([sys.executable, '-m', 'gluon_opt.quiz'], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT)).stdout
    assert out.startswith('Quizzes (run one with: gluon-opt quiz <chapter>):')
